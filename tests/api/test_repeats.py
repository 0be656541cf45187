"""Repeated runs on both handles and both engines: a metric logged with repeat labels keeps
each repeat, its ``metrics.value`` is their mean (1.2's SQL still reads one number),
``get_repeats`` reads them back, the same label is deduplicated like any metric (``force``
overwrites it, with history), deletes and restores keep them, and every view shows the
mean with its 95% interval over the repeats. ``compare_stats`` tests over repeats: Welch's t
test on the repeat values, or, when every repeat has per-sample scores, a paired t test over
documents of the per-document means; both checked against scipy."""

from __future__ import annotations

import asyncio
import json
import math
import warnings
from pathlib import Path

import pytest
from scipy import stats as reference

from lightml.async_handle import AsyncLightMLHandle
from lightml.errors import InvalidInputError, NotFoundError
from lightml.handle import LightMLHandle
from lightml.ingest.scan import scan_and_import
from lightml.read.compare import compare_models
from lightml.read.diff import diff_models

DATA = Path(__file__).resolve().parents[1] / "data"
A = [0.61, 0.63, 0.64, 0.62, 0.66]
B = [0.65, 0.69, 0.66, 0.70]


def log_repeats(h, model: str, values: list[float], family: str = "arc", metric: str = "acc", **kwargs) -> None:
    for i, value in enumerate(values):
        h.log_model_metric(model, family, metric, value, repeat=f"seed={i}", **kwargs)


def close(ours: float, theirs: float) -> bool:
    return math.isclose(ours, theirs, rel_tol=1e-9)


def test_each_repeat_is_kept_and_the_value_is_their_mean(db, query) -> None:
    with LightMLHandle(db, "r") as h:
        h.register_model("m", "/m")
        assert h.log_model_metric("m", "arc", "acc", 0.61, repeat="seed=1") == 1  # inserted
        assert h.log_model_metric("m", "arc", "acc", 0.65, repeat="seed=2") == 1  # a new repeat: inserted too
        assert h.log_model_metric("m", "arc", "acc", 0.99, repeat="seed=1") == 0  # the same label: skipped
        assert h.get_repeats("m", "arc", "acc") == [{"repeat": "seed=1", "value": 0.61},
                                                   {"repeat": "seed=2", "value": 0.65}]
        assert h.log_model_metric("m", "arc", "acc", 0.63, repeat="seed=1", force=True) == 2  # updated
        assert h.get_repeats("m", "arc", "acc")[0] == {"repeat": "seed=1", "value": 0.63}
        history = h.metric_history("m", "arc", "acc")
        assert [(e["action"], e["repeat"], e["value"], e["previous_value"]) for e in history] == [
            ("inserted", "seed=1", 0.61, None), ("repeat added", "seed=2", 0.65, None),
            ("overwritten", "seed=1", 0.63, 0.61)]
        h.log_model_metric("m", "arc", "plain", 0.5)
        assert h.get_repeats("m", "arc", "plain") == []  # logged without a label
        with pytest.raises(NotFoundError, match="arc/nope"):
            h.get_repeats("m", "arc", "nope")
    # 1.2's SQL reads one number per metric: the mean of the repeats
    assert query(db, "SELECT value FROM metrics WHERE metric_name = 'acc'") == [(math.fsum([0.63, 0.65]) / 2,)]


def test_bulk_checkpoint_and_async_calls_take_repeat_labels(db, query) -> None:
    async def main() -> tuple:
        async with AsyncLightMLHandle(db, "r") as h:
            await h.register_model("m", "/m")
            cid = await h.register_checkpoint("m", 100, "/m/ck")
            for i, value in enumerate((0.5, 0.7)):
                await h.log_metrics("m", {"arc": {"acc": value, "f1": value / 2}}, repeat=f"seed={i}")
                await h.log_checkpoint_metric(cid, "arc", "acc", value + 0.1, repeat=f"seed={i}")
            await asyncio.gather(*(h.log_model_metric("m", "hs", "acc", v, repeat=f"run {v}") for v in (0.2, 0.4)))
            return (await h.get_repeats("m", "arc", "f1"), await h.get_repeats("m", "arc", "acc", step=100),
                    await h.get_repeats("m", "hs", "acc"))

    f1, at_step, gathered = asyncio.run(main())
    assert f1 == [{"repeat": "seed=0", "value": 0.25}, {"repeat": "seed=1", "value": 0.35}]
    assert [r["value"] for r in at_step] == [0.6, 0.7999999999999999]
    assert [r["repeat"] for r in gathered] == ["run 0.2", "run 0.4"]
    assert sorted(query(db, "SELECT metric_name, value FROM metrics WHERE model_id IS NOT NULL")) == sorted([
        ("acc", 0.6), ("acc", math.fsum([0.2, 0.4]) / 2), ("f1", math.fsum([0.25, 0.35]) / 2)])


