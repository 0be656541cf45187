"""stderr rows are shown, never counted, coloured, averaged or ranked: in compare, diff and top.
And what they allow: each score shown with its stderr (linked by lm-eval's name rule), and top
marking the models not significantly different from the leader (z-test, checked against the
standard library's NormalDist)."""

from __future__ import annotations

import math
from pathlib import Path
from statistics import NormalDist

import pytest

from lightml.handle import LightMLHandle
from lightml.read.compare import compare_models
from lightml.read.diff import diff_models, format_diff
from lightml.read.uncertainty import (Z95, average_interval_over_documents, average_interval_over_tasks, interval,
                                      stderr_name, usable_stderr, z_test_p_value)


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


def test_top_lists_a_stderr_without_ranking_it(with_stderr: Path, cli) -> None:
    import json

    board = json.loads(cli("top", "--db", with_stderr, "--family", "eval", "--metric", "acc_stderr",
                           "--json").stdout)
    assert board["uncertainty"] and [(r["rank"], r["model"]) for r in board["rows"]] == [
        (None, "dpo"), (None, "sft"), (None, "base")]
    text = cli("top", "--db", with_stderr, "--family", "eval", "--metric", "acc_stderr").stdout
    assert "not a score" in text and text.splitlines()[1].split() == ["model", "run", "value"]



# -- a score with its stderr ---------------------------------------------------------------------


@pytest.mark.parametrize("metric, stderr", [
    ("acc", "acc_stderr"), ("acc_norm", "acc_norm_stderr"),
    ("exact_match,strict-match", "exact_match_stderr,strict-match"), ("f1,", "f1_stderr,"),
])
def test_the_stderr_of_a_metric_is_named_as_lm_eval_names_it(metric: str, stderr: str) -> None:
    assert stderr_name(metric) == stderr


@pytest.mark.parametrize("a, se_a, b, se_b", [
    (0.30, 0.011, 0.32, 0.0101), (0.5, 0.05, 0.2, 0.04), (0.7, 0.01, 0.7, 0.02), (12.0, 0.3, 14.5, 0.5),
    (0.1, 1e-6, 0.1000001, 1e-6),
])
def test_the_z_test_matches_the_normal_distribution(a: float, se_a: float, b: float, se_b: float) -> None:
    z = abs(a - b) / math.sqrt(se_a ** 2 + se_b ** 2)
    reference = 2 * (1 - NormalDist().cdf(z))  # the standard library's normal, not erfc
    assert z_test_p_value(a, se_a, b, se_b) == pytest.approx(reference, rel=1e-6, abs=1e-12)
    assert z_test_p_value(b, se_b, a, se_a) == z_test_p_value(a, se_a, b, se_b)


def test_intervals_and_degenerate_stderrs() -> None:
    assert Z95 == pytest.approx(NormalDist().inv_cdf(0.975), rel=1e-12)
    low, high = interval(0.5, 0.01)
    assert (low, high) == pytest.approx((0.5 - 0.0195996, 0.5 + 0.0195996), rel=1e-6)
    assert z_test_p_value(0.5, 0.0, 0.5, 0.0) == 1.0 and z_test_p_value(0.5, 0.0, 0.6, 0.0) == 0.0
    assert [usable_stderr(v) for v in (0.01, 0, -0.1, float("nan"), float("inf"), None, True)] == [
        0.01, 0.0, None, None, None, None, None]


def test_compare_shows_each_value_with_its_stderr(with_stderr: Path) -> None:
    result = compare_models(with_stderr, "base", "sft")
    acc = next(d for d in result.deltas if d.metric_name == "acc")
    assert (acc.stderr_a, acc.stderr_b) == (0.011, 0.0101)
    assert next(d for d in result.deltas if d.metric_name == "word_perplexity").stderr_a is None
    row = next(r for r in result.to_dict()["deltas"] if r["metric"] == "acc")
    assert (row["stderr_a"], row["stderr_b"]) == (0.011, 0.0101)
    text = result.to_text(color=False)
    acc_line = next(line for line in text.splitlines() if " acc " in line)
    assert acc_line.split()[-2:] == ["±0.0110", "±0.0101"]
    assert "  ±: the standard error lm-eval logged with the value (<metric>_stderr)" in text


TOP_TEXT = """Top 10 on eval/acc (higher is better):
rank  model  run  value   stderr   vs #1
----  -----  ---  ------  -------  -----
1     far    r    0.4000  ±0.0100
2     dpo    r    0.3400  ±0.0099
3=    near   r    0.3200  ±0.0500  ≈ #1
3=    sft    r    0.3200  ±0.0101
5     base   r    0.3000  ±0.0110
6     bare   r    0.2000
(= : tied on the same value)
(≈ #1: not significantly different from the first, p >= 0.05: a z-test of the two values from their stderrs)
"""


