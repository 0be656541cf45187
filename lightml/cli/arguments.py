"""Each command's arguments (kept apart from the handlers so --help imports nothing heavy)."""

from __future__ import annotations

import argparse
from typing import Callable

from lightml.defaults import DEFAULT_RUN, PRUNE_GRACE_SECONDS


def add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="registry file (default: $LIGHTML_DB, ./.lightml, or the only ./*.db)")


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def _init(p: argparse.ArgumentParser) -> None:
    p.add_argument("--path", required=True, help="folder of the registry (created if missing)")
    p.add_argument("--name", required=True, help="registry name: the file is <path>/<name>.db")
    p.add_argument("--overwrite", action="store_true", help="replace an existing registry with an empty one")
    p.add_argument("--schema", help='JSON file restricting metrics: [{"family": F, "metrics": {"name": "float"}}]')


def _write_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", help=f"run name (default {DEFAULT_RUN!r}, LightML 1.4's; created on first write)")


def _model_register(p: argparse.ArgumentParser) -> None:
    add_db(p)
    _write_run(p)
    p.add_argument("--name", "--model", dest="name", required=True, help="model name")
    p.add_argument("--path", required=True, help="local folder (made absolute) or hub id such as org/model")
    p.add_argument("--parent", help="parent model name (looked up in this run, then in all runs)")
    add_json(p)


def _checkpoint_register(p: argparse.ArgumentParser) -> None:
    add_db(p)
    _write_run(p)
    p.add_argument("--model", required=True)
    p.add_argument("--step", required=True, type=int)
    p.add_argument("--path", required=True)
    add_json(p)


def _metric_log(p: argparse.ArgumentParser) -> None:
    add_db(p)
    _write_run(p)
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


def _include_hidden(p: argparse.ArgumentParser) -> None:
    p.add_argument("--include-hidden", action="store_true", help="the pickers offer hidden models too")


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
    _include_hidden(p)
    _no_color(p)
    add_json(p)


def _diff(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--models", nargs="+", metavar="MODEL", help="two or more model names (picked on a terminal if left out)")
    p.add_argument("--run", help="look the models up in this run")
    p.add_argument("--family", help="only this family")
    _include_hidden(p)
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
    _include_hidden(p)
    _no_color(p)
    add_json(p)


def _history(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--model", required=True)
    p.add_argument("--family", help="with --metric: that metric's values; without both: every event of the model")
    p.add_argument("--metric")
    p.add_argument("--step", type=int, help="the metric of the model's checkpoint at this step")
    p.add_argument("--run", help="the run of the model, when its name is in several")
    add_json(p)


def _run_filter(p: argparse.ArgumentParser, what: str = "only this run") -> None:
    p.add_argument("--run", help=what)


def _list(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("what", nargs="?", choices=["models", "runs", "families"], default="models")
    _run_filter(p)
    p.add_argument("--all", "--include-hidden", dest="all", action="store_true", help="include hidden models")
    add_json(p)


def _info(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--model", help="model name (asked for on a terminal if left out)")
    _run_filter(p, "the model's run, when its name is in several")
    _include_hidden(p)
    add_json(p)


def _top(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--family", help="family (asked for on a terminal if left out)")
    p.add_argument("--metric", help="metric (asked for on a terminal if left out)")
    p.add_argument("--n", type=int, default=10, help="how many places (default 10; ties at the cut are kept)")
    _run_filter(p)
    p.add_argument("--all", "--include-hidden", dest="all", action="store_true", help="include hidden models")
    add_json(p)


def _metric_get(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--model")
    p.add_argument("--family")
    p.add_argument("--metric")
    _run_filter(p, "the model's run, when its name is in several")
    p.add_argument("--raw", action="store_true", help="print only the number, also on a terminal")
    _include_hidden(p)
    add_json(p)


def _model_edit(p: argparse.ArgumentParser, *aliases: str) -> None:
    add_db(p)
    p.add_argument("--model", *aliases, dest="model", help="model name (asked for on a terminal if left out)")
    _run_filter(p, "the model's run, when its name is in several")
    add_json(p)


def _notes(p: argparse.ArgumentParser) -> None:
    _model_edit(p)
    p.add_argument("--set", metavar="TEXT", help='new notes ("" clears them); without it, print the notes')


def _rename(p: argparse.ArgumentParser) -> None:
    _model_edit(p, "--old")  # --old, --new: LightML 1.4's spellings
    p.add_argument("--to", "--new", dest="to", metavar="NEW",
                   help="the new name (unique in the model's run; asked for on a terminal if left out)")


def _reparent(p: argparse.ArgumentParser) -> None:
    _model_edit(p)
    parent = p.add_mutually_exclusive_group(required=True)
    parent.add_argument("--parent", help="the new parent (looked up in the model's run, then in all runs)")
    parent.add_argument("--none", action="store_true", help="no parent")


def _model_delete(p: argparse.ArgumentParser) -> None:
    _model_edit(p, "--name")  # --name: LightML 1.4's spelling
    p.add_argument("--yes", action="store_true", help="do not ask for confirmation on a terminal")


def _restore(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--model", required=True, help="the deleted (or pruned) model")
    _run_filter(p, "its run, when deleted models of that name existed in several")
    add_json(p)


def _prune(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--dry-run", action="store_true", help="print what would be removed, remove nothing")
    p.add_argument("--grace", type=float, metavar="SECONDS",
                   help=f"keep models registered less than this long ago (default {PRUNE_GRACE_SECONDS:g}, "
                        "one day: an eval may still be running)")
    add_json(p)


def _export(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--output", help="the .xlsx to write (default report/<db name>_report.xlsx)")
    p.add_argument("--include-hidden", action="store_true", help="include hidden models")
    add_json(p)


def _merge(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--from", "--src", dest="source", required=True, action="extend", nargs="+", metavar="OTHER",
                   help="the registries to bring in (only read; several, or a glob like 'nodes/*.db')")
    p.add_argument("--force", action="store_true", help="overwrite metrics whose value or scores differ")
    add_json(p)


def _scan_options(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--run", help=f"run to import into (created if new; default {DEFAULT_RUN!r})")
    p.add_argument("--path", required=True, help="folder whose subfolders are models (lm_eval --output_path)")
    p.add_argument("--format", choices=["lm_eval", "json"], default="lm_eval")
    p.add_argument("--prefix", default="", help="put before each model (folder) name")
    p.add_argument("--force", action="store_true", help="overwrite metrics that exist (and re-read unchanged files)")
    p.add_argument("--family-template", default="{task}",
                   help="family name from {task} and {nshot}, e.g. '{task}_{nshot}shot' (default {task})")
    p.add_argument("--name-from", choices=["folder", "results"], default="folder",
                   help="model name from the folder (default) or from the results file's model_name / pretrained=")


def _scan(p: argparse.ArgumentParser) -> None:
    _scan_options(p)
    add_json(p)


def _watch(p: argparse.ArgumentParser) -> None:
    _scan_options(p)
    p.add_argument("--interval", type=float, default=30.0, help="seconds between scans (default 30)")


def _gui(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--port", type=int, default=5050, help="port (default 5050)")
    p.add_argument("--host", default="127.0.0.1",
                   help="interface (default 127.0.0.1, this machine only; anything else is shared on the network)")


def _replay(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--out", help="write the rebuilt registry to this new file instead of in place")
    moment = p.add_mutually_exclusive_group()
    moment.add_argument("--as-of", help="with --out: the registry as it was at this ISO-8601 time (naive = UTC)")
    moment.add_argument("--upto", type=int, help="with --out: the registry as it was after event #SEQ")
    p.add_argument("--force", action="store_true",
                   help="rebuild in place even when the tables hold rows the log does not explain (they are dropped)")
    add_json(p)


def _backup(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--out", required=True, help="the new file to write (must not exist)")
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
    "list": _list,
    "summary": _db_only,
    "info": _info,
    "top": _top,
    "metric-get": _metric_get,
    "notes": _notes,
    "rename": _rename,
    "hide": _model_edit,
    "unhide": _model_edit,
    "reparent": _reparent,
    "model-delete": _model_delete,
    "restore": _restore,
    "prune": _prune,
    "export": _export,
    "merge": _merge,
    "scan": _scan,
    "watch": _watch,
    "gui": _gui,
    "replay": _replay,
    "verify": _db_only,
    "backup": _backup,
    "migrate": _db_only,
    "demo": _demo,
    "version": _version,
}
