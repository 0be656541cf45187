"""The CLI's command table: every command declared once, with a help line, its arguments and a
handler; the parser is built from it alone; and ``lightml --help`` imports no command's code."""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
from pathlib import Path

import lightml.cli
from lightml.cli.commands import COMMANDS, TABLE
from lightml.cli.main import build_parser, main

CLI = Path(lightml.cli.__file__).parent


def test_every_command_is_declared_once_with_help_arguments_and_a_handler() -> None:
    names = [command.name for command in TABLE]
    assert len(names) == len(set(names)) and list(COMMANDS) == names
    for command in TABLE:
        assert command.help.strip() and "\n" not in command.help, command.name
        assert callable(command.arguments), command.name
        handler = command.load_handler()
        assert callable(handler) and handler.__module__.startswith("lightml.cli."), command.name


def test_each_handler_in_the_cli_belongs_to_exactly_one_command() -> None:
    """A handler written but left out of the table (or serving two commands) fails here."""
    handlers = [command.handler for command in TABLE]
    assert len(handlers) == len(set(handlers))
    defined = {f"{path.stem}:{node.name}"
               for path in CLI.glob("*.py")
               for node in ast.parse(path.read_text(encoding="utf-8")).body
               if isinstance(node, ast.FunctionDef) and node.name.startswith("cmd_")}
    assert defined == set(handlers)


def test_the_parser_has_the_table_s_commands_in_its_order_with_their_help() -> None:
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert list(sub.choices) == list(COMMANDS)
    for name, command_parser in sub.choices.items():
        assert command_parser.description == COMMANDS[name].help
    listed = {action.dest: action.help for action in sub._choices_actions}
    assert listed == {name: command.help for name, command in COMMANDS.items()}


def test_main_runs_the_handler_the_table_names(capsys) -> None:
    assert main(["version", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"version": lightml.__version__}


def test_help_imports_no_command_module_and_nothing_heavy() -> None:
    probe = ("import sys\n"
             "from lightml.cli.main import main\n"
             "try:\n    main(['--help'])\n"
             "except SystemExit:\n    pass\n"
             "print('\\n'.join(sorted(sys.modules)), file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True)
    assert all(name in result.stdout for name in COMMANDS)  # the help was printed
    loaded = set(result.stderr.split())
    handler_modules = {f"lightml.cli.{command.handler.split(':')[0]}" for command in TABLE}
    heavy = {"sqlite3", "aiosqlite", "numpy", "pydantic", "starlette", "uvicorn", "openpyxl", "anyio", "projections"}
    assert "lightml.cli.main" in loaded and not loaded & (handler_modules | heavy)
