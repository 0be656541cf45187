"""A user error is one line on stderr, exit 2, never a traceback, and writes nothing: bad
values, unknown names, missing or damaged registries, bad options.

Each command runs in this process (``cli``: ``main(argv)``, output captured), as a user
would type it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest


def events_count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]


def test_user_errors_are_one_line_and_write_nothing(arc_registry: Path, tmp_path: Path, assert_user_error, cli) -> None:
    before = events_count(arc_registry)
    assert_user_error(cli("metric-log", "--db", arc_registry, "--run", "r1", "--model", "base", "--family", "f",
                          "--metric", "m", "--value", "nan"))
    assert_user_error(cli("metric-log", "--db", arc_registry, "--run", "r1", "--model", "base", "--family", "f",
                          "--metric", "m", "--value", "abc"))
    assert_user_error(cli("metric-log", "--db", arc_registry, "--run", "r1", "--model", "ghost", "--family", "f",
                          "--metric", "m", "--value", "1"))
    assert_user_error(cli("model-register", "--db", arc_registry, "--run", "r1", "--name", "x", "--path", "p",
                          "--parent", "ghost"))
    assert_user_error(cli("checkpoint-register", "--db", arc_registry, "--run", "r1", "--model", "base",
                          "--step", "-1", "--path", "/c"))
    assert events_count(arc_registry) == before
    missing = tmp_path / "missing" / "nope.db"
    for command in (["exists", "--model", "x"], ["history", "--model", "x", "--family", "f", "--metric", "m"],
                    ["verify"], ["replay"], ["migrate"],
                    ["metric-log", "--run", "r", "--model", "m", "--family", "f", "--metric", "m", "--value", "1"]):
        assert_user_error(cli(command[0], "--db", missing, *command[1:]))
        assert_user_error(cli(command[0], "--db", tmp_path / "nope.db", *command[1:]))
    assert not missing.parent.exists() and not (tmp_path / "nope.db").exists()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    r = cli("verify", "--db", garbage)
    assert_user_error(r)
    assert "not a SQLite database" in r.stderr


@pytest.mark.parametrize("args, message", [
    (["info", "--model", "ghost"], "model 'ghost' not found"),
    (["top", "--family", "eval", "--metric", "acc", "--n", "0"], "--n must be between 1 and"),
    (["top", "--family", "eval"], "--metric is required"),
    (["rename", "--model", "sft", "--to", "dpo"], "already exists"),
    (["hide"], "--model is required"),
    (["restore", "--model", "sft"], "no deleted model 'sft'"),
    (["history", "--model", "sft", "--family", "eval"], "--family and --metric go together"),
    (["list", "--run", "nope"], "run 'nope' not found"),
])
def test_read_and_edit_command_errors_write_nothing(model_tree: Path, args: list[str], message: str, cli,
                                                   assert_user_error) -> None:
    with sqlite3.connect(model_tree) as conn:
        before = conn.execute("SELECT max(seq) FROM events").fetchone()
    result = cli(args[0], "--db", model_tree, *args[1:])
    assert_user_error(result)
    assert message in result.stderr
    with sqlite3.connect(model_tree) as conn:
        assert conn.execute("SELECT max(seq) FROM events").fetchone() == before


# -- the README walkthrough's findings -------------------------------------------------------


@pytest.mark.parametrize("args, message", [
    (["top", "--family", "eval", "--metric", "nosuch"], "no metric eval/nosuch in the registry"),
    (["history", "--model", "sft", "--family", "eval", "--metric", "nosuch"], "no history for sft eval/nosuch"),
    (["compare", "--model-a", "base", "--model-b", "sft", "--family", "nosuch"], "has metrics in family 'nosuch'"),
    (["metric-log", "--run", "r1", "--model", "sft", "--family", "eval", "--metric", "m", "--value", "1",
      "--scores", "@"], "--scores @FILE needs a file name"),
    (["metric-log", "--run", "r1", "--model", "sft", "--family", "eval", "--metric", "m", "--value", "1",
      "--scores", "@/no/such/file"], "--scores @/no/such/file: cannot read the file"),
    (["metric-log", "--run", "r1", "--model", "sft", "--family", "eval", "--metric", "m", "--value", "1",
      "--step", "100", "--path-hint", "nomatch"], "no checkpoint at step 100 whose path contains 'nomatch'"),
])
def test_unknown_names_and_bad_options_are_one_line_errors(model_tree: Path, args: list[str], message: str, cli,
                                                           assert_user_error) -> None:
    result = cli(args[0], "--db", model_tree, *args[1:])
    assert_user_error(result)
    assert message in result.stderr
