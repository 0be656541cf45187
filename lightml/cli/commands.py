"""The command table of ``lightml``: each command declared once, with its arguments, its
handler and its one-line help (``COMMANDS``, in the order ``lightml --help`` lists them).

Only argparse is imported here, so ``lightml --help`` stays fast: a handler is named as
``module:function`` in ``lightml.cli`` and imported when its command runs.
"""

from __future__ import annotations

import argparse
import importlib
from typing import Callable, NamedTuple

from lightml.defaults import DEFAULT_RUN, PRUNE_GRACE_SECONDS


def add_db(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="registry file or postgresql:// URL (default: $LIGHTML_DB, ./.lightml, "
                                     "or the only ./*.db)")


def add_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON for scripts")


def _init(p: argparse.ArgumentParser) -> None:
    p.add_argument("--path", help="folder of the registry (created if missing); not with a postgresql:// --db")
    p.add_argument("--name", help="registry name: the file is <path>/<name>.db")
    # (dest "url": init never looks for a registry in $LIGHTML_DB or the folder, as --db does elsewhere)
    p.add_argument("--db", dest="url", metavar="URL",
                   help="a postgresql:// URL: create the registry's tables in that empty database (or ?schema=); "
                        "or a .db file (as --path and --name)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing registry with an empty one")
    p.add_argument("--schema", help='JSON file restricting metrics: [{"family": F, "metrics": {"name": "float"}}]')


def _where(p: argparse.ArgumentParser) -> None:
    p.add_argument("--where", metavar="EXPR",
                   help="only the models this filter expression selects, e.g. \"params.lr < 3e-5 and tag:dpo and "
                        "reasoning.arc > 0.5\" (see the README's filter expressions)")


def _write_run(p: argparse.ArgumentParser) -> None:
    p.add_argument("--run", help=f"run name (default {DEFAULT_RUN!r}, LightML 1.4's; created on first write)")


def _model_register(p: argparse.ArgumentParser) -> None:
    add_db(p)
    _write_run(p)
    p.add_argument("--name", "--model", dest="name", required=True, help="model name")
    p.add_argument("--path", required=True, help="local folder (made absolute) or hub id such as org/model")
    p.add_argument("--parent", help="parent model name (looked up in this run, then in all runs)")
    p.add_argument("--param", action="extend", nargs="+", metavar="KEY=VALUE", default=[],
                   help="parameters of the model: lr=3e-5 dataset=ultrafeedback")
    p.add_argument("--tag", action="extend", nargs="+", metavar="TAG", default=[], help="tags of the model")
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
    p.add_argument("--repeat", metavar="LABEL",
                   help="the value is this repeat of the metric (e.g. seed=1234): the metric's value is their mean")
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
    p.add_argument("--model-a", "--a", dest="model_a",
                   help="the reference (base) model (asked for on a terminal if left out)")
    p.add_argument("--model-b", "--b", dest="model_b", help="the model compared with it (candidate); deltas are B - A")
    p.add_argument("--run", help="look both models up in this run")
    p.add_argument("--run-a", help="run of model A (overrides --run)")
    p.add_argument("--run-b", help="run of model B (overrides --run)")
    p.add_argument("--family", help="only this family")
    p.add_argument("--fail-on-regression", action="store_true",
                   help="exit 1 when a metric of B is significantly worse than A's (paired tests on per-sample "
                        "scores, Holm-adjusted); 0 otherwise")
    p.add_argument("--alpha", type=float, help="significance level of --fail-on-regression (default 0.05)")
    _strict(p)
    _include_hidden(p)
    _no_color(p)
    add_json(p)


def _strict(p: argparse.ArgumentParser) -> None:
    p.add_argument("--strict", action="store_true",
                   help="refuse to compare values whose eval settings differ in a key that changes the number "
                        "(n-shot, limit, task version or hash, harness version, chat template, system "
                        "instruction, generation kwargs); without it they are marked and warned about")


