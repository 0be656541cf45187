"""Every CLI command run as a subprocess, as a user would: output, exit codes, errors."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from lightml.errors import InvalidInputError
from lightml.handle import LightMLHandle
from projections.guard import MARKER_TABLE


def lightml(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "lightml", *map(str, args)],
        capture_output=True, text=True, cwd=cwd, timeout=120,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )


def assert_user_error(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    db = tmp_path / "reg.db"
    with LightMLHandle(db, run_name="r1") as h:
        h.register_model("base", "org/base")
        h.register_model("sft", "org/sft", parent_name="base")
        h.log_model_metric("base", "reasoning", "arc", 0.31)
        h.log_model_metric("sft", "reasoning", "arc", 0.35, scores=[1, 0, 1])
        h.log_model_metric("sft", "reasoning", "arc", 0.36, force=True)
        cid = h.register_checkpoint("sft", 500, "/ckpt/sft-500")
        h.log_checkpoint_metric(cid, "reasoning", "arc", 0.33)
    return db


def events_count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]


def test_init_creates_registry_with_schema(tmp_path: Path) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps([{"family": "benchmarks_ita", "metrics": {"Hella": "float", "MMLU": "float"}}]))
    result = lightml("init", "--path", tmp_path / "reg", "--name", "main", "--schema", schema)
    assert result.returncode == 0, result.stderr
    db = tmp_path / "reg" / "main.db"
    assert f"Registry created at: {db}" in result.stdout
    with sqlite3.connect(db) as conn:
        rules = set(conn.execute("SELECT family, metric_name FROM registry_schema"))
    assert rules == {("benchmarks_ita", "Hella"), ("benchmarks_ita", "MMLU")}
    again = lightml("init", "--path", tmp_path / "reg", "--name", "main")
    assert again.returncode == 0 and "already exists" in again.stdout


def test_write_commands_round_trip(tmp_path: Path) -> None:
    lightml("init", "--path", tmp_path, "--name", "main")
    db = tmp_path / "main.db"
    r = lightml("model-register", "--db", db, "--run", "r1", "--name", "base", "--path", "org/base", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"model_id": 1}
    r = lightml("model-register", "--db", db, "--run", "r1", "--name", "sft", "--path", "org/sft", "--parent", "base")
    assert r.returncode == 0 and r.stdout.strip() == "Model registered (id 2)."
    r = lightml("checkpoint-register", "--db", db, "--run", "r1", "--model", "sft", "--step", "100", "--path", "/c/100")
    assert r.returncode == 0 and r.stdout.strip() == "Checkpoint registered (id 1)."
    r = lightml("metric-log", "--db", db, "--run", "r1", "--model", "sft", "--family", "f", "--metric", "m",
                "--value", "0.5", "--scores", "[1, 0, 1, 0]")
    assert r.returncode == 0 and r.stdout.strip() == "Metric logged."
    r = lightml("metric-log", "--db", db, "--run", "r1", "--model", "sft", "--family", "f", "--metric", "m",
                "--value", "0.6", "--json")
    assert json.loads(r.stdout) == {"outcome": "skipped"}
    r = lightml("metric-log", "--db", db, "--run", "r1", "--model", "sft", "--family", "f", "--metric", "m",
                "--value", "0.6")
    assert r.stdout.strip() == "Metric already exists, skipped. Use --force to overwrite."
    r = lightml("metric-log", "--db", db, "--run", "r1", "--model", "sft", "--family", "f", "--metric", "m",
                "--value", "0.6", "--force")
    assert r.stdout.strip() == "Metric updated (force)."
    r = lightml("metric-log", "--db", db, "--run", "r1", "--model", "sft", "--step", "100", "--family", "f",
                "--metric", "m", "--value", "0.4")
    assert r.returncode == 0 and r.stdout.strip() == "Metric logged."
    r = lightml("metric-log", "--db", db, "--run", "r1", "--checkpoint", "1", "--family", "f",
                "--metric", "m2", "--value", "0.45", "--json")
    assert json.loads(r.stdout) == {"outcome": "inserted"}
    with LightMLHandle(db) as h:
        assert h.get_detailed_scores("sft", "f", "m") is None  # the forced overwrite gave no scores
        assert [e["action"] for e in h.metric_history("sft", "f", "m")] == ["inserted", "overwritten"]
        assert h.metric_history("sft", "f", "m", step=100)[0]["value"] == 0.4
        assert all(e["actor"].endswith("(cli)") for e in h.metric_history("sft", "f", "m"))


def test_exists_exact_and_glob(registry: Path) -> None:
    r = lightml("exists", "--db", registry, "--model", "base")
    assert r.returncode == 0 and r.stdout == "  ✓ exists: model='base'\n"
    r = lightml("exists", "--db", registry, "--model", "nothing")
    assert r.returncode == 1 and r.stdout == "  ✗ not found: model='nothing'\n"
    r = lightml("exists", "--db", registry, "--model", "sft", "--family", "reasoning", "--metric", "arc", "--run", "r1")
    assert r.returncode == 0 and r.stdout == "  ✓ exists: model='sft', run='r1', family='reasoning', metric='arc'\n"
    r = lightml("exists", "--db", registry, "--model", "sft", "--family", "reasoning", "--metric", "mmlu")
    assert r.returncode == 1 and "✗ not found" in r.stdout
    r = lightml("exists", "--db", registry, "--model", "*", "--family", "reasoning", "--metric", "a?c")
    assert r.returncode == 0
    assert r.stdout.splitlines() == [
        "  ✓ base  reasoning/arc = 0.3100  (run: r1)",
        "  ✓ sft  reasoning/arc = 0.3600  (run: r1)",
        "",
        "  2 match(es)",
    ]
    r = lightml("exists", "--db", registry, "--model", "s*")
    assert r.returncode == 0 and r.stdout.splitlines() == ["  ✓ sft", "", "  1 match(es)"]
    r = lightml("exists", "--db", registry, "--model", "s*", "--family", "reasoning", "--json")
    data = json.loads(r.stdout)
    assert data["exists"] is True and [m["model"] for m in data["matches"]] == ["sft"]
    r = lightml("exists", "--db", registry, "--model", "b*", "--family", "nope", "--metric", "*")
    assert r.returncode == 1 and r.stdout.strip() == "✗ no matches"


def test_history_table_and_json(registry: Path) -> None:
    r = lightml("history", "--db", registry, "--model", "sft", "--family", "reasoning", "--metric", "arc")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0] == "History of sft reasoning/arc:"
    assert lines[1].split() == ["seq", "at", "(UTC)", "action", "value", "previous", "actor"]
    assert "inserted" in lines[3] and "0.3500" in lines[3]
    assert "overwritten" in lines[4] and "0.3600" in lines[4] and "0.3500" in lines[4]
    r = lightml("history", "--db", registry, "--model", "sft", "--family", "reasoning", "--metric", "arc",
                "--step", "500", "--json")
    entries = json.loads(r.stdout)
    assert [(e["action"], e["value"]) for e in entries] == [("inserted", 0.33)]
    assert set(entries[0]) >= {"seq", "at", "action", "value", "previous_value", "actor"}


def test_verify_replay_and_as_of(registry: Path, tmp_path: Path) -> None:
    r = lightml("verify", "--db", registry)
    assert r.returncode == 0 and r.stdout.startswith("OK:")
    r = lightml("replay", "--db", registry)
    assert r.returncode == 0 and "Rebuilt the read tables" in r.stdout
    past = tmp_path / "past.db"
    r = lightml("replay", "--db", registry, "--out", past, "--upto", "4")
    assert r.returncode == 0, r.stderr
    with sqlite3.connect(past) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 4
        assert conn.execute("SELECT value FROM metrics").fetchall() == [(0.31,)]
    # --as-of a time before everything: an empty registry, but a valid one
    early = tmp_path / "early.db"
    r = lightml("replay", "--db", registry, "--out", early, "--as-of", "2000-01-01T00:00:00")
    assert r.returncode == 0, r.stderr
    with sqlite3.connect(early) as conn:
        assert conn.execute("SELECT count(*) FROM model").fetchone()[0] == 0
    assert_user_error(lightml("replay", "--db", registry, "--upto", "3"))  # never rewinds the live file
    assert_user_error(lightml("replay", "--db", registry, "--out", past))  # never overwrites a file
    assert_user_error(lightml("replay", "--db", registry, "--out", early.with_name("x.db"), "--as-of", "yesterday"))


def test_verify_reports_tampering(registry: Path) -> None:
    with sqlite3.connect(registry) as conn:
        conn.execute(f"INSERT INTO {MARKER_TABLE} VALUES (1)")  # past the guard, as only LightML writes
        conn.execute("UPDATE metrics SET value = 0.99 WHERE id = 1")
        conn.execute(f"DELETE FROM {MARKER_TABLE}")
    r = lightml("verify", "--db", registry)
    assert r.returncode == 1
    assert "metrics" in r.stderr and "0.99" in r.stderr


def test_user_errors_are_one_line_and_write_nothing(registry: Path, tmp_path: Path) -> None:
    before = events_count(registry)
    assert_user_error(lightml("metric-log", "--db", registry, "--run", "r1", "--model", "base", "--family", "f",
                              "--metric", "m", "--value", "nan"))
    assert_user_error(lightml("metric-log", "--db", registry, "--run", "r1", "--model", "base", "--family", "f",
                              "--metric", "m", "--value", "abc"))
    assert_user_error(lightml("metric-log", "--db", registry, "--run", "r1", "--model", "ghost", "--family", "f",
                              "--metric", "m", "--value", "1"))
    assert_user_error(lightml("model-register", "--db", registry, "--run", "r1", "--name", "x", "--path", "p",
                              "--parent", "ghost"))
    assert_user_error(lightml("checkpoint-register", "--db", registry, "--run", "r1", "--model", "base",
                              "--step", "-1", "--path", "/c"))
    assert events_count(registry) == before
    missing = tmp_path / "missing" / "nope.db"
    for command in (["exists", "--model", "x"], ["history", "--model", "x", "--family", "f", "--metric", "m"],
                    ["verify"], ["replay"], ["migrate"],
                    ["metric-log", "--run", "r", "--model", "m", "--family", "f", "--metric", "m", "--value", "1"]):
        assert_user_error(lightml(command[0], "--db", missing, *command[1:]))
        assert_user_error(lightml(command[0], "--db", tmp_path / "nope.db", *command[1:]))
    assert not missing.parent.exists() and not (tmp_path / "nope.db").exists()
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database" * 100)
    r = lightml("verify", "--db", garbage)
    assert_user_error(r)
    assert "not a SQLite database" in r.stderr


def test_demo_builds_the_documented_registry(tmp_path: Path) -> None:
    r = lightml("demo", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    db = tmp_path / "lightml-demo" / "main.db"
    assert "lightml history --db" in r.stdout
    with sqlite3.connect(db) as conn:
        parents = dict(conn.execute("SELECT model_name, parent_id FROM model"))
        names = dict(conn.execute("SELECT id, model_name FROM model"))
        assert names[parents["llama-1b-dpo"]] == "llama-1b-sft"
        assert names[parents["llama-1b-sft"]] == "llama-1b-base"
        assert conn.execute("SELECT count(DISTINCT family) FROM metrics").fetchone()[0] == 3
        assert conn.execute("SELECT count(*) FROM checkpoint").fetchone()[0] == 3
        assert conn.execute("SELECT count(*) FROM detailed_scores").fetchone()[0] > 0
        types = [t for (t,) in conn.execute("SELECT type FROM events")]
    assert types.count("metric_overwritten") == 1 and types.count("model_deleted") == 1
    assert lightml("verify", "--db", db).returncode == 0
    # Running it again rebuilds the demo; it never replaces another registry without --overwrite.
    assert lightml("demo", cwd=tmp_path).returncode == 0
    mine = tmp_path / "mine"
    mine.mkdir()
    with LightMLHandle(mine / "main.db", run_name="work") as h:
        h.register_model("precious", "org/precious")
    assert_user_error(lightml("demo", "--path", mine, cwd=tmp_path))
    with LightMLHandle(mine / "main.db") as h:
        assert h.model_exists("precious")
    assert lightml("demo", "--path", mine, "--overwrite", cwd=tmp_path).returncode == 0
    # The commands the demo suggests work as printed.
    r = lightml("history", "--db", db, "--model", "llama-1b-dpo", "--family", "reasoning",
                "--metric", "gsm8k/exact_match")
    assert r.returncode == 0 and "overwritten" in r.stdout


def test_usage_errors_are_one_line(registry: Path) -> None:
    r = lightml("metric-log", "--db", registry, "--run", "r1", "--model", "base", "--family", "f", "--metric", "m")
    assert_user_error(r)
    assert "--value" in r.stderr and "lightml metric-log --help" in r.stderr
    assert_user_error(lightml("history", "--db", registry, "--model", "base", "--family", "f", "--metric", "m",
                              "--step", "ten"))
    assert_user_error(lightml("no-such-command"))


def test_version_and_help() -> None:
    from lightml import __version__

    assert lightml("version").stdout.strip() == f"lightml {__version__}"
    r = lightml("--help")
    assert r.returncode == 0
    from lightml.cli.main import COMMANDS

    for command in COMMANDS:
        assert command in r.stdout


@pytest.mark.parametrize("bad", [["--name", "m", "--path", "/x", "--parent", "nosuch"],
                                 ["--name", " ", "--path", "/x"], ["--name", "m", "--path", ""]])
def test_model_register_with_bad_input_leaves_no_new_run(registry: Path, bad: list[str]) -> None:
    import sqlite3

    def log(db: Path) -> list:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT seq, type FROM events ORDER BY seq").fetchall()

    before = log(registry)
    assert_user_error(lightml("model-register", "--db", registry, "--run", "typo-run", *bad))
    assert log(registry) == before  # no run_created left behind


def test_python_replay_refuses_as_of_with_upto_and_a_rewind_in_place(registry: Path, tmp_path: Path) -> None:
    from lightml.log.replay import replay

    with pytest.raises(InvalidInputError, match="not both"):
        replay(registry, tmp_path / "past.db", as_of="2026-01-01T00:00:00", upto=2)
    with pytest.raises(InvalidInputError, match="never rewind the live file"):
        replay(registry, upto=2)
    assert not (tmp_path / "past.db").exists()


def test_model_register_again_after_its_parent_was_deleted(registry: Path) -> None:
    with LightMLHandle(registry, "r1") as h:
        h.delete_model("base")  # sft's parent
    # re-running a register script: the model exists, so its id comes back, parent or not
    result = lightml("model-register", "--db", registry, "--run", "r1", "--name", "sft", "--path", "org/sft",
                     "--parent", "base", "--json")
    assert result.returncode == 0, result.stderr
