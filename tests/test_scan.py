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
from lightml.ingest.lm_eval_format import collect_scores, parse_samples, usual_samples
from lightml.ingest.scan import scan_and_import
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


def make_registry(db: Path) -> None:
    LightMLHandle(db).close()


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
    make_registry(db)
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


def start_watch(db: Path, watched: Path, interval: float) -> subprocess.Popen:
    """`lightml watch` of ``watched`` into run r of ``db`` (which it creates first)."""
    make_registry(db)
    # As a command started from a terminal: Ctrl-C (SIGINT) in its default state. A process
    # inherits an ignored SIGINT (the test runner's, or a shell's for background jobs), and
    # Python then never turns it into KeyboardInterrupt. faulthandler: if it ever does not
    # stop, SIGABRT makes it print where it is (see stop_watch).
    return subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-m", "lightml", "watch", "--db", str(db), "--run", "r",
         "--path", str(watched), "--interval", str(interval)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def stop_watch(proc: subprocess.Popen) -> tuple[str, str]:
    """Ctrl-C, then its output; a watch still running after 30 s fails with its threads' stacks."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        _, stderr = proc.communicate(timeout=30)
        raise AssertionError(f"watch did not stop on Ctrl-C; where it was:\n{stderr}") from None


def test_watch_imports_new_results_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    watched = tmp_path / "watched"
    watched.mkdir()
    db = tmp_path / "reg.db"
    proc = start_watch(db, watched, 0.2)
    try:
        assert proc.stdout.readline().startswith("Watching")
        shutil.copytree(DATA / "lm_eval_0413" / "dummy-a", watched / "dummy-a")  # an eval job finishing
        line = proc.stdout.readline()
        assert "imported dummy-a: 10 metrics, 4 with per-sample scores (3 files)" in line
    finally:
        stdout, stderr = stop_watch(proc)
    assert proc.returncode == 0, stderr
    assert "Stopped watching." in stdout and "Traceback" not in stderr
    assert metrics_of(db, "dummy-a")[("tiny_mc", "acc")] == 0.15


# -- review defects ---------------------------------------------------------------------------


def _second_results(folder: Path, stamp: str, acc: float) -> None:
    """Another results file for tiny_mc (same n-shot) with only acc, of another value, and no
    samples file."""
    data = json.loads(next(folder.glob("results_*.json")).read_text())
    data["results"] = {"tiny_mc": {"alias": "tiny_mc", "acc,none": acc}}
    data.pop("groups", None)
    (folder / f"results_{stamp}.json").write_text(json.dumps(data))


def test_newer_results_file_drops_the_older_samples(tmp_path: Path) -> None:
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


def test_rescan_into_another_target_imports_again(results: Path, tmp_path: Path) -> None:
    db = tmp_path / "reg.db"
    first = scan_and_import(db, "r", results)
    events = event_count(db)
    # the same tree, same target: nothing read, nothing written
    again = scan_and_import(db, "r", results)
    assert (again.files_read, again.files_unchanged, event_count(db)) == (0, 12, events)
    # another prefix: other models
    prefixed = scan_and_import(db, "r", results, model_prefix="v2/")
    assert (prefixed.models_registered, prefixed.metrics_logged) == (4, first.metrics_logged)
    assert metrics_of(db, "v2/dummy-a") == metrics_of(db, "dummy-a")
    # another run
    other_run = scan_and_import(db, "other", results)
    assert (other_run.models_registered, other_run.metrics_logged) == (4, first.metrics_logged)
    # another family template, same run and models: the new families are imported, with scores
    templated = scan_and_import(db, "r", results, family_template="{task}_{nshot}shot")
    assert templated.metrics_logged == first.metrics_logged - 8  # dummy-c was _<n>shot already
    assert templated.scores_imported == 4 + 4 + 2
    assert ("tiny_mc_0shot", "acc") in metrics_of(db, "dummy-a")
    with LightMLHandle(db, "r") as h:
        assert len(h.get_detailed_scores("dummy-a", "tiny_mc_0shot", "acc")) == 60
    # the last target, scanned again: skipped unread
    events = event_count(db)
    again = scan_and_import(db, "r", results, family_template="{task}_{nshot}shot")
    assert (again.files_read, again.files_unchanged, event_count(db)) == (0, 12, events)
    # going back to an earlier target never logs anything twice
    for kwargs in ({}, {"model_prefix": "v2/"}):
        assert scan_and_import(db, "r", results, **kwargs).metrics_logged == 0
    assert scan_and_import(db, "other", results).metrics_logged == 0
    # the JSON format on the same files is another naming: imported again
    as_json = scan_and_import(db, "r", results, format="json")
    assert as_json.metrics_logged > 0 and ("results", "lm_eval_version") not in metrics_of(db, "dummy-a")
    assert verify(db).ok


def test_scan_and_watch_refuse_a_missing_registry(results: Path, tmp_path: Path) -> None:
    typo = tmp_path / "reg-typo.db"
    for command in ("scan", "watch"):
        result = lightml(command, "--db", typo, "--run", "r", "--path", results)
        assert_user_error(result)
        assert "registry not found" in result.stderr and not typo.exists()
    # an existing registry: the run is created when new
    db = tmp_path / "reg.db"
    make_registry(db)
    result = lightml("scan", "--db", db, "--run", "new-run", "--path", results, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["models_registered"] == 4


@pytest.mark.parametrize("template", ["{task.name}", "{task[0]}", "{model}", "{}", "{0}", "{task:d}",
                                      "{task}_{nshot:d}", "{task!x}", "{task", "{task:{nshot}}", "no task here", "{nshot}"])
def test_bad_family_template_is_a_clear_error(template: str, results: Path, tmp_path: Path) -> None:
    db = tmp_path / "reg.db"
    with pytest.raises(InvalidInputError, match="family_template"):
        scan_and_import(db, "r", results, family_template=template)
    assert not db.exists()  # validated before anything is written
    make_registry(db)
    events = event_count(db)
    for command in ("scan", "watch"):
        result = lightml(command, "--db", db, "--run", "r", "--path", results, "--family-template", template)
        assert_user_error(result)
        assert "family_template" in result.stderr or "family-template" in result.stderr
    assert event_count(db) == events  # not even the run


def test_good_family_templates(results: Path, tmp_path: Path) -> None:
    db = tmp_path / "reg.db"
    scan_and_import(db, "r", results, family_template="lm-{task!s}-{nshot:>2}")
    assert ("lm-tiny_mc- 0", "acc") in metrics_of(db, "dummy-a")


# -- the fast path for samples files ------------------------------------------------------------


def parse_in_full(data: bytes):
    """The reference: every line parsed in full (what the import did before the fast path)."""
    problems, samples = [], []
    for number, line in enumerate(data.decode("utf-8").split("\n"), 1):
        if not line.strip():
            continue
        try:
            samples.append((f"line {number}", json.loads(line)))
        except json.JSONDecodeError:
            problems.append(f"line {number} is not a complete sample (truncated?): skipped")
    scores, more = collect_scores(samples)
    return scores, problems + more


SAMPLES_FILES = sorted(DATA.glob("lm_eval_*/*/samples_*.jsonl"))


@pytest.mark.parametrize("path", SAMPLES_FILES, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.name}")
def test_fast_path_matches_the_full_parse_on_real_files(path: Path) -> None:
    data = path.read_bytes()
    fast = usual_samples(data)
    assert fast is not None  # lm-eval's own files take the fast path
    lines = [json.loads(line) for line in data.splitlines() if line.strip()]
    assert len(fast) == len(lines)
    for tail, full in zip(fast, lines):  # every field it keeps is the full parse's
        assert tail == {key: full[key] for key in tail}
        assert {"doc_id", "filter", "metrics", "doc_hash", *full["metrics"]} <= tail.keys()
    assert parse_samples(data) == parse_in_full(data)


def test_fast_path_falls_back_on_anything_unusual() -> None:
    data = (DATA / "lm_eval_0413" / "dummy-a" / next(p.name for p in SAMPLES_FILES if "tiny_mc" in p.name
                                                     and p.parent.name == "dummy-a")).read_bytes()
    lines = data.decode().splitlines()
    first = json.loads(lines[0])
    variants = {
        "trailing blank lines": data + b"\n\n",
        "a blank line inside": "\n".join(lines[:3] + [""] + lines[3:]).encode(),
        "two samples run together": "\n".join(lines[:2] + [lines[2][:100] + lines[3]] + lines[4:]).encode(),
        "CRLF": "\r\n".join(lines).encode(),
        "leading zero doc_id": "\n".join([lines[0].replace('"doc_id": 0', '"doc_id": 00')] + lines[1:]).encode(),
        "nested filter and doc keys": "\n".join([json.dumps({
            "doc_id": 0, "doc": {"a": 1, "doc": 2, "filter": "x"}, "text": 'say , "filter": no',
            **{k: v for k, v in first.items() if k not in ("doc_id", "doc")}})] + lines[1:]).encode(),
        "a value before the filter": "\n".join([json.dumps({
            "doc_id": 0, "acc": 0.5, **{k: v for k, v in first.items() if k not in ("doc_id", "acc")}})]
            + lines[1:]).encode(),
        "a dict value after the filter": "\n".join([json.dumps({**first, "extra": {"a": 1, "filter": "f"}})]
                                                   + lines[1:]).encode(),
        "a key ending in doc": "\n".join([json.dumps({"doc_id": 0, 'x"doc': 1, **first})] + lines[1:]).encode(),
        "doc in a string": "\n".join([json.dumps({**first, "doc": 'a "doc": b, "filter": c'})] + lines[1:]).encode(),
        "another doc_id": "\n".join([json.dumps({**first, "doc": {"doc_id": 7}})] + lines[1:]).encode(),
        "a filter that is a list": "\n".join([json.dumps({**first, "filter": ["x"]})] + lines[1:]).encode(),
        "not a number": "\n".join([json.dumps({**first, "acc": "x"})] + lines[1:]).encode(),
        "a doc twice": "\n".join(lines + lines[-1:]).encode(),
    }
    # truncated anywhere in the last two lines, or in the middle of the file
    ends = [len(data) - len(lines[-1]) - 1 - len(lines[-2]) + i for i in range(0, len(lines[-2]) + len(lines[-1]), 7)]
    variants.update({f"cut at {end}": data[:end] for end in ends})
    middle = len("\n".join(lines[:30]))
    variants.update({f"line 31 cut at {i}": data[:middle + i] + b"\n" + "\n".join(lines[31:]).encode()
                     for i in range(1, len(lines[30]), 11)})
    for name, variant in variants.items():
        assert parse_samples(variant) == parse_in_full(variant), name
    assert usual_samples(variants["nested filter and doc keys"]) is not None  # still the fast path
    truncated = parse_samples(data[:-40])[1]
    assert truncated == [f"line {len(lines)} is not a complete sample (truncated?): skipped"]
    sixth = lines[5].encode()
    not_utf8 = data.replace(sixth, sixth.replace(b'"doc_hash": "', b'"doc_hash": "\xff'))
    assert parse_samples(not_utf8)[1] == ["line 6 is not a complete sample (truncated?): skipped"]


# -- third review -----------------------------------------------------------------------------


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


def test_a_line_break_inside_a_kept_string_is_reported_not_joined() -> None:
    data = (DATA / "lm_eval_0413" / "dummy-a" / next(p.name for p in SAMPLES_FILES if "tiny_mc" in p.name
                                                     and p.parent.name == "dummy-a")).read_bytes()
    lines = data.splitlines()
    sixth = lines[5]
    at = sixth.index(b'"doc_hash": "') + len(b'"doc_hash": "') + 3
    broken = b"\n".join(lines[:5] + [sixth[:at] + b"\n" + sixth[at:]] + lines[6:])
    assert usual_samples(broken) is None
    scores, problems = parse_samples(broken)
    assert problems == ["line 6 is not a complete sample (truncated?): skipped",
                        "line 7 is not a complete sample (truncated?): skipped"]
    assert len(scores["acc"].scores) == len(lines) - 1


def test_deeply_nested_json_is_a_skip_not_a_crash(results: Path, tmp_path: Path) -> None:
    folder = results / "dummy-a"
    samples = next(folder.glob("samples_tiny_mc_*.jsonl"))
    samples.write_bytes(samples.read_bytes() + b"\n" + b"[" * 5000 + b"]" * 5000 + b"\n")
    (results / "dummy-b" / "results_2099-01-01T00-00-00.000000.json").write_text("[" * 5000 + "]" * 5000)
    stats = scan_and_import(tmp_path / "reg.db", "r", results)
    assert stats.models_registered == 4
    reasons = " ".join(skip.reason for skip in stats.skips)
    assert "is not a complete sample" in reasons and "nested too deeply" in reasons


def test_a_family_template_that_merges_two_tasks_is_refused_per_task(results: Path, tmp_path: Path) -> None:
    db = tmp_path / "reg.db"
    stats = scan_and_import(db, "r", results, family_template="{task:.4}")
    a = metrics_of(db, "dummy-a")
    assert {f for f, _ in a} == {"tiny"}  # the first task keeps the family ...
    assert any("two tasks, one family" in skip.reason for skip in stats.skips)  # ... the others say why


def test_watch_stops_when_the_registry_goes_away(tmp_path: Path) -> None:
    watched = tmp_path / "watched"
    shutil.copytree(DATA / "lm_eval_0413" / "dummy-a", watched / "dummy-a")
    db = tmp_path / "reg.db"
    proc = start_watch(db, watched, 3)
    try:
        assert proc.stdout.readline().startswith("Watching")
        # printed when the first round is over: the watcher sleeps now, the registry is closed
        assert "imported dummy-a" in proc.stdout.readline()
        for path in tmp_path.glob("reg.db*"):
            path.rename(tmp_path / path.name.replace("reg", "moved"))
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and "registry not found" in stderr and "Traceback" not in stderr
    assert not db.exists()  # nothing created in its place
