"""The in-process runner the CLI tests use (``cli``) shows what a real ``python -m lightml``
shows: the same exit status, stdout and stderr, byte for byte, for argparse's own exits,
user errors, a warning, colour-capable text, non-ASCII output and a picker without a
terminal. (Set LIGHTML_CLI_TESTS=process to run every CLI test as a process instead.)"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CASES = {
    "version": ["--version"],
    "help": ["--help"],
    "no command": [],
    "usage error": ["metric-log", "--db", "{db}", "--run", "r1", "--model", "base", "--family", "f", "--metric", "m"],
    "user error": ["exists", "--db", "{missing}", "--model", "x"],
    "a warning": ["metric-log", "--db", "{db}", "--run", "r1", "--model", "base", "--family", "f", "--metric", "m",
                  "--value", "0.9", "--scores", "[1, 0]"],
    "colour off": ["compare", "--db", "{db}", "--model-a", "base", "--model-b", "sft", "--run", "r1"],
    "non-ascii": ["exists", "--db", "{db}", "--model", "*", "--family", "eval", "--metric", "acc", "--run", "r1"],
    "picker without a terminal": ["stats", "--db", "{db}", "--run", "r1"],
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_in_process_output_is_a_process_output(case: str, lineage: Path, tmp_path: Path, cli, cli_process) -> None:
    # each run gets its own copy: a command that writes must find the same registry both times
    copies = {}
    for way in ("in-process", "process"):
        folder = tmp_path / way
        folder.mkdir()
        copies[way] = Path(shutil.copy(lineage, folder / "reg.db"))

    def argv(way: str) -> list[str]:
        return [arg.format(db=copies[way], missing=tmp_path / "missing.db") for arg in CASES[case]]

    in_process = cli(*argv("in-process"), cwd=tmp_path)
    process = cli_process(*argv("process"), cwd=tmp_path)
    here, there = str(copies["in-process"]), str(copies["process"])
    assert in_process.returncode == process.returncode
    assert in_process.stdout.replace(here, there) == process.stdout
    assert in_process.stderr.replace(here, there) == process.stderr
    assert "Traceback" not in process.stderr