def _flips(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--model-a", "--a", dest="model_a", help="model A (asked for on a terminal if left out)")
    p.add_argument("--model-b", "--b", dest="model_b", help="model B")
    p.add_argument("--family", help="family of the metric")
    p.add_argument("--metric", help="metric with per-sample scores on both sides")
    p.add_argument("--step-a", type=int, help="A's checkpoint at this step instead of the model")
    p.add_argument("--step-b", type=int, help="B's checkpoint at this step instead of the model")
    p.add_argument("--run", help="look the models up in this run first")
    p.add_argument("--limit", type=int, help="show at most N documents (default: 50 in the table, all with --json)")
    _include_hidden(p)
    add_json(p)


def _diff(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--models", nargs="+", metavar="MODEL", help="two or more model names (picked on a terminal if left out)")
    p.add_argument("--run", help="look the models up in this run")
    p.add_argument("--family", help="only this family")
    _where(p)
    p.add_argument("--group-by", metavar="KEY",
                   help="one column per value of this parameter, each the mean of its models")
    _strict(p)
    _include_hidden(p)
    _no_color(p)
    add_json(p)


def _stats(p: argparse.ArgumentParser) -> None:
    add_db(p)
    p.add_argument("--model-a", "--a", dest="model_a", help="model A (asked for on a terminal if left out)")
    p.add_argument("--model-b", "--b", dest="model_b", help="model B")
    p.add_argument("--family", help="family of the metric (with --all: only this family)")
    p.add_argument("--metric", help="metric with per-sample scores in both models")
    p.add_argument("--all", action="store_true", help="test every metric both models have scores for (Holm-adjusted)")
    p.add_argument("--run", help="look the models up in this run first")
    p.add_argument("--resamples", type=int, default=10_000, help="bootstrap resamples (default 10000)")
    p.add_argument("--seed", type=int, default=42, help="bootstrap seed (default 42: same data, same interval)")
    _strict(p)
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
    _where(p)
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
    _where(p)
    p.add_argument("--all", "--include-hidden", dest="all", action="store_true", help="include hidden models")
    _strict(p)
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


def _params(p: argparse.ArgumentParser) -> None:
    _model_edit(p)
    p.add_argument("--set", action="extend", nargs="+", metavar="KEY=VALUE", default=[],
                   help="set parameters; a value is read as JSON when it is a number, true/false or a quoted "
                        "string, else taken as text; without --set/--unset, print them")
    p.add_argument("--unset", action="extend", nargs="+", metavar="KEY", default=[], help="remove parameters")


def _tags(p: argparse.ArgumentParser) -> None:
    _model_edit(p)
    p.add_argument("--add", action="extend", nargs="+", metavar="TAG", default=[], help="add tags")
    p.add_argument("--remove", action="extend", nargs="+", metavar="TAG", default=[],
                   help="remove tags; without --add/--remove, print them")


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
    _where(p)
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
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="processes reading the samples files (default: the number of cores, once there is more "
                        "than 64 MiB of them to read; 1: this process only)")


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


def _copy(p: argparse.ArgumentParser) -> None:
    p.add_argument("--from", dest="source", required=True, metavar="SRC",
                   help="the registry to copy: a .db file or a postgresql:// URL (only read)")
    p.add_argument("--to", dest="destination", required=True, metavar="DST",
                   help="where to: a new .db file, or an empty PostgreSQL database (postgresql:// URL)")
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


class Command(NamedTuple):
    """One command: ``arguments`` adds its options to its parser; ``handler`` ("module:function"
    in ``lightml.cli``) takes the parsed arguments and returns the exit code."""

    name: str
    arguments: Callable[[argparse.ArgumentParser], None]
    handler: str
    help: str

    def load_handler(self) -> Callable[[argparse.Namespace], int | None]:
        module, function = self.handler.split(":")
        return getattr(importlib.import_module(f"lightml.cli.{module}"), function)


TABLE = (
    Command("init", _init, "registry_cmds:cmd_init", "create a registry (a file, or in a PostgreSQL database)"),
    Command("model-register", _model_register, "write_cmds:cmd_model_register", "register a model in a run"),
    Command("checkpoint-register", _checkpoint_register, "write_cmds:cmd_checkpoint_register",
            "register a checkpoint of a model"),
    Command("metric-log", _metric_log, "write_cmds:cmd_metric_log", "log one metric of a model or checkpoint"),
    Command("exists", _exists, "read_cmds:cmd_exists",
            "does a model / metric exist? (globs * and ?; exit 0 found, 1 not)"),
    Command("history", _history, "read_cmds:cmd_history", "every value a metric ever had, who wrote it and when"),
    Command("compare", _compare, "analysis_cmds:cmd_compare",
            "two models side by side: deltas B - A, with p-values where scores exist"),
    Command("diff", _diff, "analysis_cmds:cmd_diff",
            "the metrics of two or more models side by side, best and worst marked"),
    Command("stats", _stats, "analysis_cmds:cmd_stats",
            "is the difference real? exact McNemar / paired bootstrap on per-sample scores"),
    Command("flips", _flips, "analysis_cmds:cmd_flips",
            "the documents where two models' per-sample scores differ (which questions flipped)"),
    Command("list", _list, "browse_cmds:cmd_list", "list models (default), runs or families"),
    Command("summary", _db_only, "browse_cmds:cmd_summary", "counts, runs, families and the newest events"),
    Command("info", _info, "browse_cmds:cmd_info",
            "one model: path, run, lineage up and down, checkpoints, metrics, notes"),
    Command("top", _top, "browse_cmds:cmd_top",
            "leaderboard of one metric (ties shown; lower-is-better sorted ascending)"),
    Command("metric-get", _metric_get, "browse_cmds:cmd_metric_get",
            "one value (just the number when not on a terminal)"),
    Command("notes", _notes, "edit_cmds:cmd_notes", "print or set a model's notes"),
    Command("rename", _rename, "edit_cmds:cmd_rename", "rename a model within its run"),
    Command("hide", _model_edit, "edit_cmds:cmd_hide", "hide a model from listings, pickers, export and the dashboard"),
    Command("unhide", _model_edit, "edit_cmds:cmd_unhide", "show a hidden model again"),
    Command("params", _params, "edit_cmds:cmd_params", "print or set a model's parameters (lr, beta, dataset...)"),
    Command("tag", _tags, "edit_cmds:cmd_tag", "print, add or remove a model's tags"),
    Command("reparent", _reparent, "edit_cmds:cmd_reparent", "change a model's parent (or --none); cycles are refused"),
    Command("model-delete", _model_delete, "edit_cmds:cmd_model_delete",
            "delete a model with its checkpoints and metrics (undo: restore)"),
    Command("restore", _restore, "edit_cmds:cmd_restore", "bring back a deleted or pruned model from the log"),
    Command("prune", _prune, "edit_cmds:cmd_prune",
            "remove models with no metrics, checkpoints or children, and empty runs"),
    Command("export", _export, "report_cmds:cmd_export",
            "write the Excel report: overview, one sheet per family, history"),
    Command("merge", _merge, "merge_cmds:cmd_merge",
            "bring another registry's runs, models, checkpoints, metrics and scores into this one"),
    Command("scan", _scan, "scan_cmds:cmd_scan", "import lm-eval (or JSON) result folders, per-sample scores included"),
    Command("watch", _watch, "scan_cmds:cmd_watch",
            "keep scanning a folder and import new or changed results (Ctrl-C stops)"),
    Command("gui", _gui, "gui_cmd:cmd_gui", "the dashboard in your browser (http://127.0.0.1:5050; offline)"),
    Command("replay", _replay, "registry_cmds:cmd_replay",
            "rebuild the read tables from the event log (or the past into --out)"),
    Command("verify", _db_only, "registry_cmds:cmd_verify", "check that the read tables match the event log"),
    Command("copy", _copy, "registry_cmds:cmd_copy",
            "copy a registry's whole log into a new file or an empty database (SQLite <-> PostgreSQL)"),
    Command("backup", _backup, "registry_cmds:cmd_backup",
            "a consistent single-file copy of the registry, also while others write"),
    Command("migrate", _db_only, "registry_cmds:cmd_migrate",
            "upgrade a LightML 1.x database to the event-sourced format"),
    Command("demo", _demo, "demo_cmd:cmd_demo", "create ./lightml-demo/main.db, a small realistic registry to explore"),
    Command("version", _version, "registry_cmds:cmd_version", "print the LightML version"),
)
COMMANDS: dict[str, Command] = {command.name: command for command in TABLE}
