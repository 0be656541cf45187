"""compare_stats / compare_stats_all on both handles, compare_models and diff_models."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lightml.async_handle import AsyncLightMLHandle
from lightml.read.compare import CompareResult, MetricDelta, compare_models
from lightml.read.diff import diff_models, format_diff
from lightml.errors import AmbiguousNameError, InvalidInputError, NotFoundError
from lightml.handle import LightMLHandle

# 100 documents: base is right on 0..59, sft on 10..79 -> only_a = 10, only_b = 20.
BASE_ACC = [1] * 60 + [0] * 40
SFT_ACC = [0] * 10 + [1] * 70 + [0] * 20
BASE_F1 = [0.5 + 0.001 * i for i in range(100)]
SFT_F1 = [0.6 + 0.001 * i for i in range(100)]


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    db = tmp_path / "reg.db"
    with LightMLHandle(db, run_name="r1") as h:
        h.register_model("base", "org/base")
        h.register_model("sft", "org/sft", parent_name="base")
        h.register_model("dpo", "org/dpo", parent_name="sft")
        h.log_model_metric("base", "eval", "acc", 0.6, scores=BASE_ACC)
        h.log_model_metric("sft", "eval", "acc", 0.7, scores=SFT_ACC)
        h.log_model_metric("dpo", "eval", "acc", 0.72, scores=[1] * 90)
        h.log_model_metric("base", "eval", "f1", 0.5495, scores=BASE_F1)
        h.log_model_metric("sft", "eval", "f1", 0.6495, scores=SFT_F1)
        h.log_metrics("base", {"eval": {"loss": 2.0}, "knowledge": {"mmlu": 0.3}})
        h.log_metrics("sft", {"eval": {"loss": 1.8, "bleu": 10.5}, "knowledge": {"mmlu": 0.3}})
        h.log_metrics("dpo", {"eval": {"loss": 1.9}, "knowledge": {"mmlu": 0.35}})
        h.register_checkpoint("sft", 100, "/ckpt/sft-100")  # checkpoint metrics stay out of compare
    with LightMLHandle(db, run_name="r2") as h:
        h.register_model("base", "org/base-r2")
        h.log_model_metric("base", "eval", "acc", 0.5, scores=[1] * 50 + [0] * 50)
        h.register_model("solo", "org/solo")
        h.log_model_metric("solo", "eval", "acc", 0.1)
    return db


def test_compare_stats_on_stored_scores(registry: Path) -> None:
    with LightMLHandle(registry, "r1") as h:
        result = h.compare_stats("base", "sft", "eval", "acc")
    assert result["contingency"] == {"both_correct": 50, "only_a": 10, "only_b": 20, "both_wrong": 20,
                                     "n_discordant": 30}
    assert result["mcnemar"]["p_value"] == pytest.approx(0.0987, abs=1e-4)
    assert not result["significant"] and result["winner"] is None
    assert (result["mean_a"], result["mean_b"], result["n"]) == (0.6, 0.7, 100)
    assert (result["model_a"], result["model_b"], result["family"], result["metric_name"]) == \
        ("base", "sft", "eval", "acc")


def test_compare_stats_float_scores_and_options(registry: Path) -> None:
    with LightMLHandle(registry, "r1") as h:
        result = h.compare_stats("sft", "base", "eval", "f1", resamples=500, seed=3)
    assert result["test"] == "bootstrap" and result["significant"] and result["winner"] == "a"
    assert result["bootstrap"]["delta"] == pytest.approx(0.1)
    assert (result["bootstrap"]["resamples"], result["bootstrap"]["seed"]) == (500, 3)


def test_compare_stats_errors(registry: Path) -> None:
    with LightMLHandle(registry, "r1") as h:
        with pytest.raises(InvalidInputError, match="'base' has 100 scores and 'dpo' has 90"):
            h.compare_stats("base", "dpo", "eval", "acc")
        with pytest.raises(NotFoundError, match="no per-sample scores for model 'base', family 'eval', metric 'loss'"):
            h.compare_stats("base", "sft", "eval", "loss")
        with pytest.raises(NotFoundError, match="model 'nobody' not found"):
            h.compare_stats("base", "nobody", "eval", "acc")
    # Without a run, "base" is in r1 and r2: the error lists both.
    with LightMLHandle(registry) as h:
        with pytest.raises(AmbiguousNameError, match="'r1/base', 'r2/base'"):
            h.compare_stats("base", "sft", "eval", "acc")
    # In r2 the handle prefers r2's base; sft is found in its only run (r1).
    with LightMLHandle(registry, "r2") as h:
        assert h.compare_stats("base", "sft", "eval", "acc")["mean_a"] == 0.5


def test_compare_stats_all_adjusts_and_reports_untestable(registry: Path) -> None:
    with LightMLHandle(registry, "r1") as h:
        items = h.compare_stats_all("base", "sft")
        assert [(i["family"], i["metric_name"]) for i in items] == [("eval", "acc"), ("eval", "f1")]
        p = [i["p_value"] for i in items]
        low, high = sorted(p)  # Holm with two tests: 2 * smallest, then max(that, the largest)
        adjusted = {low: min(1.0, 2 * low), high: max(min(1.0, 2 * low), high)}
        assert [i["p_holm"] for i in items] == pytest.approx([adjusted[x] for x in p])
        assert all("p_bh" in i for i in items)
        with_dpo = h.compare_stats_all("base", "dpo", family="eval")
        assert len(with_dpo) == 1 and "100 scores" in with_dpo[0]["error"] and with_dpo[0]["p_holm"] is None
        assert h.compare_stats_all("base", "sft", family="knowledge") == []


def test_async_handle_compare_stats(registry: Path) -> None:
    async def main():
        async with AsyncLightMLHandle(registry, "r1") as h:
            one, every = await asyncio.gather(h.compare_stats("base", "sft", "eval", "acc"),
                                              h.compare_stats_all("base", "sft", "eval"))
        return one, every

    one, every = asyncio.run(main())
    with LightMLHandle(registry, "r1") as h:
        assert one == h.compare_stats("base", "sft", "eval", "acc")
        assert every == h.compare_stats_all("base", "sft", "eval")


def test_compare_models(registry: Path) -> None:
    result = compare_models(registry, "base", "sft", run_name="r1")
    rows = {(d.family, d.metric_name): d for d in result.deltas}
    assert list(rows) == [("eval", "acc"), ("eval", "bleu"), ("eval", "f1"), ("eval", "loss"), ("knowledge", "mmlu")]
    assert rows["eval", "acc"].delta == 0.1 and rows["eval", "acc"].pct_change == pytest.approx(16.67)
    assert rows["eval", "acc"].test == "mcnemar" and not rows["eval", "acc"].significant
    assert rows["eval", "f1"].significant and rows["eval", "f1"].test == "bootstrap"
    assert rows["eval", "bleu"].delta is None and rows["eval", "bleu"].value_a is None
    # loss went down: lower is better, so that is an improvement
    assert rows["eval", "loss"].delta == -0.2 and rows["eval", "loss"] in result.improved
    assert [d.metric_name for d in result.improved] == ["acc", "f1", "loss"]
    assert [d.metric_name for d in result.unchanged] == ["mmlu"]
    assert [d.metric_name for d in result.missing] == ["bleu"]
    data = result.to_dict()
    assert data["summary"] == {"improved": 3, "regressed": 0, "unchanged": 1, "missing": 1,
                               "uncertainty_not_counted": 0}
    assert data["deltas"][0]["metric"] == "acc" and data["run"] == "r1"
    assert compare_models(registry, "base", "sft", run_name="r1", family="knowledge").to_dict()["summary"] == \
        {"improved": 0, "regressed": 0, "unchanged": 1, "missing": 0, "uncertainty_not_counted": 0}


def test_compare_models_across_runs_and_errors(registry: Path) -> None:
    across = compare_models(registry, "base", "base", run_a="r2", run_b="r1", family="eval")
    assert (across.run_a, across.run_b) == ("r2", "r1")
    assert {d.metric_name: d.delta for d in across.deltas}["acc"] == 0.1
    with pytest.raises(AmbiguousNameError, match="several runs"):
        compare_models(registry, "base", "sft")
    with pytest.raises(NotFoundError, match="run 'nope' not found"):
        compare_models(registry, "base", "sft", run_name="nope")
    # --run is a preference: "solo" is only in r2, so it is found there
    assert compare_models(registry, "solo", "sft", run_name="r1").run_a == "r2"
    with pytest.raises(FileNotFoundError):
        compare_models(registry.parent / "missing.db", "a", "b")


def two_models_with_one_metric(db: Path, value_a: float, value_b: float) -> Path:
    """Models a and b in run r, each with f/m."""
    with LightMLHandle(db, "r") as h:
        h.register_model("a", "org/a")
        h.register_model("b", "org/b")
        h.log_model_metric("a", "f", "m", value_a)
        h.log_model_metric("b", "f", "m", value_b)
    return db


def test_pct_change_is_none_when_a_is_zero(tmp_path: Path) -> None:
    db = two_models_with_one_metric(tmp_path / "z.db", 0.0, 0.5)
    (delta,) = compare_models(db, "a", "b").deltas
    assert delta.delta == 0.5 and delta.pct_change is None


def test_diff_models(registry: Path) -> None:
    data = diff_models(registry, ["base", "sft", "dpo"], run_name="r1")
    assert data["models"] == ["base", "sft", "dpo"] and data["run_name"] == "r1"
    assert [(r["family"], r["metric"]) for r in data["rows"]] == [
        ("eval", "acc"), ("eval", "bleu"), ("eval", "f1"), ("eval", "loss"), ("knowledge", "mmlu")]
    assert data["rows"][1]["values"] == {"base": None, "sft": 10.5, "dpo": None}
    assert diff_models(registry, ["base", "sft"], run_name="r1", family="knowledge")["rows"] == [
        {"family": "knowledge", "metric": "mmlu", "values": {"base": 0.3, "sft": 0.3}, "lower_is_better": False,
         "uncertainty": False, "best": [], "worst": []}]
    with pytest.raises(InvalidInputError, match="at least 2 models"):
        diff_models(registry, ["base"])
    with pytest.raises(InvalidInputError, match="more than once"):
        diff_models(registry, ["sft", "sft"])
    with pytest.raises(NotFoundError, match="'ghost' not found"):
        diff_models(registry, ["sft", "ghost"])


def test_format_diff_marks_best_and_worst_by_direction(registry: Path) -> None:
    text = format_diff(diff_models(registry, ["base", "sft", "dpo"], run_name="r1"), color=True)
    loss_line = next(line for line in text.splitlines() if " loss " in line)
    # loss: 1.8 (sft) is best (green), 2.0 (base) worst (red)
    assert "\033[31m    2.0000\033[0m" in loss_line and "\033[32m    1.8000\033[0m" in loss_line
    mmlu_line = next(line for line in text.splitlines() if " mmlu " in line)
    assert "\033[32m    0.3500\033[0m" in mmlu_line and mmlu_line.count("\033[31m") == 2  # tie for worst
    plain = format_diff(diff_models(registry, ["base", "sft"], run_name="r1"), color=False)
    assert "\033[" not in plain
    assert format_diff({"models": ["a", "b"], "run_name": None, "rows": []}) == \
        "\n  No metrics found for the given models.\n"


def test_scores_with_document_ids_pair_by_document(tmp_path: Path) -> None:
    from lightml import verify

    db = tmp_path / "docs.db"
    docs = [f"doc-{i}" for i in range(100)]
    with LightMLHandle(db, "r") as h:
        h.register_model("a", "org/a")
        h.register_model("b", "org/b")
        h.register_model("shuffled", "org/shuffled")
        h.register_model("limited", "org/limited")
        h.log_model_metric("a", "eval", "acc", 0.6, scores=BASE_ACC, doc_ids=docs)
        h.log_model_metric("b", "eval", "acc", 0.7, scores=SFT_ACC, doc_ids=docs)
        # the same scores as b, written in another document order
        order = list(range(99, -1, -1))
        h.log_model_metric("shuffled", "eval", "acc", 0.7, scores=[SFT_ACC[i] for i in order],
                           doc_ids=[docs[i] for i in order])
        # a --limit run: 100 scores, but 10 of them on other documents
        h.log_model_metric("limited", "eval", "acc", 0.7, scores=SFT_ACC, doc_ids=docs[:90] + [f"x{i}" for i in range(10)])
        same = h.compare_stats("a", "b", "eval", "acc")
        assert h.compare_stats("a", "shuffled", "eval", "acc")["contingency"] == same["contingency"]
        with pytest.raises(InvalidInputError, match="different documents .90 in common, 10 only in 'a', 10 only in"):
            h.compare_stats("a", "limited", "eval", "acc")
        with pytest.raises(InvalidInputError, match="doc_ids has 2 entries for 3 scores"):
            h.log_model_metric("a", "eval", "f1", 0.5, scores=[1, 0, 1], doc_ids=["x", "y"])
        with pytest.raises(InvalidInputError, match="distinct"):
            h.log_model_metric("a", "eval", "f1", 0.5, scores=[1, 0], doc_ids=["x", "x"])
        with pytest.raises(InvalidInputError, match="give scores too"):
            h.log_model_metric("a", "eval", "f1", 0.5, doc_ids=["x"])
        h.delete_model("shuffled")
        h.restore_model("shuffled")  # document keys come back with the scores
        assert h.compare_stats("a", "shuffled", "eval", "acc")["contingency"] == same["contingency"]
    assert verify(db).ok


def test_winner_of_a_lower_is_better_metric_is_the_lower_side(tmp_path: Path) -> None:
    db = tmp_path / "loss.db"
    with LightMLHandle(db, "r") as h:
        h.register_model("a", "org/a")
        h.register_model("b", "org/b")
        # A's per-sample loss is clearly lower: A is the better model
        h.log_model_metric("a", "eval", "loss", 1.0, scores=[1.0 + 0.01 * (i % 7) for i in range(200)])
        h.log_model_metric("b", "eval", "loss", 2.0, scores=[2.0 + 0.01 * (i % 5) for i in range(200)])
        # an error indicator (1 = wrong): A is wrong less often
        h.log_model_metric("a", "eval", "error", 0.1, scores=[1] * 10 + [0] * 90)
        h.log_model_metric("b", "eval", "error", 0.5, scores=[1] * 50 + [0] * 50)
        h.log_model_metric("a", "eval", "acc", 0.9, scores=[0] * 10 + [1] * 90)
        h.log_model_metric("b", "eval", "acc", 0.5, scores=[0] * 50 + [1] * 50)
        loss = h.compare_stats("a", "b", "eval", "loss", resamples=500)
        error = h.compare_stats("a", "b", "eval", "error")
        acc = h.compare_stats("a", "b", "eval", "acc")
        every = {i["metric_name"]: i for i in h.compare_stats_all("a", "b")}
    assert loss["lower_is_better"] and loss["significant"] and loss["winner"] == "a"
    assert error["lower_is_better"] and error["winner"] == "a" and error["mcnemar"]["winner"] == "a"
    assert not acc["lower_is_better"] and acc["winner"] == "a" and acc["mcnemar"]["winner"] == "a"
    assert {name: item["winner"] for name, item in every.items()} == {"acc": "a", "error": "a", "loss": "a"}

    from lightml.report.stats_report import format_stats, format_stats_all

    assert "a is better" in format_stats(loss, color=False)
    table = format_stats_all(list(every.values()), "a", "b", color=False)
    assert "b better" not in table and table.count("a better") == 3


def test_pct_change_uses_the_exact_difference(tmp_path: Path) -> None:
    db = two_models_with_one_metric(tmp_path / "p.db", 0.00004, 0.00005)
    result = compare_models(db, "a", "b")
    (delta,) = result.deltas
    assert delta.delta == 0.0 and delta.pct_change == pytest.approx(25.0)
    assert delta.direction == 1 and result.improved == [delta]  # higher is better for "m"


@pytest.mark.parametrize("stored", ["[NaN, 0.25, 0.5, 0.25]", "[]", '["x", 1, 0, 1]'])
def test_stored_scores_that_are_not_usable_make_one_metric_untestable(tmp_path: Path, stored: str) -> None:
    import sqlite3

    from lightml import export_excel

    db = tmp_path / "nan.db"
    with LightMLHandle(db, "r") as h:
        h.register_model("a", "org/a")
        h.register_model("b", "org/b", parent_name="a")  # the Excel report tests child against parent
        for model in ("a", "b"):
            h.log_model_metric(model, "eval", "acc", 0.5, scores=[1, 0, 1, 0])
            h.log_model_metric(model, "eval", "f1", 0.5, scores=[0.5, 0.25, 0.5, 0.25])
    # as an older tool could have written it (the handles refuse NaN scores)
    from test_names import _as_an_older_tool

    _as_an_older_tool(db, "UPDATE detailed_scores SET scores = ? WHERE metric_id = "
                          "(SELECT m.id FROM metrics m JOIN model o ON o.id = m.model_id "
                          "WHERE o.model_name = 'b' AND m.metric_name = 'f1')", (stored,))
    with LightMLHandle(db, "r") as h:
        with pytest.raises(InvalidInputError, match="not a non-empty list of finite numbers"):
            h.compare_stats("a", "b", "eval", "f1")
        items = {i["metric_name"]: i for i in h.compare_stats_all("a", "b")}
    assert "finite numbers" in items["f1"]["error"] and items["acc"]["p_value"] == 1.0
    result = compare_models(db, "a", "b")  # the table still comes, with the f1 verdict as an error
    assert {(d.family, d.metric_name) for d in result.deltas} == {("eval", "acc"), ("eval", "f1")}
    assert export_excel(db, tmp_path / "r.xlsx").exists()  # and so does the report


def test_diff_models_refuses_a_string_for_the_list(registry: Path) -> None:
    with pytest.raises(InvalidInputError, match="must be a list of model names"):
        diff_models(registry, "base")


# -- stderr rows are shown, never counted, coloured, averaged or ranked ------------------------

@pytest.fixture
def with_stderr(tmp_path: Path) -> Path:
    db = tmp_path / "se.db"
    with LightMLHandle(db, "r") as h:
        for model, acc, se, ppl in (("base", 0.30, 0.0110, 12.0), ("sft", 0.32, 0.0101, 14.0),
                                    ("dpo", 0.34, 0.0099, 15.0)):
            h.register_model(model, f"org/{model}")
            h.log_metrics(model, {"eval": {"acc": acc, "acc_stderr": se}, "wiki": {"word_perplexity": ppl}})
    return db


def test_compare_does_not_count_a_stderr(with_stderr: Path) -> None:
    result = compare_models(with_stderr, "base", "sft")
    stderr_row = next(d for d in result.deltas if d.metric_name == "acc_stderr")
    assert stderr_row.uncertainty and stderr_row.direction is None and stderr_row.delta == -0.0009
    assert [d.metric_name for d in result.improved] == ["acc"]
    assert [d.metric_name for d in result.regressed] == ["word_perplexity"]
    assert result.to_dict()["summary"] == {"improved": 1, "regressed": 1, "unchanged": 0, "missing": 0,
                                           "uncertainty_not_counted": 1}
    text = result.to_text(color=True)
    stderr_line = next(line for line in text.splitlines() if "acc_stderr" in line)
    assert "\033[" not in stderr_line and "1 stderr row(s) shown, not counted" in text


def test_diff_neither_ranks_nor_averages_a_stderr_or_a_perplexity(with_stderr: Path) -> None:
    data = diff_models(with_stderr, ["base", "sft", "dpo"])
    stderr_row = next(r for r in data["rows"] if r["metric"] == "acc_stderr")
    assert stderr_row["uncertainty"] and stderr_row["best"] == [] and stderr_row["worst"] == []
    ppl_row = next(r for r in data["rows"] if r["metric"] == "word_perplexity")
    assert ppl_row["best"] == ["base"] and ppl_row["worst"] == ["dpo"]  # lower is better
    # the AVG is over acc alone: dpo, worst on perplexity, no longer looks best by a mixed mean
    assert data["average"]["metrics"] == [["eval", "acc"]]
    assert data["average"]["values"] == {"base": 0.3, "sft": 0.32, "dpo": 0.34}
    assert {x["metric"]: x["reason"] for x in data["average"]["left_out"]} == {
        "acc_stderr": "uncertainty (stderr)", "word_perplexity": "lower is better"}
    text = format_diff(data, color=True)
    assert "\033[" not in next(line for line in text.splitlines() if "acc_stderr" in line)
    assert "AVG: mean of the higher-is-better metrics" in text
    assert "Left out: acc_stderr (uncertainty (stderr)), word_perplexity (lower is better)." in text


def test_diff_without_any_averageable_metric_says_so(with_stderr: Path) -> None:
    data = diff_models(with_stderr, ["base", "sft"], family="wiki")
    assert data["average"]["values"] is None
    assert "AVG: none (no metric fits the rule below)" in format_diff(data, color=False)


def test_top_lists_a_stderr_without_ranking_it(with_stderr: Path) -> None:
    import json

    from test_cli import lightml

    board = json.loads(lightml("top", "--db", with_stderr, "--family", "eval", "--metric", "acc_stderr",
                               "--json").stdout)
    assert board["uncertainty"] and [(r["rank"], r["model"]) for r in board["rows"]] == [
        (None, "dpo"), (None, "sft"), (None, "base")]
    text = lightml("top", "--db", with_stderr, "--family", "eval", "--metric", "acc_stderr").stdout
    assert "not a score" in text and text.splitlines()[1].split() == ["model", "run", "value"]


# -- LightML 1.2's own compare tests (lightml/tests/test_compare.py), on our classes ------------

class TestMetricDelta12:
    def test_delta_computed(self) -> None:
        d = MetricDelta(family="bench", metric_name="acc", value_a=0.80, value_b=0.85)
        assert d.delta == pytest.approx(0.05, abs=1e-4) and d.pct_change == pytest.approx(6.25, abs=0.01)

    def test_delta_negative(self) -> None:
        d = MetricDelta(family="bench", metric_name="f1", value_a=0.75, value_b=0.70)
        assert d.delta == pytest.approx(-0.05, abs=1e-4) and d.pct_change < 0

    def test_delta_zero_change(self) -> None:
        d = MetricDelta(family="bench", metric_name="x", value_a=0.5, value_b=0.5)
        assert d.delta == 0.0 and d.pct_change == 0.0

    @pytest.mark.parametrize("a, b", [(None, 0.5), (0.5, None), (None, None)])
    def test_a_missing_value_has_no_delta(self, a, b) -> None:
        d = MetricDelta(family="bench", metric_name="x", value_a=a, value_b=b)
        assert d.delta is None and d.pct_change is None

    def test_value_a_zero_no_pct(self) -> None:
        d = MetricDelta(family="bench", metric_name="x", value_a=0.0, value_b=1.0)
        assert d.delta == pytest.approx(1.0, abs=1e-4) and d.pct_change is None

    def test_serialisation(self) -> None:
        d = MetricDelta(family="f", metric_name="m", value_a=0.1, value_b=0.2)
        data = d.model_dump()
        assert "family" in data and "delta" in data
        assert MetricDelta(**data) == d

    def test_our_difference_direction_by_name(self) -> None:
        # documented difference: a loss that goes down improved (1.2 counted delta > 0)
        assert MetricDelta(family="f", metric_name="loss", value_a=2.0, value_b=1.8).direction == 1


class TestCompareResult12:
    @staticmethod
    def _make_result() -> CompareResult:
        deltas = [
            MetricDelta(family="a", metric_name="m1", value_a=0.5, value_b=0.6),   # improved
            MetricDelta(family="a", metric_name="m2", value_a=0.5, value_b=0.4),   # regressed
            MetricDelta(family="b", metric_name="m3", value_a=0.5, value_b=0.5),   # unchanged
            MetricDelta(family="b", metric_name="m4", value_a=0.5, value_b=None),  # missing
        ]
        return CompareResult(model_a="A", model_b="B", run_name="run1", deltas=deltas)

    def test_counts(self) -> None:
        r = self._make_result()
        assert [d.metric_name for d in r.improved] == ["m1"] and [d.metric_name for d in r.regressed] == ["m2"]
        assert len(r.unchanged) == 1 and len(r.missing) == 1

    def test_to_dict_structure(self) -> None:
        d = self._make_result().to_dict()
        assert (d["model_a"], d["model_b"], d["run"]) == ("A", "B", "run1")
        assert {k: d["summary"][k] for k in ("improved", "regressed", "unchanged", "missing")} == {
            "improved": 1, "regressed": 1, "unchanged": 1, "missing": 1}
        assert len(d["deltas"]) == 4
        assert {"family", "metric", "value_a", "value_b", "delta", "pct_change"} <= set(d["deltas"][0])

    def test_to_text_contains_model_names(self) -> None:
        text = self._make_result().to_text(color=False)
        assert "A" in text and "B" in text and "improved" in text and "Run: run1" in text

    def test_empty_deltas(self) -> None:
        r = CompareResult(model_a="X", model_b="Y", run_name=None, deltas=[])
        assert r.improved == [] and r.regressed == [] and r.to_dict()["summary"]["improved"] == 0
        assert CompareResult(model_a="X", model_b="Y").deltas == []  # 1.2's default


@pytest.fixture
def two_model_registry(tmp_path: Path) -> Path:
    db = tmp_path / "two.db"
    with LightMLHandle(db, "run1") as h:
        h.register_model("model_a", "org/a")
        h.register_model("model_b", "org/b")
        h.log_metrics("model_a", {"bench": {"acc": 0.80, "f1": 0.75}})
        h.log_metrics("model_b", {"bench": {"acc": 0.85, "f1": 0.70}})
    return db


def test_compare_models_as_in_12(two_model_registry: Path, tmp_path: Path) -> None:
    db = two_model_registry
    result = compare_models(db, "model_a", "model_b", run_name="run1")
    assert (result.model_a, result.model_b, len(result.deltas)) == ("model_a", "model_b", 2)
    assert len(result.improved) == 1 and len(result.regressed) == 1
    assert len(compare_models(db, "model_a", "model_b", run_name="run1", family="bench").deltas) == 2
    assert compare_models(db, "model_a", "model_b", run_name="run1", family="nonexistent").deltas == []
    with pytest.raises(ValueError, match="not found"):
        compare_models(db, "model_a", "DOES_NOT_EXIST", run_name="run1")
    assert len(compare_models(db, "model_a", "model_b").deltas) == 2
    assert all(d.delta == 0 for d in compare_models(db, "model_a", "model_a", run_name="run1").deltas)
    partial = tmp_path / "partial.db"
    with LightMLHandle(partial, "r1") as h:
        h.register_model("alpha", "org/alpha")
        h.register_model("beta", "org/beta")
        h.log_metrics("alpha", {"fam": {"shared": 0.5, "only_a": 0.3}})
        h.log_metrics("beta", {"fam": {"shared": 0.6, "only_b": 0.9}})
    result = compare_models(partial, "alpha", "beta", run_name="r1")
    assert (len(result.deltas), len(result.missing), len(result.improved)) == (3, 2, 1)


@pytest.mark.parametrize("name, lower", [
    ("brier_score", True), ("ece", True), ("calibration_ece", True), ("mce", True), ("word_perplexity", True),
    ("acc", False), ("acc_norm", False), ("exact_match,strict-match", False), ("recency", False), ("f1", False),
])
def test_direction_by_name_covers_lm_eval_calibration_metrics(name: str, lower: bool) -> None:
    """lm-eval's brier_score and calibration errors are lower-is-better: counted as gains when
    they go up, they made a worse model look better in compare and diff."""
    from lightml.read.direction import lower_is_better

    assert lower_is_better(name) is lower