def test_a_value_logged_without_a_label_is_not_silently_made_one_of_several(db, n_events) -> None:
    with LightMLHandle(db, "r") as h:
        h.register_model("m", "/m")
        h.log_model_metric("m", "arc", "acc", 0.5)
        before = n_events(db)
        with pytest.raises(InvalidInputError, match="logged without a repeat label.*force=True"):
            h.log_model_metric("m", "arc", "acc", 0.6, repeat="seed=1")
        with pytest.raises(InvalidInputError, match="without a repeat label"):
            h.log_metrics("m", {"arc": {"acc": 0.6, "new": 0.1}}, repeat="seed=1")
        assert n_events(db) == before  # nothing written, not even the new metric of the bulk call
        assert h.log_model_metric("m", "arc", "acc", 0.6, repeat="seed=1", force=True) == 2
        assert h.get_repeats("m", "arc", "acc") == [{"repeat": "seed=1", "value": 0.6}]
        h.log_model_metric("m", "arc", "acc", 0.7, repeat="seed=2")
        assert h.log_model_metric("m", "arc", "acc", 0.1) == 0  # a value without a label: exists, skipped
        assert h.log_model_metric("m", "arc", "acc", 0.1, force=True) == 2  # forced: replaces every repeat
        assert h.get_repeats("m", "arc", "acc") == []


@pytest.mark.parametrize("label, message", [
    ("", "must not be empty"), ("   ", "must not be empty"), (5, "must be a string label"),
    (True, "must be a string label"), ("seed\n1", "control characters"), ("x" * 201, "at most 200"),
])
def test_a_bad_repeat_label_is_refused_and_nothing_is_written(db, n_events, label, message) -> None:
    with LightMLHandle(db, "r") as h:
        h.register_model("m", "/m")
        before = n_events(db)
        for call in (lambda: h.log_model_metric("m", "arc", "acc", 0.5, repeat=label),
                     lambda: h.log_metrics("m", {"arc": {"acc": 0.5}}, repeat=label)):
            with pytest.raises(InvalidInputError, match=message):
                call()
        assert n_events(db) == before


def test_scores_of_every_repeat_become_the_per_document_means(db, query) -> None:
    with LightMLHandle(db, "r") as h, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (values not the mean of their scores: on purpose)
        h.register_model("m", "/m")
        h.log_model_metric("m", "arc", "acc", 0.5, scores=[1, 0, 1, 0], doc_ids=["a", "b", "c", "d"], repeat="s1")
        h.log_model_metric("m", "arc", "acc", 0.75, scores=[1, 1, 1, 0], doc_ids=["a", "b", "c", "d"], repeat="s2")
        means = query(db, "SELECT scores FROM detailed_scores")
        assert [json.loads(text) for (text,) in means] == [[1.0, 0.5, 1.0, 0.0]]
        # scored on other documents (or in another order): no per-document means, never misaligned
        h.log_model_metric("m", "arc", "acc", 0.5, scores=[1, 0, 0, 1], doc_ids=["d", "c", "b", "a"], repeat="s3")
        assert query(db, "SELECT count(*) FROM detailed_scores") == [(0,)]
        h.log_model_metric("m", "arc", "acc", 0.5, scores=[1, 0, 1, 0], doc_ids=["a", "b", "c", "d"], repeat="s3",
                           force=True)
        assert len(query(db, "SELECT scores FROM detailed_scores")) == 1
        h.log_model_metric("m", "arc", "acc", 0.5, repeat="s4")  # a repeat without scores
        assert query(db, "SELECT count(*) FROM detailed_scores") == [(0,)]


