"""model-register, checkpoint-register and metric-log: output, the default run, bad input
(one line on stderr, exit 2, nothing written, the number not printed back in full).

Each command runs in this process (``cli``: ``main(argv)``, output captured), as a user
would type it.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from lightml.handle import LightMLHandle


def test_write_commands_round_trip(tmp_path: Path, cli) -> None:
    cli("init", "--path", tmp_path, "--name", "main")
    db = tmp_path / "main.db"
    r = cli("model-register", "--db", db, "--run", "r1", "--name", "base", "--path", "org/base", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout) == {"model_id": 1}
    r = cli("model-register", "--db", db, "--run", "r1", "--name", "sft", "--path", "org/sft", "--parent", "base")
    assert r.returncode == 0 and r.stdout.strip() == "Model registered (id 2)."
    r = cli("checkpoint-register", "--db", db, "--run", "r1", "--model", "sft", "--step", "100", "--path", "/c/100")
    assert r.returncode == 0 and r.stdout.strip() == "Checkpoint registered (id 1)."
    r = cli("metric-log", "--db", db, "--run", "r1", "--model", "sft", "--family", "f", "--metric", "m",
            "--value", "0.5", "--scores", "[1, 0, 1, 0]")
    assert r.returncode == 0 and r.stdout.strip() == "Metric logged."
    r = cli("metric-log", "--db", db, "--run", "r1", "--model", "sft", "--family", "f", "--metric", "m",
            "--value", "0.6", "--json")
    assert json.loads(r.stdout) == {"outcome": "skipped"}
    r = cli("metric-log", "--db", db, "--run", "r1", "--model", "sft", "--family", "f", "--metric", "m",
            "--value", "0.6")
    assert r.stdout.strip() == "Metric already exists, skipped. Use --force to overwrite."
    r = cli("metric-log", "--db", db, "--run", "r1", "--model", "sft", "--family", "f", "--metric", "m",
            "--value", "0.6", "--force")
    assert r.stdout.strip() == "Metric updated (force)."
    r = cli("metric-log", "--db", db, "--run", "r1", "--model", "sft", "--step", "100", "--family", "f",
            "--metric", "m", "--value", "0.4")
    assert r.returncode == 0 and r.stdout.strip() == "Metric logged."
    r = cli("metric-log", "--db", db, "--run", "r1", "--checkpoint", "1", "--family", "f",
            "--metric", "m2", "--value", "0.45", "--json")
    assert json.loads(r.stdout) == {"outcome": "inserted"}
    with LightMLHandle(db) as h:
        assert h.get_detailed_scores("sft", "f", "m") is None  # the forced overwrite gave no scores
        assert [e["action"] for e in h.metric_history("sft", "f", "m")] == ["inserted", "overwritten"]
        assert h.metric_history("sft", "f", "m", step=100)[0]["value"] == 0.4
        assert all(e["actor"].endswith("(cli)") for e in h.metric_history("sft", "f", "m"))


@pytest.mark.parametrize("bad", [["--name", "m", "--path", "/x", "--parent", "nosuch"],
                                 ["--name", " ", "--path", "/x"], ["--name", "m", "--path", ""]])
def test_model_register_with_bad_input_leaves_no_new_run(arc_registry: Path, bad: list[str], assert_user_error,
                                                         cli) -> None:
    import sqlite3

    def log(db: Path) -> list:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT seq, type FROM events ORDER BY seq").fetchall()

    before = log(arc_registry)
    assert_user_error(cli("model-register", "--db", arc_registry, "--run", "typo-run", *bad))
    assert log(arc_registry) == before  # no run_created left behind


def test_model_register_again_after_its_parent_was_deleted(arc_registry: Path, cli) -> None:
    with LightMLHandle(arc_registry, "r1") as h:
        h.delete_model("base")  # sft's parent
    # re-running a register script: the model exists, so its id comes back, parent or not
    result = cli("model-register", "--db", arc_registry, "--run", "r1", "--name", "sft", "--path", "org/sft",
                 "--parent", "base", "--json")
    assert result.returncode == 0, result.stderr


def test_write_commands_without_run_use_the_benchmarks_run(sft_in_two_runs: Path, cli) -> None:
    assert cli("model-register", "--db", sft_in_two_runs, "--name", "llama", "--path", "org/llama").returncode == 0
    assert cli("checkpoint-register", "--db", sft_in_two_runs, "--model", "llama", "--step", "100",
               "--path", "/ckpt/100").returncode == 0
    assert cli("metric-log", "--db", sft_in_two_runs, "--model", "llama", "--family", "eval", "--metric", "acc",
               "--value", "0.6").returncode == 0
    assert cli("metric-log", "--db", sft_in_two_runs, "--model", "llama", "--step", "100", "--family", "eval",
               "--metric", "acc", "--value", "0.55").returncode == 0
    with sqlite3.connect(sft_in_two_runs) as conn:
        rows = conn.execute("SELECT r.run_name, m.model_name, c.step, x.value FROM metrics x "
                            "JOIN model m ON m.id = coalesce(x.model_id, (SELECT model_id FROM checkpoint "
                            "WHERE id = x.checkpoint_id)) JOIN run r ON r.id = m.run_id "
                            "LEFT JOIN checkpoint c ON c.id = x.checkpoint_id WHERE m.model_name = 'llama' "
                            "ORDER BY x.id").fetchall()
    assert rows == [("benchmarks", "llama", None, 0.6), ("benchmarks", "llama", 100, 0.55)]


# -- numbers and files too big to store ------------------------------------------------------


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
def test_numbers_beyond_range_are_one_line_errors(sft_in_two_runs: Path, argv: list[str], message: str, log_rows, cli,
                                                  assert_user_error) -> None:
    before = log_rows(sft_in_two_runs)
    result = cli(argv[0], "--db", sft_in_two_runs, *argv[1:])
    assert_user_error(result, message)
    assert len(result.stderr) < 300  # the number is not printed back in full
    assert log_rows(sft_in_two_runs) == before


def test_deeply_nested_or_huge_scores_files_are_one_line_errors(sft_in_two_runs: Path, tmp_path: Path, log_rows,
                                                                assert_user_error, cli) -> None:
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    huge = tmp_path / "huge.json"
    with open(huge, "wb") as file:  # sparse: 100 MB of size, nothing written to the disk
        file.truncate(100 * 1024 * 1024)
    before = log_rows(sft_in_two_runs)
    base = ["metric-log", "--db", sft_in_two_runs, "--run", "r1", "--model", "base", "--family", "f", "--metric", "m",
            "--value", "0.5"]
    assert_user_error(cli(*base, "--scores", f"@{deep}"), "nested too deeply")
    assert_user_error(cli(*base, "--scores", "[" * 100_000), "nested too deeply")
    assert_user_error(cli(*base, "--scores", f"@{huge}"), "larger than 64 MB")
    assert_user_error(cli(*base, "--scores", "@/dev/zero"), "larger than 64 MB")  # no size to check first
    assert log_rows(sft_in_two_runs) == before
