"""compare_stats / compare_stats_all on both handles: paired tests on the stored per-sample
scores, pairing by document id, the winner of a lower-is-better metric, unusable stored scores.
Each test runs on both engines (``db`` and ``lineage``: a SQLite file, a PostgreSQL database)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from lightml.async_handle import AsyncLightMLHandle
from lightml.errors import AmbiguousNameError, InvalidInputError, NotFoundError
from lightml.handle import LightMLHandle
from lightml.log.replay import verify
from lightml.read.compare import compare_models


def test_compare_stats_on_stored_scores(lineage: Path) -> None:
    with LightMLHandle(lineage, "r1") as h:
        result = h.compare_stats("base", "sft", "eval", "acc")
    assert result["contingency"] == {"both_correct": 50, "only_a": 10, "only_b": 20, "both_wrong": 20,
                                     "n_discordant": 30}
    assert result["mcnemar"]["p_value"] == pytest.approx(0.0987, abs=1e-4)
    assert not result["significant"] and result["winner"] is None
    assert (result["mean_a"], result["mean_b"], result["n"]) == (0.6, 0.7, 100)
    assert (result["model_a"], result["model_b"], result["family"], result["metric_name"]) == \
        ("base", "sft", "eval", "acc")


def test_compare_stats_float_scores_and_options(lineage: Path) -> None:
    with LightMLHandle(lineage, "r1") as h:
        result = h.compare_stats("sft", "base", "eval", "f1", resamples=500, seed=3)
    assert result["test"] == "bootstrap" and result["significant"] and result["winner"] == "a"
    assert result["bootstrap"]["delta"] == pytest.approx(0.1)
    assert (result["bootstrap"]["resamples"], result["bootstrap"]["seed"]) == (500, 3)


def test_compare_stats_errors(lineage: Path) -> None:
    with LightMLHandle(lineage, "r1") as h:
        with pytest.raises(InvalidInputError, match="'base' has 100 scores and 'dpo' has 90"):
            h.compare_stats("base", "dpo", "eval", "acc")
        with pytest.raises(NotFoundError, match="no per-sample scores for model 'base', family 'eval', metric 'loss'"):
            h.compare_stats("base", "sft", "eval", "loss")
        with pytest.raises(NotFoundError, match="model 'nobody' not found"):
            h.compare_stats("base", "nobody", "eval", "acc")
    # Without a run, "base" is in r1 and r2: the error lists both.
    with LightMLHandle(lineage) as h:
        with pytest.raises(AmbiguousNameError, match="'r1/base', 'r2/base'"):
            h.compare_stats("base", "sft", "eval", "acc")
    # In r2 the handle prefers r2's base; sft is found in its only run (r1).
    with LightMLHandle(lineage, "r2") as h:
        assert h.compare_stats("base", "sft", "eval", "acc")["mean_a"] == 0.5


def test_compare_stats_all_adjusts_and_reports_untestable(lineage: Path) -> None:
    with LightMLHandle(lineage, "r1") as h:
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


def test_async_handle_compare_stats(lineage: Path) -> None:
    async def main():
        async with AsyncLightMLHandle(lineage, "r1") as h:
            one, every = await asyncio.gather(h.compare_stats("base", "sft", "eval", "acc"),
                                              h.compare_stats_all("base", "sft", "eval"))
        return one, every

    one, every = asyncio.run(main())
    with LightMLHandle(lineage, "r1") as h:
        assert one == h.compare_stats("base", "sft", "eval", "acc")
        assert every == h.compare_stats_all("base", "sft", "eval")


def test_scores_with_document_ids_pair_by_document(db, lineage_scores) -> None:
    base_acc, sft_acc = lineage_scores.base_acc, lineage_scores.sft_acc
    docs = [f"doc-{i}" for i in range(100)]
    with LightMLHandle(db, "r") as h:
        h.register_model("a", "org/a")
        h.register_model("b", "org/b")
        h.register_model("shuffled", "org/shuffled")
        h.register_model("limited", "org/limited")
        h.log_model_metric("a", "eval", "acc", 0.6, scores=base_acc, doc_ids=docs)
        h.log_model_metric("b", "eval", "acc", 0.7, scores=sft_acc, doc_ids=docs)
        # the same scores as b, written in another document order
        order = list(range(99, -1, -1))
        h.log_model_metric("shuffled", "eval", "acc", 0.7, scores=[sft_acc[i] for i in order],
                           doc_ids=[docs[i] for i in order])
        # a --limit run: 100 scores, but 10 of them on other documents
        h.log_model_metric("limited", "eval", "acc", 0.7, scores=sft_acc,
                           doc_ids=docs[:90] + [f"x{i}" for i in range(10)])
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


def test_winner_of_a_lower_is_better_metric_is_the_lower_side(db) -> None:
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


@pytest.mark.tampered  # scores written behind the log on purpose: the tables disagree with it
@pytest.mark.parametrize("stored", ["[NaN, 0.25, 0.5, 0.25]", "[]", '["x", 1, 0, 1]'])
def test_stored_scores_that_are_not_usable_make_one_metric_untestable(db, tmp_path: Path, stored: str,
                                                                      as_an_older_tool) -> None:
    from lightml import export_excel

    with LightMLHandle(db, "r") as h:
        h.register_model("a", "org/a")
        h.register_model("b", "org/b", parent_name="a")  # the Excel report tests child against parent
        for model in ("a", "b"):
            h.log_model_metric(model, "eval", "acc", 0.5, scores=[1, 0, 1, 0])
            h.log_model_metric(model, "eval", "f1", 0.5, scores=[0.5, 0.25, 0.5, 0.25])
    # as an older tool could have written it (the handles refuse NaN scores)
    as_an_older_tool(db, "UPDATE detailed_scores SET scores = ? WHERE metric_id = "
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