def test_delete_and_restore_keep_every_repeat(db) -> None:
    with LightMLHandle(db, "r") as h:
        h.register_model("m", "/m")
        log_repeats(h, "m", A)
        h.delete_model("m")
        with pytest.raises(NotFoundError):
            h.get_repeats("m", "arc", "acc")
        h.restore_model("m")
        assert [r["value"] for r in h.get_repeats("m", "arc", "acc")] == A
    # (db's teardown replays the log and checks every table, metric_repeats included)


def test_compare_stats_over_repeats_is_welchs_test_as_scipy_computes_it(db) -> None:
    with LightMLHandle(db, "r") as h:
        for name, values in (("a", A), ("b", B)):
            h.register_model(name, f"/{name}")
            log_repeats(h, name, values)
        result = h.compare_stats("a", "b", "arc", "acc")
        theirs = reference.ttest_ind(A, B, equal_var=False)
        assert result["test"] == "welch_t_over_repeats"
        assert close(result["p_value"], theirs.pvalue) and close(result["interval"]["df"], theirs.df)
        low, high = theirs.confidence_interval(0.95)
        assert close(result["interval"]["ci_lower"], low) and close(result["interval"]["ci_upper"], high)
        assert result["significant"] and result["winner"] == "b"
        assert (result["repeats_a"], result["repeats_b"]) == (5, 4)
        [item] = h.compare_stats_all("a", "b")  # no per-sample scores: tested over repeats all the same
        assert close(item["p_holm"], theirs.pvalue)


def test_with_scores_on_every_repeat_the_test_pairs_the_documents_means(db) -> None:
    docs = [f"d{i}" for i in range(40)]
    runs_a = [[(i * 7 + k) % 3 == 0 for i in range(40)] for k in range(3)]
    runs_b = [[(i * 5 + k) % 2 == 0 for i in range(40)] for k in range(3)]
    with LightMLHandle(db, "r") as h:
        for name, runs in (("a", runs_a), ("b", runs_b)):
            h.register_model(name, f"/{name}")
            for k, run in enumerate(runs):
                scores = [int(x) for x in run]
                h.log_model_metric(name, "arc", "acc", sum(scores) / 40, scores=scores, doc_ids=docs,
                                   repeat=f"seed={k}")
        result = h.compare_stats("a", "b", "arc", "acc")
    mean_a = [sum(run[i] for run in runs_a) / 3 for i in range(40)]
    mean_b = [sum(run[i] for run in runs_b) / 3 for i in range(40)]
    theirs = reference.ttest_rel(mean_a, mean_b)
    assert result["test"] == "paired_t_over_documents" and result["n"] == 40
    assert close(result["p_value"], theirs.pvalue)
    low, high = theirs.confidence_interval(0.95)
    assert close(result["interval"]["ci_lower"], low) and close(result["interval"]["ci_upper"], high)


def test_fewer_than_two_repeats_on_a_side_is_untestable_never_significant(db) -> None:
    with LightMLHandle(db, "r") as h:
        h.register_model("a", "/a")
        h.register_model("b", "/b")
        log_repeats(h, "a", [0.1])
        log_repeats(h, "b", [0.9, 0.91, 0.92])
        result = h.compare_stats("a", "b", "arc", "acc")
        assert result["test"] == "untestable" and result["p_value"] is None and result["significant"] is False
        assert "fewer than 2 repeats" in result["reason"]
        [item] = h.compare_stats_all("a", "b")
        assert item["p_value"] is None and "untestable" in item["error"]
        with pytest.raises(InvalidInputError, match="nothing to test"):  # a gate that tested nothing never passes
            h.check_regression("a", "b")


def test_the_regression_gate_tests_over_repeats(db) -> None:
    with LightMLHandle(db, "r") as h:
        for name, values in (("base", B), ("candidate", A)):
            h.register_model(name, f"/{name}")
            log_repeats(h, name, values)
        result = h.check_regression("base", "candidate")
    assert not result["passed"] and result["regressed"][0]["test"] == "welch_t_over_repeats"


