"""scan from the command line: its report, a file for a folder, a missing registry (scan and
watch refuse it before watching anything), and the default run.

Each command runs in this process (``cli``: ``main(argv)``, output captured), as a user
would type it.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

from lightml.handle import LightMLHandle


DATA = Path(__file__).resolve().parents[1] / "data"


def make_registry(db: Path) -> None:
    LightMLHandle(db).close()


def test_scan_cli(lm_eval_results: Path, tmp_path: Path, cli, assert_user_error) -> None:
    db = tmp_path / "reg.db"
    make_registry(db)
    (lm_eval_results / "broken").mkdir()
    (lm_eval_results / "broken" / "results_x.json").write_text("{")
    result = cli("scan", "--db", db, "--run", "r", "--path", lm_eval_results)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("\n  Scan complete\n  Models registered : 4\n  Metrics logged    : 32\n"
                                    "  Scores imported   : 14\n  Files read        : 13\n")
    assert "lightml scan: skipped" in result.stderr and "not valid JSON" in result.stderr
    again = json.loads(cli("scan", "--db", db, "--run", "r", "--path", lm_eval_results, "--json").stdout)
    assert again["metrics_logged"] == 0 and again["files_unchanged"] == 12
    assert_user_error(cli("scan", "--db", db, "--run", "r", "--path", tmp_path / "missing"))


def test_scan_and_watch_refuse_a_missing_registry(lm_eval_results: Path, tmp_path: Path, cli,
                                                  assert_user_error) -> None:
    typo = tmp_path / "reg-typo.db"
    for command in ("scan", "watch"):
        result = cli(command, "--db", typo, "--run", "r", "--path", lm_eval_results)
        assert_user_error(result)
        assert "registry not found" in result.stderr and not typo.exists()
    # an existing registry: the run is created when new
    db = tmp_path / "reg.db"
    make_registry(db)
    result = cli("scan", "--db", db, "--run", "new-run", "--path", lm_eval_results, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["models_registered"] == 4


MODEL = "EleutherAI__pythia-70m"


def test_scan_without_run_imports_into_the_default_run(tmp_path: Path, cli) -> None:
    """LightML 1.4's default: no --run means the run "benchmarks", created by the import."""
    db = tmp_path / "reg.db"
    LightMLHandle(db).close()
    done = cli("scan", "--db", db, "--path", DATA / "lm_eval_049", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["models_registered"] == 1
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT r.run_name, m.model_name FROM model m JOIN run r ON r.id = m.run_id").fetchall() \
            == [("benchmarks", MODEL)]


def test_scan_of_a_file_says_it_is_a_file(model_tree: Path, tmp_path: Path, cli, assert_user_error) -> None:
    a_file = tmp_path / "results.json"
    a_file.write_text("{}")
    result = cli("scan", "--db", model_tree, "--run", "r1", "--path", a_file)
    assert_user_error(result)
    assert "is a file: give the folder" in result.stderr
