"""compare_models and diff_models (and format_diff's colours), and LightML 1.2's own compare
tests on our classes."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightml.errors import AmbiguousNameError, InvalidInputError, NotFoundError
from lightml.handle import LightMLHandle
from lightml.read.compare import CompareResult, MetricDelta, compare_models
from lightml.read.diff import diff_models, format_diff


def test_compare_models(lineage: Path) -> None:
    result = compare_models(lineage, "base", "sft", run_name="r1")
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
    assert compare_models(lineage, "base", "sft", run_name="r1", family="knowledge").to_dict()["summary"] == \
        {"improved": 0, "regressed": 0, "unchanged": 1, "missing": 0, "uncertainty_not_counted": 0}


def test_compare_models_across_runs_and_errors(lineage: Path) -> None:
    across = compare_models(lineage, "base", "base", run_a="r2", run_b="r1", family="eval")
    assert (across.run_a, across.run_b) == ("r2", "r1")
    assert {d.metric_name: d.delta for d in across.deltas}["acc"] == 0.1
    with pytest.raises(AmbiguousNameError, match="several runs"):
        compare_models(lineage, "base", "sft")
    with pytest.raises(NotFoundError, match="run 'nope' not found"):
        compare_models(lineage, "base", "sft", run_name="nope")
    # --run is a preference: "solo" is only in r2, so it is found there
    assert compare_models(lineage, "solo", "sft", run_name="r1").run_a == "r2"
    with pytest.raises(FileNotFoundError):
        compare_models(lineage.parent / "missing.db", "a", "b")


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


def test_pct_change_uses_the_exact_difference(tmp_path: Path) -> None:
    db = two_models_with_one_metric(tmp_path / "p.db", 0.00004, 0.00005)
    result = compare_models(db, "a", "b")
    (delta,) = result.deltas
    assert delta.delta == 0.0 and delta.pct_change == pytest.approx(25.0)
    assert delta.direction == 1 and result.improved == [delta]  # higher is better for "m"


def test_diff_models(lineage: Path) -> None:
    data = diff_models(lineage, ["base", "sft", "dpo"], run_name="r1")
    assert data["models"] == ["base", "sft", "dpo"] and data["run_name"] == "r1"
    assert [(r["family"], r["metric"]) for r in data["rows"]] == [
        ("eval", "acc"), ("eval", "bleu"), ("eval", "f1"), ("eval", "loss"), ("knowledge", "mmlu")]
    assert data["rows"][1]["values"] == {"base": None, "sft": 10.5, "dpo": None}
    assert diff_models(lineage, ["base", "sft"], run_name="r1", family="knowledge")["rows"] == [
        {"family": "knowledge", "metric": "mmlu", "values": {"base": 0.3, "sft": 0.3}, "lower_is_better": False,
         "uncertainty": False, "best": [], "worst": [], "stderr": None, "repeats": None,
         "settings_differ": []}]
    with pytest.raises(InvalidInputError, match="at least 2 models"):
        diff_models(lineage, ["base"])
    with pytest.raises(InvalidInputError, match="more than once"):
        diff_models(lineage, ["sft", "sft"])
    with pytest.raises(NotFoundError, match="'ghost' not found"):
        diff_models(lineage, ["sft", "ghost"])


def test_format_diff_marks_best_and_worst_by_direction(lineage: Path) -> None:
    text = format_diff(diff_models(lineage, ["base", "sft", "dpo"], run_name="r1"), color=True)
    loss_line = next(line for line in text.splitlines() if " loss " in line)
    # loss: 1.8 (sft) is best (green), 2.0 (base) worst (red)
    assert "\033[31m    2.0000\033[0m" in loss_line and "\033[32m    1.8000\033[0m" in loss_line
    mmlu_line = next(line for line in text.splitlines() if " mmlu " in line)
    assert "\033[32m    0.3500\033[0m" in mmlu_line and mmlu_line.count("\033[31m") == 2  # tie for worst
    plain = format_diff(diff_models(lineage, ["base", "sft"], run_name="r1"), color=False)
    assert "\033[" not in plain
    assert format_diff({"models": ["a", "b"], "run_name": None, "rows": []}) == \
        "\n  No metrics found for the given models.\n"


def test_diff_models_refuses_a_string_for_the_list(lineage: Path) -> None:
    with pytest.raises(InvalidInputError, match="must be a list of model names"):
        diff_models(lineage, "base")


# -- LightML 1.2's own compare tests (lightml/tests/test_compare.py), on our classes ---------


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