def test_views_show_the_mean_with_its_interval_and_count(db) -> None:
    with LightMLHandle(db, "r") as h:
        for name, values in (("a", A), ("b", B)):
            h.register_model(name, f"/{name}")
            log_repeats(h, name, values)
        h.log_model_metric("a", "arc", "f1", 0.5)
        h.log_model_metric("b", "arc", "f1", 0.6)
        mean, sem = sum(A) / 5, reference.sem(A)
        half = reference.t.ppf(0.975, 4) * sem
        [acc, f1] = compare_models(db, "a", "b").to_dict()["deltas"]
        assert acc["repeats_a"]["n"] == 5 and close(acc["repeats_a"]["half_width"], half)
        assert f1["repeats_a"] is None
        text = compare_models(db, "a", "b").to_text(color=False)
        assert f"±{half:.4f} (n=5)" in text
        diff = diff_models(db, ["a", "b"])
        assert diff["rows"][0]["repeats"]["a"]["n"] == 5 and diff["rows"][1]["repeats"] is None
        board = _top(db, "arc", "acc")
        assert board[0]["model"] == "b" and board[1]["repeats"]["n"] == 5
        welch = reference.ttest_ind(B, A, equal_var=False)
        assert close(board[1]["p_vs_leader"], welch.pvalue) and board[1]["same_as_leader"] is False


def _top(db, family: str, metric: str) -> list[dict]:
    from lightml.read import catalog
    from lightml.read.sql import reading

    with reading(db) as conn:
        return catalog.top(conn, family, metric)


def test_scan_imports_the_seeds_of_one_task_as_repeats(tmp_path, db) -> None:
    folder = tmp_path / "evals" / "dummy"
    folder.mkdir(parents=True)
    for run in ("dummy-a", "dummy-b"):  # tiny_suite at 0 shots, --seed 0 and --seed 1
        for path in (DATA / "lm_eval_0413" / run).iterdir():
            (folder / path.name).write_bytes(path.read_bytes())
    stats = scan_and_import(db, "r", tmp_path / "evals")
    assert any("run with 2 seeds: imported as repeats (seed=0, seed=1)" in note for note in stats.notes)
    assert not [s for s in stats.skips if "superseded" in s.reason]
    with LightMLHandle(db, "r") as h:
        repeats = h.get_repeats("dummy", "tiny_mc", "acc")
        assert [r["repeat"] for r in repeats] == ["seed=0", "seed=1"]
        values = {}
        for run in ("dummy-a", "dummy-b"):
            [results] = (DATA / "lm_eval_0413" / run).glob("results_*.json")
            values[run] = json.loads(results.read_text())["results"]["tiny_mc"]["acc,none"]
        assert [r["value"] for r in repeats] == [values["dummy-a"], values["dummy-b"]]
    again = scan_and_import(db, "r", tmp_path / "evals")
    assert again.files_unchanged == 6 and again.metrics_logged == 0


def test_the_cli_shows_repeats_and_tests_over_them(db, cli) -> None:
    with LightMLHandle(db, "r") as h:
        for name, values in (("a", A), ("b", B)):
            h.register_model(name, f"/{name}")
            log_repeats(h, name, values)
        h.register_model("one", "/one")
        log_repeats(h, "one", [0.7])
    half = reference.t.ppf(0.975, 4) * reference.sem(A)
    stats = cli("stats", "--db", str(db), "--model-a", "a", "--model-b", "b", "--family", "arc", "--metric", "acc")
    assert stats.returncode == 0, stats.stderr
    assert "Welch's t test over the repeats" in stats.stdout and "Significant (p < 0.05), b is better" in stats.stdout
    untestable = cli("stats", "--db", str(db), "--model-a", "a", "--model-b", "one", "--family", "arc",
                     "--metric", "acc")
    assert untestable.returncode == 0 and "untestable: fewer than 2 repeats on a side (5 and 1)" in untestable.stdout
    for args in (("top", "--family", "arc", "--metric", "acc"), ("info", "--model", "a"),
                 ("compare", "--a", "a", "--b", "b"), ("diff", "--models", "a", "b")):
        shown = cli(*args, "--db", str(db))
        assert shown.returncode == 0 and f"±{half:.4f} (n=5)" in shown.stdout, (args, shown)
    gate = cli("compare", "--db", str(db), "--a", "b", "--b", "a", "--fail-on-regression")
    assert gate.returncode == 1 and "arc/acc" in gate.stdout and "welch_t_over_repeats" in gate.stdout


