"""``lightml``: argument parsing and error reporting.

Only argparse is imported here, so ``lightml --help`` stays fast; each command's module
is imported when that command runs. User errors print one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys

from lightml import __version__

EXIT_USER_ERROR = 2

# command -> (module in lightml.cli, one-line help)
COMMANDS: dict[str, tuple[str, str]] = {
    "init": ("registry_cmds", "create a registry file"),
    "model-register": ("write_cmds", "register a model in a run"),
    "checkpoint-register": ("write_cmds", "register a checkpoint of a model"),
    "metric-log": ("write_cmds", "log one metric of a model or checkpoint"),
    "exists": ("read_cmds", "does a model / metric exist? (globs * and ?; exit 0 found, 1 not)"),
    "history": ("read_cmds", "every value a metric ever had, who wrote it and when"),
    "compare": ("analysis_cmds", "two models side by side: deltas B - A, with p-values where scores exist"),
    "diff": ("analysis_cmds", "the metrics of two or more models side by side, best and worst marked"),
    "stats": ("analysis_cmds", "is the difference real? exact McNemar / paired bootstrap on per-sample scores"),
    "list": ("browse_cmds", "list models (default), runs or families"),
    "summary": ("browse_cmds", "counts, runs, families and the newest events"),
    "info": ("browse_cmds", "one model: path, run, lineage up and down, checkpoints, metrics, notes"),
    "top": ("browse_cmds", "leaderboard of one metric (ties shown; lower-is-better sorted ascending)"),
    "metric-get": ("browse_cmds", "one value (just the number when not on a terminal)"),
    "notes": ("edit_cmds", "print or set a model's notes"),
    "rename": ("edit_cmds", "rename a model within its run"),
    "hide": ("edit_cmds", "hide a model from listings, pickers, export and the dashboard"),
    "unhide": ("edit_cmds", "show a hidden model again"),
    "reparent": ("edit_cmds", "change a model's parent (or --none); cycles are refused"),
    "model-delete": ("edit_cmds", "delete a model with its checkpoints and metrics (undo: restore)"),
    "restore": ("edit_cmds", "bring back a deleted or pruned model from the log"),
    "prune": ("edit_cmds", "remove models with no metrics, checkpoints or children, and empty runs"),
    "export": ("report_cmds", "write the Excel report: overview, one sheet per family, history"),
    "merge": ("merge_cmds", "bring another registry's runs, models, checkpoints, metrics and scores into this one"),
    "scan": ("scan_cmds", "import lm-eval (or JSON) result folders, per-sample scores included"),
    "watch": ("scan_cmds", "keep scanning a folder and import new or changed results (Ctrl-C stops)"),
    "gui": ("gui_cmd", "the dashboard in your browser (http://127.0.0.1:5050; offline)"),
    "replay": ("registry_cmds", "rebuild the read tables from the event log (or the past into --out)"),
    "verify": ("registry_cmds", "check that the read tables match the event log"),
    "backup": ("registry_cmds", "a consistent single-file copy of the registry, also while others write"),
    "migrate": ("registry_cmds", "upgrade a LightML 1.x database to the event-sourced format"),
    "demo": ("demo_cmd", "create ./lightml-demo/main.db, a small realistic registry to explore"),
    "version": ("registry_cmds", "print the LightML version"),
}


class OneLineParser(argparse.ArgumentParser):
    """Usage errors in one line, like every other user error (argparse prints the usage too)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    from lightml.cli import arguments

    parser = OneLineParser(
        prog="lightml",
        description="LightML: a local registry for LLM evaluation results (one SQLite file, an event log).",
    )
    parser.add_argument("--version", action="version", version=f"lightml {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text, description=help_text)
        arguments.CONFIGURE[name](command_parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USER_ERROR
    module_name, _ = COMMANDS[args.command]
    _warnings_in_one_line(args.command)
    try:
        if hasattr(args, "db"):
            from lightml.cli.dbpath import resolve_db

            args.db = resolve_db(args.db)
        module = importlib.import_module(f"lightml.cli.{module_name}")
        run = getattr(module, "cmd_" + args.command.replace("-", "_"))
        return int(run(args) or 0)
    except KeyboardInterrupt:
        print("lightml: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `lightml summary | head -1`: the reader stopped; no message
        # Python would report the pipe again when it flushes stdout at exit: point it nowhere.
        # Exit 1, as Python's documentation advises: the output was not all written.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # one line for the user, never a traceback
        if not _is_user_error(exc):
            raise
        print(f"lightml {args.command}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USER_ERROR


def _warnings_in_one_line(command: str) -> None:
    """A warning (a value that disagrees with its scores, read-only media ...) is one line on
    stderr, like an error, not Python's two-line format with a source line."""
    import warnings

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        text = " ".join(str(message).split()).removeprefix("lightml: ")
        print(f"lightml {command}: warning: {text}", file=file or sys.stderr)

    warnings.showwarning = show


def _is_user_error(exc: Exception) -> bool:
    import sqlite3

    from lightml.errors import LightMLError

    return isinstance(exc, (LightMLError, ValueError, LookupError, OSError, TimeoutError, sqlite3.Error))


def _one_line(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    return " ".join(text.split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
