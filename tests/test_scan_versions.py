"""scan on real output of several lm-eval versions (tests/data/README.md says how each was made):
a group evaluated at two n-shot values in one model folder keeps both aggregates, and every
number of a results file is imported or reported with a reason."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import pytest

from lightml.handle import LightMLHandle
from lightml.ingest.lm_eval_format import NOT_METRICS, family_for, metric_name, parse_results
from lightml.ingest.scan import ScanStats, scan_and_import
from test_cli import lightml

DATA = Path(__file__).parent / "data"
# folder -> the lm-eval version that wrote it; each holds EleutherAI__pythia-70m, tiny_suite at 0 and 2 shots
GROUP_RUNS = {"lm_eval_049": "0.4.9.2", "lm_eval_0413_groups": "0.4.13"}
MODEL = "EleutherAI__pythia-70m"


def stored(db: Path, model: str) -> dict[tuple[str, str], float]:
    with sqlite3.connect(db) as conn:
        return {(f, m): v for f, m, v in conn.execute(
            "SELECT x.family, x.metric_name, x.value FROM metrics x JOIN model mo ON mo.id = x.model_id "
            "WHERE mo.model_name = ?", (model,))}


def numbers_in(path: Path) -> list[tuple[str, str, float]]:
    """Every (task, key, number) of a results file's ``results`` and ``groups``, read here
    without LightML's parser."""
    data = json.loads(path.read_text())
    found = []
    for section in ("results", "groups"):
        for task, values in (data.get(section) or {}).items():
            for key, value in values.items():
                if key not in NOT_METRICS and isinstance(value, (int, float)) and not isinstance(value, bool):
                    found.append((task, key, value))
    return found


def unaccounted(folder: Path, stats: ScanStats, metrics: dict[tuple[str, str], float]) -> list[str]:
    """Numbers of the folder's results files that are neither stored (under some family, with
    that value) nor named in a skip of that file."""
    missing = []
    for path in sorted(folder.glob("results_*.json")):
        reasons = " ".join(s.reason for s in stats.skips if s.path == str(path))
        for task, key, value in numbers_in(path):
            name = metric_name(key)
            task_name = task.strip().removeprefix("- ")
            if any(f.startswith(task_name) and m == name and v == value for (f, m), v in metrics.items()):
                continue
            if f"{task_name}/{name}" not in reasons:
                missing.append(f"{path.name}: {task}/{key} = {value}")
    return missing


@pytest.mark.parametrize("folder", sorted(GROUP_RUNS))
def test_a_group_at_two_nshot_values_keeps_both_aggregates(folder: str, tmp_path: Path) -> None:
    db = tmp_path / "reg.db"
    stats = scan_and_import(db, "r", DATA / folder)
    metrics = stored(db, MODEL)
    # lm-eval 0.4.9 does not list the group under n-shot: its n-shot is its subtasks'
    by_shots = {}
    for path in sorted((DATA / folder / MODEL).glob("results_*.json")):
        data = json.loads(path.read_text())
        by_shots[data["n-shot"]["tiny_mc"]] = data["results"]["tiny_suite"]["acc,none"]
    assert sorted(by_shots) == [0, 2]
    for shots, value in by_shots.items():
        assert metrics[(f"tiny_suite_{shots}shot", "acc")] == value
    assert ("tiny_suite", "acc") not in metrics
    assert not stats.skips
    assert unaccounted(DATA / folder / MODEL, stats, metrics) == []


def test_every_number_of_every_fixture_is_imported_or_reported(tmp_path: Path) -> None:
    for root in ["lm_eval_0413", *GROUP_RUNS]:
        db = tmp_path / f"{root}.db"
        stats = scan_and_import(db, "r", DATA / root)
        for folder in sorted((DATA / root).iterdir()):
            assert unaccounted(folder, stats, stored(db, folder.name)) == [], (root, folder.name)


def test_a_value_replaced_by_a_newer_results_file_is_reported(tmp_path: Path) -> None:
    """The same model evaluated twice at the same n-shot (seeds 0, then 1: real files of
    dummy-a and dummy-b): the newer run's values are imported, and each value of the older
    run that they replace is reported as superseded, naming the newer file."""
    folder = tmp_path / "results" / "rerun"
    folder.mkdir(parents=True)
    for source in ("dummy-a", "dummy-b"):  # dummy-b's results file has the later timestamp
        for path in (DATA / "lm_eval_0413" / source).iterdir():
            shutil.copy(path, folder / path.name)
    older, newer = sorted(folder.glob("results_*.json"))
    stats = scan_and_import(tmp_path / "reg.db", "r", tmp_path / "results")
    metrics = stored(tmp_path / "reg.db", "rerun")
    newer_values = json.loads(newer.read_text())["results"]
    assert metrics[("tiny_mc", "acc")] == newer_values["tiny_mc"]["acc,none"]
    superseded = [s.reason for s in stats.skips if s.path == str(older)]
    why = f"superseded by the newer results file {newer.name} (same task, same or unknown n-shot)"
    assert f"tiny_mc/acc: {why}" in superseded and f"tiny_suite/acc: {why}" in superseded
    assert unaccounted(folder, stats, metrics) == []


def test_values_lm_eval_writes_twice_or_differently_are_reported() -> None:
    """Shapes a results file can take that would lose a value silently: two keys that are
    one metric name, a group whose ``groups`` entry disagrees with its ``results`` entry."""
    data = json.loads(next((DATA / "lm_eval_049" / MODEL).glob("results_*.json")).read_text())
    data["results"]["tiny_mc"]["acc"] = 0.5  # beside "acc,none"
    data["groups"]["tiny_suite"]["acc,none"] = 0.99
    tasks, problems = parse_results(data)
    assert tasks["tiny_mc"].metrics["acc"] == data["results"]["tiny_mc"]["acc,none"]
    assert "tiny_mc/acc: the same metric as 'acc,none' (acc): not imported" in problems
    assert any(p.startswith("tiny_suite/acc: 'groups' says 0.99") for p in problems)


def test_a_group_nshot_comes_from_its_subtasks_only_when_they_agree() -> None:
    data = json.loads(next((DATA / "lm_eval_049" / MODEL).glob("results_*.json")).read_text())
    assert "tiny_suite" not in data["n-shot"]
    assert parse_results(data)[0]["tiny_suite"].nshot == data["n-shot"]["tiny_mc"]
    data["n-shot"]["tiny_math"] = 7
    assert parse_results(data)[0]["tiny_suite"].nshot is None  # mixed: not guessed


def test_one_family_rule_for_scan_and_the_example() -> None:
    assert family_for("tiny_mc", 0, {0}) == "tiny_mc"
    assert family_for("tiny_mc", 5, {0, 5}) == "tiny_mc_5shot"
    assert family_for("tiny_mc", 5, {0, 5}, "{task}_{nshot}shot") == "tiny_mc_5shot"
    assert family_for("tiny_mc", None, {None, 0}) == "tiny_mc"


def test_scan_without_run_imports_into_the_default_run(tmp_path: Path) -> None:
    """LightML 1.4's default: no --run means the run "benchmarks", created by the import."""
    db = tmp_path / "reg.db"
    LightMLHandle(db).close()
    done = lightml("scan", "--db", db, "--path", DATA / "lm_eval_049", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["models_registered"] == 1
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT r.run_name, m.model_name FROM model m JOIN run r ON r.id = m.run_id").fetchall() \
            == [("benchmarks", MODEL)]
