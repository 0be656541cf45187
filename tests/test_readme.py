"""The README documents every CLI command and public function, and its set-up commands."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import lightml
from lightml.async_handle import AsyncLightMLHandle
from lightml.cli.main import COMMANDS
from lightml.handle import LightMLHandle

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_every_cli_command_is_documented() -> None:
    missing = [c for c in COMMANDS if not re.search(rf"`lightml {re.escape(c)}\b", README)]
    assert not missing, f"CLI commands missing from README.md: {missing}"


def test_every_public_method_and_function_is_documented() -> None:
    public = [name for name, _ in inspect.getmembers(LightMLHandle, inspect.isfunction) if not name.startswith("_")]
    public += [name for name in lightml.__all__ if not name.startswith("_")]
    missing = [name for name in public if f"`{name}" not in README and f"{name}(" not in README]
    assert not missing, f"public API missing from README.md: {missing}"


def test_sync_and_async_handles_have_the_same_methods() -> None:
    def methods(cls) -> set[str]:
        return {n for n, _ in inspect.getmembers(cls, inspect.isfunction) if not n.startswith("_")}

    assert methods(LightMLHandle) - {"close"} <= methods(AsyncLightMLHandle)


def test_ci_runs_the_readme_test_command() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    command = 'pip install -e ".[dev]" && python -m pytest -q'
    assert command in README and command in ci
