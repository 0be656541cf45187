"""The write and edit commands as LightML 1.4 users type them, and their bad input: 1.4's flag
spellings, the default run, ranges in the pickers, RUN/MODEL spellings, prune's grace period,
and numbers or files too big to store (one line on stderr, exit 2, nothing written)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from lightml.handle import LightMLHandle
from test_analysis_cli import _run_on_terminal


def lightml(*args, stdin=subprocess.DEVNULL) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lightml", *map(str, args)], capture_output=True, text=True,
                          stdin=stdin, timeout=120, env={**os.environ, "PYTHONWARNINGS": "ignore"})


def on_terminal(args: list, answers: list[str], prompt_end: bytes = b"]:") -> str:
    return _run_on_terminal(args, answers, env={"PYTHONWARNINGS": "ignore"}, prompt_end=prompt_end)


def assert_user_error(result: subprocess.CompletedProcess, message: str) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert message in result.stderr, result.stderr


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    db = tmp_path / "reg.db"
    with LightMLHandle(db, "r1") as h:
        for name in ("base", "dpo", "sft"):
            h.register_model(name, f"org/{name}")
            h.log_model_metric(name, "eval", "acc", {"base": 0.3, "dpo": 0.5, "sft": 0.4}[name])
    with LightMLHandle(db, "r2") as h:
        h.register_model("sft", "org/sft-again")  # the same name in another run
        h.log_model_metric("sft", "eval", "acc", 0.45)
    return db


def events(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT seq, type, payload FROM events ORDER BY seq").fetchall()


def model_rows(db: Path) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT r.run_name, m.model_name, m.notes, m.hidden FROM model m "
                            "LEFT JOIN run r ON r.id = m.run_id ORDER BY 1, 2").fetchall()


# -- LightML 1.4's spellings ------------------------------------------------------------------

def test_model_delete_name_and_rename_old_new(registry: Path) -> None:
    assert lightml("rename", "--db", registry, "--old", "dpo", "--new", "dpo-v2").returncode == 0
    assert lightml("model-delete", "--db", registry, "--name", "dpo-v2", "--yes").returncode == 0
    assert ("r1", "dpo-v2", None, 0) not in model_rows(registry) and ("r1", "dpo", None, 0) not in model_rows(registry)


def test_rename_without_a_new_name_asks_on_a_terminal_else_says_which_flag(registry: Path) -> None:
    before = events(registry)
    assert_user_error(lightml("rename", "--db", registry, "--model", "base"), "--to (or --new) is required")
    assert events(registry) == before
    shown = on_terminal(["rename", "--db", registry, "--model", "base"], ["base-model"], prompt_end=b":")
    assert "New name for 'base'" in shown and "Renamed 'base' to 'base-model'" in shown
    assert ("r1", "base-model", None, 0) in model_rows(registry)


def test_edits_take_run_model_and_model_at_run_spellings(registry: Path) -> None:
    ambiguous = lightml("notes", "--db", registry, "--model", "sft", "--set", "x")
    assert_user_error(ambiguous, "'r1/sft'")  # the error gives the spelling to use
    assert lightml("notes", "--db", registry, "--model", "r2/sft", "--set", "re-run").returncode == 0
    assert lightml("hide", "--db", registry, "--model", "sft@r1").returncode == 0
    assert json.loads(lightml("notes", "--db", registry, "--model", "sft@r2", "--json").stdout)["notes"] == "re-run"
    out = lightml("rename", "--db", registry, "--model", "r2/sft", "--to", "sft-r2")
    assert out.returncode == 0 and "--run r2 --model sft-r2 --to sft" in out.stdout  # the undo names the run
    assert model_rows(registry) == [("r1", "base", None, 0), ("r1", "dpo", None, 0), ("r1", "sft", None, 1),
                                    ("r2", "sft-r2", "re-run", 0)]


def test_write_commands_without_run_use_the_benchmarks_run(registry: Path) -> None:
    assert lightml("model-register", "--db", registry, "--name", "llama", "--path", "org/llama").returncode == 0
    assert lightml("checkpoint-register", "--db", registry, "--model", "llama", "--step", "100",
                   "--path", "/ckpt/100").returncode == 0
    assert lightml("metric-log", "--db", registry, "--model", "llama", "--family", "eval", "--metric", "acc",
                   "--value", "0.6").returncode == 0
    assert lightml("metric-log", "--db", registry, "--model", "llama", "--step", "100", "--family", "eval",
                   "--metric", "acc", "--value", "0.55").returncode == 0
    with sqlite3.connect(registry) as conn:
        rows = conn.execute("SELECT r.run_name, m.model_name, c.step, x.value FROM metrics x "
                            "JOIN model m ON m.id = coalesce(x.model_id, (SELECT model_id FROM checkpoint "
                            "WHERE id = x.checkpoint_id)) JOIN run r ON r.id = m.run_id "
                            "LEFT JOIN checkpoint c ON c.id = x.checkpoint_id WHERE m.model_name = 'llama' "
                            "ORDER BY x.id").fetchall()
    assert rows == [("benchmarks", "llama", None, 0.6), ("benchmarks", "llama", 100, 0.55)]


# -- pickers ------------------------------------------------------------------------------------

def test_pickers_take_ranges_and_ask_again_after_a_bad_one(registry: Path) -> None:
    # diff's choices: 1. base, 2. dpo, 3. r1/sft, 4. r2/sft
    shown = on_terminal(["diff", "--db", registry, "--no-color"], ["3-1", "2-9", "x-2", "1-1,2"])
    assert "ranges like 1-3" in shown  # the prompt says ranges are taken
    assert "'3-1' is not a range of the choices" in shown and "'2-9' is not a range of the choices" in shown
    assert "'x-2' is not one of the 4 choices" in shown
    table = shown.rsplit("1-1,2", 1)[1]
    assert "base" in table and "dpo" in table and "error" not in table


# -- prune's grace period -----------------------------------------------------------------------

def test_prune_keeps_new_models_and_says_how_many(registry: Path) -> None:
    with LightMLHandle(registry, "eval-now") as h:
        h.register_model("running", "org/running")  # an eval registered it; metrics come later
    before = events(registry)
    out = lightml("prune", "--db", registry)
    assert out.returncode == 0 and out.stdout == (
        "Nothing to prune.\n"
        "  Kept 1 model registered less than 24 h ago ('running'): an eval may still be logging it "
        "(--grace 0 prunes them too)\n")
    assert events(registry) == before
    dry = json.loads(lightml("prune", "--db", registry, "--dry-run", "--grace", "0", "--json").stdout)
    assert dry == {"models": [{"model": "running", "run": "eval-now"}], "runs": ["eval-now"], "dry_run": True,
                   "kept_too_new": [], "grace_seconds": 0.0}
    out = lightml("prune", "--db", registry, "--grace", "0")
    assert "Removed model 'running' (run 'eval-now')" in out.stdout and "Removed empty run 'eval-now'" in out.stdout


@pytest.mark.parametrize("grace, message", [("-5", "0 seconds or more"), ("inf", "must be finite"),
                                            ("nan", "must be finite"), ("1e999", "must be finite")])
def test_prune_refuses_a_bad_grace_period(registry: Path, grace: str, message: str) -> None:
    with LightMLHandle(registry, "scratch") as h:
        h.register_model("empty", "org/empty")
    before = events(registry)
    assert_user_error(lightml("prune", "--db", registry, "--grace", grace, "--dry-run"), message)
    assert_user_error(lightml("prune", "--db", registry, f"--grace={grace}"), message)
    assert events(registry) == before


# -- numbers and files too big to store ---------------------------------------------------------

BIG = str(10**30)  # beyond SQLite's 64-bit INTEGER


@pytest.mark.parametrize("argv, message", [
    (["metric-log", "--run", "r1", "--model", "base", "--family", "f", "--metric", "m", "--value", "1e999"],
     "beyond the float range"),
    (["metric-log", "--run", "r1", "--model", "base", "--family", "f", "--metric", "m", "--value", "1" + "0" * 400],
     "beyond the float range"),
    (["metric-log", "--run", "r1", "--model", "base", "--family", "f", "--metric", "m", "--value", "1" * 5000],
     "(5000 characters)"),
    (["metric-log", "--run", "r1", "--model", "base", "--step", BIG, "--family", "f", "--metric", "m",
      "--value", "1"], "step must be between 0 and"),
    (["metric-log", "--run", "r1", "--checkpoint", BIG, "--family", "f", "--metric", "m", "--value", "1"],
     "--checkpoint must be between 1 and"),
    (["checkpoint-register", "--run", "r1", "--model", "base", "--step", BIG, "--path", "/c"],
     "step must be between 0 and"),
    (["metric-log", "--run", "r1", "--model", "base", "--family", "f", "--metric", "m", "--value", "1",
      "--scores", "[" + "1," * 3 + str(10**400) + "]"], "too large for a float"),
])
def test_numbers_beyond_range_are_one_line_errors(registry: Path, argv: list[str], message: str) -> None:
    before = events(registry)
    result = lightml(argv[0], "--db", registry, *argv[1:])
    assert_user_error(result, message)
    assert len(result.stderr) < 300  # the number is not printed back in full
    assert events(registry) == before


def test_deeply_nested_or_huge_scores_files_are_one_line_errors(registry: Path, tmp_path: Path) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as file:  # sparse: 100 MB of size, nothing written to the disk
        file.truncate(100 * 1024 * 1024)
    before = events(registry)
    base = ["metric-log", "--db", registry, "--run", "r1", "--model", "base", "--family", "f", "--metric", "m",
            "--value", "0.5"]
    assert_user_error(lightml(*base, "--scores", f"@{deep}"), "nested too deeply")
    assert_user_error(lightml(*base, "--scores", "[" * 100_000), "nested too deeply")
    assert_user_error(lightml(*base, "--scores", f"@{huge}"), "larger than 64 MB")
    assert_user_error(lightml(*base, "--scores", "@/dev/zero"), "larger than 64 MB")  # no size to check first
    assert events(registry) == before


def test_a_schema_file_nested_too_deeply_is_one_line_and_creates_nothing(tmp_path: Path) -> None:
    schema = tmp_path / "deep.json"
    schema.write_text("[" * 100_000 + "]" * 100_000)
    assert_user_error(lightml("init", "--path", tmp_path / "reg", "--name", "main", "--schema", schema),
                      "nested too deeply")
    assert not (tmp_path / "reg" / "main.db").exists()


def test_replay_upto_beyond_64_bits_is_one_line(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    LightMLHandle(db, "r").close()
    assert_user_error(lightml("replay", "--db", db, "--out", tmp_path / "past.db", "--upto", 10**20),
                      "between 0 and 9223372036854775807")
    assert not (tmp_path / "past.db").exists()
