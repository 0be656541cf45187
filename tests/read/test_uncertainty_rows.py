"""stderr rows are shown, never counted, coloured, averaged or ranked: in compare, diff and top."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightml.handle import LightMLHandle
from lightml.read.compare import compare_models
from lightml.read.diff import diff_models, format_diff


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