def test_top_marks_the_models_the_leader_does_not_beat_significantly(with_stderr: Path, cli) -> None:
    import json

    with LightMLHandle(with_stderr, "r") as h:
        for model, acc, se in (("far", 0.40, 0.0100), ("near", 0.32, 0.0500)):
            h.register_model(model, f"org/{model}")
            h.log_metrics(model, {"eval": {"acc": acc, "acc_stderr": se}})
        h.register_model("bare", "org/bare")
        h.log_metrics("bare", {"eval": {"acc": 0.2}})  # no stderr: nothing to say
    text = cli("top", "--db", with_stderr, "--family", "eval", "--metric", "acc")
    assert text.stdout == TOP_TEXT
    rows = json.loads(cli("top", "--db", with_stderr, "--family", "eval", "--metric", "acc", "--json").stdout)["rows"]
    by_model = {r["model"]: r for r in rows}
    assert by_model["far"]["p_vs_leader"] is None and by_model["bare"]["same_as_leader"] is None
    assert by_model["near"]["p_vs_leader"] == pytest.approx(2 * (1 - NormalDist().cdf(0.08 / math.hypot(0.01, 0.05))))
    assert by_model["dpo"]["same_as_leader"] is False and by_model["dpo"]["stderr"] == 0.0099



# -- the interval of diff's AVG row ----------------------------------------------------------------


def test_the_document_bootstrap_draws_the_same_documents_for_every_model() -> None:
    import numpy as np

    rng = np.random.default_rng(7)
    a1, a2 = rng.random(300), (rng.random(500) < 0.6).astype(float)
    # B is A plus 0.1 on every document of every metric: paired draws move its interval by exactly 0.1
    (low_a, high_a), (low_b, high_b) = average_interval_over_documents([[a1, a1 + 0.1], [a2, a2 + 0.1]])
    assert (low_b - low_a, high_b - high_a) == pytest.approx((0.1, 0.1), abs=1e-12)
    # one metric of many documents: the bootstrap's interval is the normal one, mean +- 1.96 sd / sqrt(n)
    big = (np.random.default_rng(8).random(20_000) < 0.3).astype(float)
    ((low, high),) = average_interval_over_documents([[big]])
    half = Z95 * big.std() / math.sqrt(big.size)
    assert (low, high) == pytest.approx((big.mean() - half, big.mean() + half), abs=half * 0.1)


def test_the_interval_over_tasks_is_the_normal_interval_of_their_mean() -> None:
    from statistics import mean, stdev

    values = [[0.31, 0.41], [0.52, 0.62], [0.25, 0.35], [0.70, 0.80]]  # 4 metrics x 2 models (b = a + 0.1)
    (low_a, high_a), (low_b, high_b) = average_interval_over_tasks(values)
    a = [row[0] for row in values]
    half = NormalDist().inv_cdf(0.975) * stdev(a) / math.sqrt(len(a))  # the standard library's, independently
    assert (low_a, high_a) == pytest.approx((mean(a) - half, mean(a) + half), rel=1e-9)
    assert (low_b - low_a, high_b - high_a) == pytest.approx((0.1, 0.1), abs=1e-12)
    assert average_interval_over_tasks([[0.5, 0.6]]) is None  # one metric: nothing to go by


def test_diff_takes_the_document_bootstrap_when_every_averaged_metric_has_scores(tmp_path: Path) -> None:
    db = tmp_path / "scored.db"
    with LightMLHandle(db, "r") as h:
        for model, shift in (("a", 0), ("b", 10)):
            h.register_model(model, f"org/{model}")
            for metric in ("x", "y"):
                scores = [1] * (40 + shift) + [0] * (60 - shift)
                h.log_model_metric(model, "eval", metric, sum(scores) / 100, scores=scores)
    interval = diff_models(db, ["a", "b"])["average"]["interval"]
    assert (interval["method"], interval["why"], interval["resamples"], interval["seed"]) == (
        "paired bootstrap over documents", None, 1000, 42)
    assert interval["low"]["a"] < 0.4 < interval["high"]["a"] and interval["low"]["b"] < 0.5 < interval["high"]["b"]
    text = format_diff(diff_models(db, ["a", "b"]), color=False)
    assert "; paired bootstrap over documents, 1000 resamples, seed 42." in text
