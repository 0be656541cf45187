"""scan_and_import / lightml scan / lightml watch on real lm-eval output (tests/data)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lightml import verify
from lightml.errors import InvalidInputError
from lightml.handle import LightMLHandle
from lightml.scan import scan_and_import
from test_cli import assert_user_error, lightml

DATA = Path(__file__).parent / "data"


@pytest.fixture
def results(tmp_path: Path) -> Path:
    """A writable copy of the lm-eval 0.4.13 outputs (folders dummy-a .. dummy-d)."""
    return Path(shutil.copytree(DATA / "lm_eval_0413", tmp_path / "results"))


def metrics_of(db: Path, model: str) -> dict[tuple[str, str], float]:
    with sqlite3.connect(db) as conn:
        return {(f, m): v for f, m, v in conn.execute(
            "SELECT x.family, x.metric_name, x.value FROM metrics x JOIN model mo ON mo.id = x.model_id "
            "WHERE mo.model_name = ?", (model,))}


def event_count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]


def test_lm_eval_0413_results_and_samples(results: Path, tmp_path: Path) -> None:
    db = tmp_path / "reg.db"
    stats = scan_and_import(db, "lm-eval", results)
    assert stats.models_registered == 4 and stats.files_read == 12 and not stats.skipped_dirs
    a = metrics_of(db, "dummy-a")
    assert a[("tiny_mc", "acc")] == 0.15 and ("tiny_mc", "acc_stderr") in a
    # two filters stay two metrics; the "none" filter is dropped from the name
    assert a[("tiny_math", "exact_match,strict-match")] == 0.0
    assert ("tiny_math", "exact_match,flexible-extract") in a and ("tiny_math", "exact_match") not in a
    assert a[("tiny_suite", "acc")] == 0.15  # a group is its own family
    assert not {name for _, name in a} & {"alias", "name", "sample_len", "sample_count"}
    # two results files at 0 and 5 shots: two families, nothing overwritten, and a note says so
    c = metrics_of(db, "dummy-c")
    assert {f for f, _ in c} == {"tiny_mc_0shot", "tiny_mc_5shot"}
    assert any("tiny_mc has results at [0, 5] shots" in note for note in stats.notes)
    # per-sample scores of every metric of a, b, c (two files) and d
    assert stats.scores_imported == 4 + 4 + 4 + 2  # acc, acc_norm, two exact_match filters; c twice; d: tiny_mc
    with LightMLHandle(db) as h:
        scores = h.get_detailed_scores("dummy-a", "tiny_mc", "acc")
        assert len(scores) == 60 and sum(scores) / 60 == pytest.approx(0.15)
        paired = h.compare_stats("dummy-a", "dummy-b", "tiny_mc", "acc")
        assert paired["n"] == 60 and paired["mean_b"] == pytest.approx(0.3)
        # d ran with --limit 20: other documents, so no silent mis-pairing
        with pytest.raises(InvalidInputError, match="different documents"):
            h.compare_stats("dummy-a", "dummy-d", "tiny_mc", "acc")
    assert verify(db).ok


def test_rescan_is_idempotent_and_skips_unchanged_files(results: Path, tmp_path: Path) -> None:
    db = tmp_path / "reg.db"
    scan_and_import(db, "r", results)
    events = event_count(db)
    for _ in range(10):
        again = scan_and_import(db, "r", results)
        assert (again.metrics_logged, again.files_read, again.files_unchanged) == (0, 0, 12)
    assert event_count(db) == events
    # touched but identical: hashed, found equal, still skipped
    results_file = next((results / "dummy-a").glob("results_*.json"))
    os.utime(results_file, ns=(time.time_ns(), time.time_ns()))
    assert scan_and_import(db, "r", results).files_read == 0
    # changed: the folder is read again; without force the existing values stay
    data = json.loads(results_file.read_text())
    data["results"]["tiny_mc"]["acc,none"] = 0.99
    data["results"]["tiny_mc"]["brand_new,none"] = 0.5
    results_file.write_text(json.dumps(data))
    changed = scan_and_import(db, "r", results)
    assert changed.files_read == 3 and changed.metrics_logged == 1 and changed.metrics_skipped > 0
    assert metrics_of(db, "dummy-a")[("tiny_mc", "acc")] == 0.15
    forced = scan_and_import(db, "r", results, force=True)
    assert metrics_of(db, "dummy-a")[("tiny_mc", "acc")] == 0.99 and forced.metrics_logged > 0
    with LightMLHandle(db) as h:
        assert [e["value"] for e in h.metric_history("dummy-a", "tiny_mc", "acc")] == [0.15, 0.99]
    # a deleted model is imported again by the next scan
    with LightMLHandle(db, "r") as h:
        h.delete_model("dummy-b")
    assert scan_and_import(db, "r", results).models_registered == 1
    assert verify(db).ok


def test_lm_eval_049_shape_and_names_from_the_results_file(tmp_path: Path) -> None:
    db = tmp_path / "reg.db"
    stats = scan_and_import(db, "old", DATA / "lm_eval_049", name_from="results")
    assert stats.models_registered == 1 and not stats.skips
    m = metrics_of(db, "EleutherAI/pythia-70m")
    assert {f for f, _ in m} == {"tiny_suite", "tiny_math", "tiny_mc"}  # " - tiny_mc" alias cleaned
    assert ("tiny_suite", "acc_stderr") not in m  # "N/A" is not a metric
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT path FROM model").fetchone() == ("EleutherAI/pythia-70m",)
    by_folder = scan_and_import(tmp_path / "b.db", "old", DATA / "lm_eval_049", model_prefix="v1/")
    assert by_folder.imports[0].model == "v1/EleutherAI__pythia-70m"


def test_family_template_with_nshot(results: Path, tmp_path: Path) -> None:
    db = tmp_path / "reg.db"
    scan_and_import(db, "r", results, family_template="{task}_{nshot}shot")
    assert ("tiny_mc_0shot", "acc") in metrics_of(db, "dummy-a")
    assert {f for f, _ in metrics_of(db, "dummy-c")} == {"tiny_mc_0shot", "tiny_mc_5shot"}
    for bad in ("{model}", "no task here", "{task"):
        with pytest.raises(InvalidInputError):
            scan_and_import(db, "r", results, family_template=bad)


def test_malformed_inputs_are_skipped_with_reasons(results: Path, tmp_path: Path) -> None:
    (results / "broken-json").mkdir()
    (results / "broken-json" / "results_2026-01-01T00-00-00.json").write_text("{not json")
    (results / "no-results").mkdir()
    (results / "no-results" / "results_2026-01-01T00-00-00.json").write_text('{"config": {}}')
    (results / "empty").mkdir()
    (results / "loop").symlink_to(results / "loop")
    bad_value = json.loads(next((results / "dummy-b").glob("results_*.json")).read_text())
    bad_value["results"]["tiny_mc"]["acc_norm,none"] = "oops"
    next((results / "dummy-b").glob("results_*.json")).write_text(json.dumps(bad_value))
    samples = next((results / "dummy-a").glob("samples_tiny_mc_*.jsonl"))
    lines = samples.read_text().splitlines()
    samples.write_text("\n".join(lines[:-1] + [lines[-1][:40]]) + "\n")  # a truncated last line
    db = tmp_path / "reg.db"
    stats = scan_and_import(db, "r", results)
    assert any("not valid JSON" in s.reason for s in stats.skips)
    assert any("no 'results' in it" in s.reason for s in stats.skips)
    assert any(s.path.endswith("loop") and "cannot open it" in s.reason for s in stats.skips)
    assert any("'oops' is not a finite number" in s.reason for s in stats.skips)
    assert any("truncated" in s.reason for s in stats.skips)
    assert any("59 documents, but the results say 60" in s.reason for s in stats.skips)
    assert set(stats.skipped_dirs) == {"broken-json", "no-results", "empty", "loop"}
    assert stats.models_registered == 4  # the good folders all made it
    assert ("tiny_mc", "acc_norm") not in metrics_of(db, "dummy-b") and ("tiny_mc", "acc") in metrics_of(db, "dummy-b")
    with LightMLHandle(db) as h:  # the truncated file's metric kept its value, without scores
        assert h.get_detailed_scores("dummy-a", "tiny_mc", "acc") is None
        assert h.get_detailed_scores("dummy-a", "tiny_math", "exact_match,strict-match") is not None


def test_one_transaction_per_model(results: Path, tmp_path: Path) -> None:
    db = tmp_path / "reg.db"
    with LightMLHandle(db, "r") as h:  # a schema that dummy-c's families break
        h.add_schema_rules([("tiny_mc", m) for m in ("acc", "acc_norm", "acc_stderr", "acc_norm_stderr")]
                           + [("tiny_math", "exact_match,strict-match")])
    stats = scan_and_import(db, "r", results)
    assert "dummy-c" in stats.skipped_dirs
    assert any("registry schema" in s.reason for s in stats.skips)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM model WHERE model_name = 'dummy-c'").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM imported_file WHERE path LIKE '%dummy-c%'").fetchone() == (0,)
    assert verify(db).ok


def test_json_format(tmp_path: Path) -> None:
    root = tmp_path / "json"
    (root / "model-x").mkdir(parents=True)
    (root / "model-x" / "metrics.json").write_text(json.dumps({"acc": 0.5, "f1": 0.25, "note": "text"}))
    (root / "model-x" / "results.json").write_text(json.dumps({"reasoning": {"arc": 0.3, "gsm8k": 0.1}}))
    (root / "model-y").mkdir()
    (root / "model-y" / "scores.json").write_text(json.dumps({"knowledge": {"mmlu": 0.4}}))
    db = tmp_path / "reg.db"
    stats = scan_and_import(db, "r", root, format="json", model_prefix="p-")
    assert metrics_of(db, "p-model-x") == {("metrics", "acc"): 0.5, ("metrics", "f1"): 0.25,
                                           ("reasoning", "arc"): 0.3, ("reasoning", "gsm8k"): 0.1}
    assert metrics_of(db, "p-model-y") == {("knowledge", "mmlu"): 0.4}
    assert any("'text' is not a finite number" in s.reason for s in stats.skips)
    with pytest.raises(InvalidInputError, match="Unknown format 'csv'"):
        scan_and_import(db, "r", root, format="csv")
    with pytest.raises(FileNotFoundError, match="Directory not found"):
        scan_and_import(db, "r", tmp_path / "nowhere")


def test_scan_cli(results: Path, tmp_path: Path) -> None:
    db = tmp_path / "reg.db"
    (results / "broken").mkdir()
    (results / "broken" / "results_x.json").write_text("{")
    result = lightml("scan", "--db", db, "--run", "r", "--path", results)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("\n  Scan complete\n  Models registered : 4\n  Metrics logged    : 32\n"
                                    "  Scores imported   : 14\n  Files read        : 13\n")
    assert "lightml scan: skipped" in result.stderr and "not valid JSON" in result.stderr
    again = json.loads(lightml("scan", "--db", db, "--run", "r", "--path", results, "--json").stdout)
    assert again["metrics_logged"] == 0 and again["files_unchanged"] == 12
    assert_user_error(lightml("scan", "--db", db, "--run", "r", "--path", tmp_path / "missing"))


def test_watch_imports_new_results_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    watched = tmp_path / "watched"
    watched.mkdir()
    db = tmp_path / "reg.db"
    proc = subprocess.Popen(
        [sys.executable, "-m", "lightml", "watch", "--db", str(db), "--run", "r", "--path", str(watched),
         "--interval", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("Watching")
        shutil.copytree(DATA / "lm_eval_0413" / "dummy-a", watched / "dummy-a")  # an eval job finishing
        line = proc.stdout.readline()
        assert "imported dummy-a: 10 metrics, 4 with per-sample scores (3 files)" in line
    finally:
        proc.send_signal(signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 0, stderr
    assert "Stopped watching." in stdout and "Traceback" not in stderr
    assert metrics_of(db, "dummy-a")[("tiny_mc", "acc")] == 0.15
