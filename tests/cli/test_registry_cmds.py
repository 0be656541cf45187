"""init, verify, replay (--out, --upto, --as-of), demo, version and --help, and usage errors
(argparse's, in one line).

Each command runs in this process (``cli``: ``main(argv)``, output captured), as a user
would type it.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from lightml.errors import InvalidInputError
from lightml.handle import LightMLHandle
from projections.guard import MARKER_TABLE


def test_init_creates_registry_with_schema(tmp_path: Path, cli) -> None:
    schema = tmp_path / "schema.json"
    schema.write_text(json.dumps([{"family": "benchmarks_ita", "metrics": {"Hella": "float", "MMLU": "float"}}]))
    result = cli("init", "--path", tmp_path / "reg", "--name", "main", "--schema", schema)
    assert result.returncode == 0, result.stderr
    db = tmp_path / "reg" / "main.db"
    assert f"Registry created at: {db}" in result.stdout
    with sqlite3.connect(db) as conn:
        rules = set(conn.execute("SELECT family, metric_name FROM registry_schema"))
    assert rules == {("benchmarks_ita", "Hella"), ("benchmarks_ita", "MMLU")}
    again = cli("init", "--path", tmp_path / "reg", "--name", "main")
    assert again.returncode == 0 and "already exists" in again.stdout


def test_verify_replay_and_as_of(arc_registry: Path, tmp_path: Path, cli, assert_user_error) -> None:
    r = cli("verify", "--db", arc_registry)
    assert r.returncode == 0 and r.stdout.startswith("OK:")
    r = cli("replay", "--db", arc_registry)
    assert r.returncode == 0 and "Rebuilt the read tables" in r.stdout
    past = tmp_path / "past.db"
    r = cli("replay", "--db", arc_registry, "--out", past, "--upto", "4")
    assert r.returncode == 0, r.stderr
    with sqlite3.connect(past) as conn:
        assert conn.execute("SELECT count(*) FROM events").fetchone()[0] == 4
        assert conn.execute("SELECT value FROM metrics").fetchall() == [(0.31,)]
    # --as-of a time before everything: an empty registry, but a valid one
    early = tmp_path / "early.db"
    r = cli("replay", "--db", arc_registry, "--out", early, "--as-of", "2000-01-01T00:00:00")
    assert r.returncode == 0, r.stderr
    with sqlite3.connect(early) as conn:
        assert conn.execute("SELECT count(*) FROM model").fetchone()[0] == 0
    assert_user_error(cli("replay", "--db", arc_registry, "--upto", "3"))  # never rewinds the live file
    assert_user_error(cli("replay", "--db", arc_registry, "--out", past))  # never overwrites a file
    assert_user_error(cli("replay", "--db", arc_registry, "--out", early.with_name("x.db"), "--as-of", "yesterday"))


def test_python_replay_refuses_as_of_with_upto_and_a_rewind_in_place(arc_registry: Path, tmp_path: Path) -> None:
    from lightml.log.replay import replay

    with pytest.raises(InvalidInputError, match="not both"):
        replay(arc_registry, tmp_path / "past.db", as_of="2026-01-01T00:00:00", upto=2)
    with pytest.raises(InvalidInputError, match="never rewind the live file"):
        replay(arc_registry, upto=2)
    assert not (tmp_path / "past.db").exists()


@pytest.mark.tampered
def test_verify_reports_tampering(arc_registry: Path, cli) -> None:
    with sqlite3.connect(arc_registry) as conn:
        conn.execute(f"INSERT INTO {MARKER_TABLE} VALUES (1)")  # past the guard, as only LightML writes
        conn.execute("UPDATE metrics SET value = 0.99 WHERE id = 1")
        conn.execute(f"DELETE FROM {MARKER_TABLE}")
    r = cli("verify", "--db", arc_registry)
    assert r.returncode == 1
    assert "metrics" in r.stderr and "0.99" in r.stderr


def test_demo_builds_the_documented_registry(tmp_path: Path, cli, assert_user_error) -> None:
    r = cli("demo", cwd=tmp_path)
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
    assert cli("verify", "--db", db).returncode == 0
    # Running it again rebuilds the demo; it never replaces another registry without --overwrite.
    assert cli("demo", cwd=tmp_path).returncode == 0
    mine = tmp_path / "mine"
    mine.mkdir()
    with LightMLHandle(mine / "main.db", run_name="work") as h:
        h.register_model("precious", "org/precious")
    assert_user_error(cli("demo", "--path", mine, cwd=tmp_path))
    with LightMLHandle(mine / "main.db") as h:
        assert h.model_exists("precious")
    assert cli("demo", "--path", mine, "--overwrite", cwd=tmp_path).returncode == 0
    # The commands the demo suggests work as printed.
    r = cli("history", "--db", db, "--model", "llama-1b-dpo", "--family", "reasoning",
            "--metric", "gsm8k/exact_match")
    assert r.returncode == 0 and "overwritten" in r.stdout


def test_usage_errors_are_one_line(arc_registry: Path, cli, assert_user_error) -> None:
    r = cli("metric-log", "--db", arc_registry, "--run", "r1", "--model", "base", "--family", "f", "--metric", "m")
    assert_user_error(r)
    assert "--value" in r.stderr and "lightml metric-log --help" in r.stderr
    assert_user_error(cli("history", "--db", arc_registry, "--model", "base", "--family", "f", "--metric", "m",
                          "--step", "ten"))
    assert_user_error(cli("no-such-command"))


def test_version_and_help(cli) -> None:
    from lightml import __version__

    assert cli("version").stdout.strip() == f"lightml {__version__}"
    r = cli("--help")
    assert r.returncode == 0
    from lightml.cli.main import COMMANDS

    for command in COMMANDS:
        assert command in r.stdout


# -- files and numbers too big to read -------------------------------------------------------


def test_a_schema_file_nested_too_deeply_is_one_line_and_creates_nothing(tmp_path: Path, assert_user_error,
                                                                         cli) -> None:
    schema = tmp_path / "deep.json"
    schema.write_text("[" * 100_000 + "]" * 100_000)
    assert_user_error(cli("init", "--path", tmp_path / "reg", "--name", "main", "--schema", schema),
                      "nested too deeply")
    assert not (tmp_path / "reg" / "main.db").exists()


def test_replay_upto_beyond_64_bits_is_one_line(tmp_path: Path, assert_user_error, cli) -> None:
    db = tmp_path / "r.db"
    LightMLHandle(db, "r").close()
    assert_user_error(cli("replay", "--db", db, "--out", tmp_path / "past.db", "--upto", 10**20),
                      "between 0 and 9223372036854775807")
    assert not (tmp_path / "past.db").exists()


def test_init_with_db_of_a_file_is_path_and_name(cli, tmp_path, assert_user_error):
    done = cli("init", "--db", str(tmp_path / "main.db"))
    assert done.returncode == 0 and (tmp_path / "main.db").is_file()
    for argv, problem in ((("--db", str(tmp_path / "main.txt")), "give a postgresql:// URL or a file name ending in .db"),
                          (("--db", str(tmp_path / "b.db"), "--name", "b"), "not both"),
                          ((), "give --path and --name")):
        assert_user_error(cli("init", *argv), problem)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["main.db"]
