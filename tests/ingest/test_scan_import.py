"""scan_and_import on real lm-eval output (tests/data): what is imported, rescans that read
nothing, family templates, and what is skipped with a reason."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from lightml import verify
from lightml.errors import InvalidInputError
from lightml.handle import LightMLHandle
from lightml.ingest.scan import scan_and_import


DATA = Path(__file__).resolve().parents[1] / "data"


def make_registry(db: Path) -> None:
    LightMLHandle(db).close()


def event_count(db: Path) -> int:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]


def test_lm_eval_0413_results_and_samples(lm_eval_results: Path, tmp_path: Path, metrics_of) -> None:
    db = tmp_path / "reg.db"
    stats = scan_and_import(db, "lm-eval", lm_eval_results)
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


def test_rescan_is_idempotent_and_skips_unchanged_files(lm_eval_results: Path, tmp_path: Path, metrics_of) -> None:
    db = tmp_path / "reg.db"
    scan_and_import(db, "r", lm_eval_results)
    events = event_count(db)
    for _ in range(10):
        again = scan_and_import(db, "r", lm_eval_results)
        assert (again.metrics_logged, again.files_read, again.files_unchanged) == (0, 0, 12)
    assert event_count(db) == events
    # touched but identical: hashed, found equal, still skipped
    results_file = next((lm_eval_results / "dummy-a").glob("results_*.json"))
    os.utime(results_file, ns=(time.time_ns(), time.time_ns()))
    assert scan_and_import(db, "r", lm_eval_results).files_read == 0
    # changed: the folder is read again; without force the existing values stay
    data = json.loads(results_file.read_text())
    data["results"]["tiny_mc"]["acc,none"] = 0.99
    data["results"]["tiny_mc"]["brand_new,none"] = 0.5
    results_file.write_text(json.dumps(data))
    changed = scan_and_import(db, "r", lm_eval_results)
    assert changed.files_read == 3 and changed.metrics_logged == 1 and changed.metrics_skipped > 0
    assert metrics_of(db, "dummy-a")[("tiny_mc", "acc")] == 0.15
    forced = scan_and_import(db, "r", lm_eval_results, force=True)
    assert metrics_of(db, "dummy-a")[("tiny_mc", "acc")] == 0.99 and forced.metrics_logged > 0
    with LightMLHandle(db) as h:
        assert [e["value"] for e in h.metric_history("dummy-a", "tiny_mc", "acc")] == [0.15, 0.99]
    # a deleted model is imported again by the next scan
    with LightMLHandle(db, "r") as h:
        h.delete_model("dummy-b")
    assert scan_and_import(db, "r", lm_eval_results).models_registered == 1
    assert verify(db).ok


def test_lm_eval_049_shape_and_names_from_the_results_file(tmp_path: Path, metrics_of) -> None:
    """Real lm-eval 0.4.9.2 output: groups also in ``results``, subtasks' aliases indented
    (" - tiny_mc"), ``model_args`` as a ``pretrained=...`` string."""
    db = tmp_path / "reg.db"
    stats = scan_and_import(db, "old", DATA / "lm_eval_049", name_from="results")
    assert stats.models_registered == 1 and not stats.skips
    m = metrics_of(db, "EleutherAI/pythia-70m")
    assert {f for f, _ in m} == {f"{task}_{n}shot" for task in ("tiny_suite", "tiny_math", "tiny_mc") for n in (0, 2)}
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT path FROM model").fetchone() == ("EleutherAI/pythia-70m",)
    by_folder = scan_and_import(tmp_path / "b.db", "old", DATA / "lm_eval_049", model_prefix="v1/")
    assert by_folder.imports[0].model == "v1/EleutherAI__pythia-70m"


def test_family_template_with_nshot(lm_eval_results: Path, tmp_path: Path, metrics_of) -> None:
    db = tmp_path / "reg.db"
    scan_and_import(db, "r", lm_eval_results, family_template="{task}_{nshot}shot")
    assert ("tiny_mc_0shot", "acc") in metrics_of(db, "dummy-a")
    assert {f for f, _ in metrics_of(db, "dummy-c")} == {"tiny_mc_0shot", "tiny_mc_5shot"}
    for bad in ("{model}", "no task here", "{task"):
        with pytest.raises(InvalidInputError):
            scan_and_import(db, "r", lm_eval_results, family_template=bad)


def test_malformed_inputs_are_skipped_with_reasons(lm_eval_results: Path, tmp_path: Path, metrics_of) -> None:
    (lm_eval_results / "broken-json").mkdir()
    (lm_eval_results / "broken-json" / "results_2026-01-01T00-00-00.json").write_text("{not json")
    (lm_eval_results / "no-results").mkdir()
    (lm_eval_results / "no-results" / "results_2026-01-01T00-00-00.json").write_text('{"config": {}}')
    (lm_eval_results / "empty").mkdir()
    (lm_eval_results / "loop").symlink_to(lm_eval_results / "loop")
    bad_value = json.loads(next((lm_eval_results / "dummy-b").glob("results_*.json")).read_text())
    bad_value["results"]["tiny_mc"]["acc_norm,none"] = "oops"
    next((lm_eval_results / "dummy-b").glob("results_*.json")).write_text(json.dumps(bad_value))
    samples = next((lm_eval_results / "dummy-a").glob("samples_tiny_mc_*.jsonl"))
    lines = samples.read_text().splitlines()
    samples.write_text("\n".join(lines[:-1] + [lines[-1][:40]]) + "\n")  # a truncated last line
    db = tmp_path / "reg.db"
    stats = scan_and_import(db, "r", lm_eval_results)
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


def test_one_transaction_per_model(lm_eval_results: Path, tmp_path: Path) -> None:
    db = tmp_path / "reg.db"
    with LightMLHandle(db, "r") as h:  # a schema that dummy-c's families break
        h.add_schema_rules([("tiny_mc", m) for m in ("acc", "acc_norm", "acc_stderr", "acc_norm_stderr")]
                           + [("tiny_math", "exact_match,strict-match")])
    stats = scan_and_import(db, "r", lm_eval_results)
    assert "dummy-c" in stats.skipped_dirs
    assert any("registry schema" in s.reason for s in stats.skips)
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM model WHERE model_name = 'dummy-c'").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM imported_file WHERE path LIKE '%dummy-c%'").fetchone() == (0,)
    assert verify(db).ok


def test_json_format(tmp_path: Path, metrics_of) -> None:
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


# -- review defects --------------------------------------------------------------------------


def _second_results(folder: Path, stamp: str, acc: float) -> None:
    """Another results file for tiny_mc (same n-shot) with only acc, of another value, and no
    samples file."""
    data = json.loads(next(folder.glob("results_*.json")).read_text())
    data["results"] = {"tiny_mc": {"alias": "tiny_mc", "acc,none": acc}}
    data.pop("groups", None)
    (folder / f"results_{stamp}.json").write_text(json.dumps(data))


def test_newer_results_file_drops_the_older_samples(tmp_path: Path, metrics_of) -> None:
    root = tmp_path / "results"
    newer_plain = root / "newer-plain"  # the older file has samples, the newer one does not
    shutil.copytree(DATA / "lm_eval_0413" / "dummy-a", newer_plain)
    _second_results(newer_plain, "2099-01-01T00-00-00.000000", 0.5)
    older_plain = root / "older-plain"  # the older file has none, the newer one has samples
    shutil.copytree(DATA / "lm_eval_0413" / "dummy-a", older_plain)
    _second_results(older_plain, "2000-01-01T00-00-00.000000", 0.5)
    db = tmp_path / "reg.db"
    scan_and_import(db, "r", root)
    assert metrics_of(db, "newer-plain")[("tiny_mc", "acc")] == 0.5
    assert metrics_of(db, "older-plain")[("tiny_mc", "acc")] == 0.15
    with LightMLHandle(db) as h:
        # the newest value carries only its own samples: none here
        assert h.get_detailed_scores("newer-plain", "tiny_mc", "acc") is None
        # metrics the newer file does not set keep the older value and its samples
        assert len(h.get_detailed_scores("newer-plain", "tiny_mc", "acc_norm")) == 60
        assert metrics_of(db, "newer-plain")[("tiny_mc", "acc_norm")] == 0.15
        scores = h.get_detailed_scores("older-plain", "tiny_mc", "acc")
        assert len(scores) == 60 and sum(scores) / 60 == pytest.approx(0.15)


def test_rescan_into_another_target_imports_again(lm_eval_results: Path, tmp_path: Path, metrics_of) -> None:
    db = tmp_path / "reg.db"
    first = scan_and_import(db, "r", lm_eval_results)
    events = event_count(db)
    # the same tree, same target: nothing read, nothing written
    again = scan_and_import(db, "r", lm_eval_results)
    assert (again.files_read, again.files_unchanged, event_count(db)) == (0, 12, events)
    # another prefix: other models
    prefixed = scan_and_import(db, "r", lm_eval_results, model_prefix="v2/")
    assert (prefixed.models_registered, prefixed.metrics_logged) == (4, first.metrics_logged)
    assert metrics_of(db, "v2/dummy-a") == metrics_of(db, "dummy-a")
    # another run
    other_run = scan_and_import(db, "other", lm_eval_results)
    assert (other_run.models_registered, other_run.metrics_logged) == (4, first.metrics_logged)
    # another family template, same run and models: the new families are imported, with scores
    templated = scan_and_import(db, "r", lm_eval_results, family_template="{task}_{nshot}shot")
    assert templated.metrics_logged == first.metrics_logged - 8  # dummy-c was _<n>shot already
    assert templated.scores_imported == 4 + 4 + 2
    assert ("tiny_mc_0shot", "acc") in metrics_of(db, "dummy-a")
    with LightMLHandle(db, "r") as h:
        assert len(h.get_detailed_scores("dummy-a", "tiny_mc_0shot", "acc")) == 60
    # the last target, scanned again: skipped unread
    events = event_count(db)
    again = scan_and_import(db, "r", lm_eval_results, family_template="{task}_{nshot}shot")
    assert (again.files_read, again.files_unchanged, event_count(db)) == (0, 12, events)
    # going back to an earlier target never logs anything twice
    for kwargs in ({}, {"model_prefix": "v2/"}):
        assert scan_and_import(db, "r", lm_eval_results, **kwargs).metrics_logged == 0
    assert scan_and_import(db, "other", lm_eval_results).metrics_logged == 0
    # the JSON format on the same files is another naming: imported again
    as_json = scan_and_import(db, "r", lm_eval_results, format="json")
    assert as_json.metrics_logged > 0 and ("results", "lm_eval_version") not in metrics_of(db, "dummy-a")
    assert verify(db).ok


@pytest.mark.parametrize("template", ["{task.name}", "{task[0]}", "{model}", "{}", "{0}", "{task:d}",
                                      "{task}_{nshot:d}", "{task!x}", "{task", "{task:{nshot}}", "no task here", "{nshot}"])
def test_bad_family_template_is_a_clear_error(template: str, lm_eval_results: Path, tmp_path: Path, cli,
                                              assert_user_error) -> None:
    db = tmp_path / "reg.db"
    with pytest.raises(InvalidInputError, match="family_template"):
        scan_and_import(db, "r", lm_eval_results, family_template=template)
    assert not db.exists()  # validated before anything is written
    make_registry(db)
    events = event_count(db)
    for command in ("scan", "watch"):
        result = cli(command, "--db", db, "--run", "r", "--path", lm_eval_results, "--family-template", template)
        assert_user_error(result)
        assert "family_template" in result.stderr or "family-template" in result.stderr
    assert event_count(db) == events  # not even the run


def test_good_family_templates(lm_eval_results: Path, tmp_path: Path, metrics_of) -> None:
    db = tmp_path / "reg.db"
    scan_and_import(db, "r", lm_eval_results, family_template="lm-{task!s}-{nshot:>2}")
    assert ("lm-tiny_mc- 0", "acc") in metrics_of(db, "dummy-a")


# -- third review ----------------------------------------------------------------------------


def test_scores_written_after_their_values_are_attached_by_the_next_scan(tmp_path: Path) -> None:
    # lm-eval writes the results file first and the samples files after it: a watch round can
    # fall in between, and import the values without their scores.
    root = tmp_path / "results"
    folder = root / "dummy-a"
    shutil.copytree(DATA / "lm_eval_0413" / "dummy-a", folder)
    samples = {p: p.read_bytes() for p in folder.glob("samples_*.jsonl")}
    for path in samples:
        path.unlink()
    db = tmp_path / "reg.db"
    assert scan_and_import(db, "r", root).scores_imported == 0
    for path, data in samples.items():  # lm-eval finishes writing
        path.write_bytes(data)
    second = scan_and_import(db, "r", root)
    assert second.scores_imported == 4 and not second.skips
    with LightMLHandle(db) as h:
        assert len(h.get_detailed_scores("dummy-a", "tiny_mc", "acc")) == 60
        history = h.metric_history("dummy-a", "tiny_mc", "acc")
    assert [(e["action"], e["value"]) for e in history] == [("inserted", 0.15), ("overwritten", 0.15)]
    assert scan_and_import(db, "r", root).files_unchanged == 3  # and then it is unchanged
    assert verify(db).ok


def test_deeply_nested_json_is_a_skip_not_a_crash(lm_eval_results: Path, tmp_path: Path) -> None:
    folder = lm_eval_results / "dummy-a"
    samples = next(folder.glob("samples_tiny_mc_*.jsonl"))
    samples.write_bytes(samples.read_bytes() + b"\n" + b"[" * 5000 + b"]" * 5000 + b"\n")
    (lm_eval_results / "dummy-b" / "results_2099-01-01T00-00-00.000000.json").write_text("[" * 5000 + "]" * 5000)
    stats = scan_and_import(tmp_path / "reg.db", "r", lm_eval_results)
    assert stats.models_registered == 4
    reasons = " ".join(skip.reason for skip in stats.skips)
    assert "is not a complete sample" in reasons and "nested too deeply" in reasons


def test_a_family_template_that_merges_two_tasks_is_refused_per_task(lm_eval_results: Path, tmp_path: Path,
                                                                     metrics_of) -> None:
    db = tmp_path / "reg.db"
    stats = scan_and_import(db, "r", lm_eval_results, family_template="{task:.4}")
    a = metrics_of(db, "dummy-a")
    assert {f for f, _ in a} == {"tiny"}  # the first task keeps the family ...
    assert any("two tasks, one family" in skip.reason for skip in stats.skips)  # ... the others say why
