"""``lightml``: parsing the command line by the command table, running the command, and
reporting errors.

Only argparse is imported here (and by the table, ``lightml.cli.commands``), so ``lightml
--help`` stays fast; each command's module is imported when that command runs. User errors
print one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys

from lightml import __version__
from lightml.cli.commands import COMMANDS

EXIT_USER_ERROR = 2


class OneLineParser(argparse.ArgumentParser):
    """Usage errors in one line, like every other user error (argparse prints the usage too)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(EXIT_USER_ERROR, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="lightml",
        description="LightML: a local registry for LLM evaluation results (one SQLite file, an event log).",
    )
    parser.add_argument("--version", action="version", version=f"lightml {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for command in COMMANDS.values():
        command.arguments(sub.add_parser(command.name, help=command.help, description=command.help))
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_USER_ERROR
    _warnings_in_one_line(args.command)
    try:
        if hasattr(args, "db"):
            from lightml.cli.dbpath import resolve_db

            from lightml.log.engine import shown

            args.db = resolve_db(args.db)
            args.db_shown = shown(args.db)  # what output may print: a URL loses its password
        run = COMMANDS[args.command].load_handler()
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
    from lightml.errors import LightMLError
    from lightml.log.engine import driver_errors

    return isinstance(exc, (LightMLError, ValueError, LookupError, OSError, TimeoutError, *driver_errors()))


def _one_line(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if isinstance(exc, KeyError) and exc.args:
        text = str(exc.args[0])
    return " ".join(text.split())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