def test_the_excel_report_shows_the_interval_over_repeats_and_keeps_the_number(db, tmp_path) -> None:
    from openpyxl import load_workbook

    from lightml.report.export import export_excel

    with LightMLHandle(db, "r") as h:
        h.register_model("a", "/a")
        log_repeats(h, "a", A)
    half = reference.t.ppf(0.975, 4) * reference.sem(A)
    sheet = load_workbook(export_excel(db, tmp_path / "r.xlsx"))["arc"]
    header = [cell.value for cell in sheet[1]]
    cell = sheet.cell(row=2, column=header.index("acc") + 1)
    assert close(cell.value, math.fsum(A) / 5)  # still a number: sorting and formulas work
    assert cell.number_format == f'0.0000" ±{half:.4f} (n=5)"'


def test_copy_and_a_replay_of_the_past_keep_the_repeats(db, tmp_path, cli) -> None:
    with LightMLHandle(db, "r") as h:
        h.register_model("a", "/a")
        log_repeats(h, "a", A[:2])
        seq = h.metric_history("a", "arc", "acc")[-1]["seq"]
        log_repeats(h, "a", A)  # seeds 0 and 1 skipped, 2 to 4 added
    copied = tmp_path / "copy.db"
    assert cli("copy", "--from", str(db), "--to", str(copied)).returncode == 0
    with LightMLHandle(copied, "r") as h:
        assert [r["value"] for r in h.get_repeats("a", "arc", "acc")] == A
    then = tmp_path / "then.db"
    replayed = cli("replay", "--db", str(copied), "--upto", str(seq), "--out", str(then))
    assert replayed.returncode == 0, replayed.stderr
    with LightMLHandle(then, "r") as h:
        assert [r["value"] for r in h.get_repeats("a", "arc", "acc")] == A[:2]


def _seeds_folder(tmp_path: Path, runs=("dummy-a", "dummy-b")) -> Path:
    folder = tmp_path / "evals" / "dummy"
    folder.mkdir(parents=True, exist_ok=True)
    for run in runs:
        for path in (DATA / "lm_eval_0413" / run).iterdir():
            (folder / path.name).write_bytes(path.read_bytes())
    return folder


def test_a_seeds_samples_written_after_its_results_reach_its_repeat_on_the_next_scan(tmp_path, db, query) -> None:
    folder = _seeds_folder(tmp_path)
    late = sorted(folder.glob("samples_tiny_mc_*.jsonl"))[-1]  # seed 1's, not written yet
    text = late.read_bytes()
    late.unlink()
    scan_and_import(db, "r", tmp_path / "evals")
    assert query(db, "SELECT count(*) FROM detailed_scores d JOIN metrics m ON m.id = d.metric_id "
                     "WHERE m.family = 'tiny_mc' AND m.metric_name = 'acc'") == [(0,)]  # one repeat without scores
    late.write_bytes(text)
    again = scan_and_import(db, "r", tmp_path / "evals")
    assert again.scores_imported >= 1
    assert query(db, "SELECT count(*) FROM detailed_scores d JOIN metrics m ON m.id = d.metric_id "
                     "WHERE m.family = 'tiny_mc' AND m.metric_name = 'acc'") == [(1,)]  # the per-document means


