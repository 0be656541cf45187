"""projections.detailed_scores: per-sample scores, (metric_id, scores JSON text, n_samples)."""

from __future__ import annotations

import json

from lightml.log import events as ev


def _scored(handle) -> None:
    handle.register_model("a", "org/a")
    handle.log_model_metric("a", "mmlu", "acc", 0.5, scores=[1, 0, True, 0])
    handle.log_model_metric("a", "mmlu", "f1", 0.25)  # no scores: no row
    handle.register_model("b", "org/b")
    handle.log_model_metric("b", "mmlu", "acc", 1.0, scores=[1.0, 1.0])


def test_metric_inserted_with_scores_makes_a_row_and_without_none(bench):
    changes = bench.log(_scored)
    conn = bench.live(changes)
    assert bench.rows(conn, "detailed_scores") == [(1, "[1,0,1,0]", 4), (3, "[1.0,1.0]", 2)]
    f1 = bench.of_type(changes, ev.METRIC_INSERTED)[1].payload["metrics"][0]
    assert (f1["metric_name"], "scores" in f1) == ("f1", False)


def test_metric_overwritten_with_new_scores_replaces_them(bench):
    changes = bench.log(lambda h: (_scored(h), h.log_model_metric("a", "mmlu", "acc", 0.75, scores=[1, 1, 1, 0],
                                                                  force=True)))
    before, after, _ = bench.step(changes, ev.METRIC_OVERWRITTEN, "detailed_scores")
    assert before[0] == (1, "[1,0,1,0]", 4)
    assert after == [(1, "[1,1,1,0]", 4), before[1]]


def test_metric_overwritten_without_scores_drops_the_old_ones(bench):
    # Scores that described the old value would make a later paired test wrong.
    changes = bench.log(lambda h: (_scored(h), h.log_model_metric("a", "mmlu", "acc", 0.75, force=True)))
    before, after, _ = bench.step(changes, ev.METRIC_OVERWRITTEN, "detailed_scores")
    assert [row[0] for row in before] == [1, 3]
    assert after == [(3, "[1.0,1.0]", 2)]


def test_model_deleted_and_restored_remove_and_return_the_same_rows(bench):
    changes = bench.log(lambda h: (_scored(h), h.delete_model("a"), h.restore_model("a")))
    before, after_delete, event = bench.step(changes, ev.MODEL_DELETED, "detailed_scores")
    assert event.payload["snapshot"]["detailed_scores"] == [{"metric_id": 1, "scores": "[1,0,1,0]", "n_samples": 4}]
    assert after_delete == [(3, "[1.0,1.0]", 2)]
    _, after_restore, _ = bench.step(changes, ev.MODEL_RESTORED, "detailed_scores")
    assert after_restore == before
    assert json.loads(after_restore[0][1]) == [1, 0, 1, 0]
