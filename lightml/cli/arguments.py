"""Each command's arguments (kept apart from the handlers so --help imports nothing heavy)."""

from __future__ import annotations

import argparse
from typing import Callable

from lightml.cli.main import add_db, add_json


def _init(p: argparse.ArgumentParser) -> None:
    p.add_argument("--path", required=True, help="folder of the registry (created if missing)")
    p.add_argument("--name", required=True, help="registry name: the file is <path>/<name>.db")
    p.add_argument("--overwrite", action="store_true", help="replace an existing registry with an empty one")
    p.add_argument("--schema", help='JSON file restricting metrics: [{"family": F, "metrics": {"name": "float"}}]')


def _model_register(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--run", required=True, help="run name (created if new)")
    p.add_argument("--name", "--model", dest="name", required=True, help="model name")
    p.add_argument("--path", required=True, help="local folder (made absolute) or hub id such as org/model")
    p.add_argument("--parent", help="parent model name (looked up in this run, then in all runs)")
    add_json(p)


def _checkpoint_register(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--run", required=True)
    p.add_argument("--model", required=True)
    p.add_argument("--step", required=True, type=int)
    p.add_argument("--path", required=True)
    add_json(p)


def _metric_log(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--run", required=True)
    target = p.add_mutually_exclusive_group()
    target.add_argument("--model", help="the model the metric belongs to")
    target.add_argument("--checkpoint", type=int, help="checkpoint id the metric belongs to (instead of --model)")
    p.add_argument("--step", type=int, help="with --model: log on its checkpoint at this step")
    p.add_argument("--path-hint", help="with --step: pick the checkpoint whose path contains this")
    p.add_argument("--family", required=True)
    p.add_argument("--metric", required=True)
    p.add_argument("--value", required=True, help="a finite number")
    p.add_argument("--scores", help="per-sample scores: a JSON array, or @FILE holding one")
    p.add_argument("--force", action="store_true", help="overwrite an existing value (the old one stays in the log)")
    add_json(p)


def _exists(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--model", required=True, help="model name or glob (* and ?)")
    p.add_argument("--family", help="family name or glob")
    p.add_argument("--metric", help="metric name or glob")
    p.add_argument("--run", help="only this run")
    add_json(p)


def _no_color(p: argparse.ArgumentParser) -> None:
    p.add_argument("--no-color", action="store_true", help="no colours (also when NO_COLOR is set or not a terminal)")


def _compare(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--model-a", help="the reference model (asked for on a terminal if left out)")
    p.add_argument("--model-b", help="the model compared with it; deltas are B - A")
    p.add_argument("--run", help="look both models up in this run")
    p.add_argument("--run-a", help="run of model A (overrides --run)")
    p.add_argument("--run-b", help="run of model B (overrides --run)")
    p.add_argument("--family", help="only this family")
    _no_color(p)
    add_json(p)


def _diff(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--models", nargs="+", required=True, metavar="MODEL", help="two or more model names")
    p.add_argument("--run", help="look the models up in this run")
    p.add_argument("--family", help="only this family")
    _no_color(p)
    add_json(p)


def _stats(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--model-a", help="model A (asked for on a terminal if left out)")
    p.add_argument("--model-b", help="model B")
    p.add_argument("--family", help="family of the metric (with --all: only this family)")
    p.add_argument("--metric", help="metric with per-sample scores in both models")
    p.add_argument("--all", action="store_true", help="test every metric both models have scores for (Holm-adjusted)")
    p.add_argument("--run", help="look the models up in this run first")
    p.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    p.add_argument("--seed", type=int, default=42, help="bootstrap seed (default 42: same data, same interval)")
    _no_color(p)
    add_json(p)


def _history(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--model", required=True)
    p.add_argument("--family", required=True)
    p.add_argument("--metric", required=True)
    p.add_argument("--step", type=int, help="the metric of the model's checkpoint at this step")
    p.add_argument("--run", help="the run of the model, when its name is in several")
    add_json(p)


def _replay(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--out", help="write the rebuilt registry to this new file instead of in place")
    moment = p.add_mutually_exclusive_group()
    moment.add_argument("--as-of", help="with --out: the registry as it was at this ISO-8601 time (naive = UTC)")
    moment.add_argument("--upto", type=int, help="with --out: the registry as it was after event #SEQ")
    add_json(p)


def _db_only(p: argparse.ArgumentParser) -> None:
    add_db(p)
    add_json(p)


def _demo(p: argparse.ArgumentParser) -> None:
    p.add_argument("--path", default="lightml-demo", help="folder for main.db (default ./lightml-demo)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing <path>/main.db")


def _version(p: argparse.ArgumentParser) -> None:
    add_json(p)


CONFIGURE: dict[str, Callable[[argparse.ArgumentParser], None]] = {
    "init": _init,
    "model-register": _model_register,
    "checkpoint-register": _checkpoint_register,
    "metric-log": _metric_log,
    "exists": _exists,
    "history": _history,
    "compare": _compare,
    "diff": _diff,
    "stats": _stats,
    "replay": _replay,
    "verify": _db_only,
    "migrate": _db_only,
    "demo": _demo,
    "version": _version,
}