def test_a_metric_scanned_from_one_seed_is_kept_and_the_scan_says_how_to_make_it_repeats(tmp_path, db) -> None:
    _seeds_folder(tmp_path, ("dummy-a",))
    scan_and_import(db, "r", tmp_path / "evals")
    _seeds_folder(tmp_path, ("dummy-b",))
    second = scan_and_import(db, "r", tmp_path / "evals")
    assert any("not as repeats: left as they are (scan with --force" in s.reason for s in second.skips)
    with LightMLHandle(db, "r") as h:
        assert h.get_repeats("dummy", "tiny_mc", "acc") == []
    forced = scan_and_import(db, "r", tmp_path / "evals", force=True)
    assert forced.metrics_logged > 0
    with LightMLHandle(db, "r") as h:
        assert [r["repeat"] for r in h.get_repeats("dummy", "tiny_mc", "acc")] == ["seed=0", "seed=1"]


@pytest.mark.sqlite_only("merge reads registry files")
def test_merging_repeats_twice_adds_nothing_even_forced(tmp_path, n_events, verify_at_teardown) -> None:
    from lightml.ingest.merge import merge

    source, target = tmp_path / "node.db", verify_at_teardown(tmp_path / "main.db")
    with LightMLHandle(source, "r") as h:
        h.register_model("a", "/a")
        log_repeats(h, "a", A, scores=None)
    LightMLHandle(target, "r").close()  # (merge brings into an existing registry)
    merge(target, source)
    with LightMLHandle(target, "r") as h:
        assert [r["value"] for r in h.get_repeats("a", "arc", "acc")] == A
    before = n_events(target)
    for force in (False, True):
        merge(target, source, force=force)
    assert n_events(target) == before


def test_a_paired_test_over_one_document_falls_back_to_the_repeats(db) -> None:
    with LightMLHandle(db, "r") as h:
        for name, values in (("a", [0.50, 0.52]), ("b", [0.51, 0.53])):
            h.register_model(name, f"/{name}")
            for i, value in enumerate(values):
                h.log_model_metric(name, "arc", "acc", value, scores=[value], repeat=f"seed={i}")
        result = h.compare_stats("a", "b", "arc", "acc")
    assert result["test"] == "welch_t_over_repeats"
    assert close(result["p_value"], reference.ttest_ind([0.50, 0.52], [0.51, 0.53], equal_var=False).pvalue)


def test_repeats_that_do_not_vary_or_overflow_are_untestable_and_the_table_still_shows(db) -> None:
    from starlette.testclient import TestClient

    from lightml.web.app import create_app

    with LightMLHandle(db, "r") as h:
        for name, values in (("c", [0.5, 0.5]), ("d", [0.6, 0.6]), ("big", [1e200, -1e200]), ("big2", [1e200, 1e199])):
            h.register_model(name, f"/{name}")
            log_repeats(h, name, values)
        same = h.compare_stats("c", "d", "arc", "acc")
        assert same["test"] == "untestable" and "do not vary" in same["reason"] and same["significant"] is False
        huge = h.compare_stats("big", "big2", "arc", "acc")  # values near the float range: still a test
        assert huge["test"] == "welch_t_over_repeats" and 0 <= huge["p_value"] <= 1
    half = reference.t.ppf(0.975, 1) * math.sqrt(2) * 1e200 / math.sqrt(2)
    rows = TestClient(create_app(db), base_url="http://127.0.0.1:5050").get("/api/pivot").json()["rows"]
    big = next(r for r in rows if r["model"] == "big")
    assert big["values"]["arc"]["acc"] == 0.0 and close(big["repeats"]["arc"]["acc"]["half_width"], half)


def test_the_cli_logs_a_repeat_and_its_history_names_each(db, cli) -> None:
    with LightMLHandle(db, "r") as h:
        h.register_model("m", "/m")
    for seed, value in ((1, "0.61"), (2, "0.65")):
        logged = cli("metric-log", "--db", str(db), "--run", "r", "--model", "m", "--family", "arc", "--metric", "acc",
                     "--value", value, "--repeat", f"seed={seed}")
        assert logged.returncode == 0, logged.stderr
    history = cli("history", "--db", str(db), "--model", "m", "--family", "arc", "--metric", "acc")
    lines = history.stdout.splitlines()
    assert "repeat" in lines[1] and any("repeat added" in line and "seed=2" in line for line in lines)
