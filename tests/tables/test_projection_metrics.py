"""projections.metrics: the ``metrics`` rows of inserts, overwrites, model deletes and restores.

Columns: (id, model_id, checkpoint_id, family, metric_name, value). A checkpoint's metric
has no model_id (the CHECK keeps exactly one of the two).
"""

from __future__ import annotations

from lightml.log import events as ev


def _model_and_checkpoint_metrics(handle) -> None:
    handle.register_model("a", "org/a")
    handle.register_model("b", "org/b")
    handle.log_model_metric("a", "mmlu", "acc", 0.5)
    handle.log_metrics("b", {"gsm8k": {"em": 0.25, "flex": 0.3}, "mmlu": {"acc": 0.75}})
    checkpoint = handle.register_checkpoint("a", 100, "ckpt/a-100")
    handle.log_checkpoint_metric(checkpoint, "mmlu", "acc", 0.125)


def test_metric_inserted_for_a_model_makes_one_row_per_metric_with_the_event_ids(bench):
    changes = bench.log(lambda h: (h.register_model("b", "org/b"),
                                   h.log_metrics("b", {"gsm8k": {"em": 0.25, "flex": 0.3}, "mmlu": {"acc": 0.75}})))
    before, after, event = bench.step(changes, ev.METRIC_INSERTED, "metrics")
    assert before == []
    assert [m["metric_id"] for m in event.payload["metrics"]] == [1, 2, 3]
    assert after == [(1, 1, None, "gsm8k", "em", 0.25), (2, 1, None, "gsm8k", "flex", 0.3),
                     (3, 1, None, "mmlu", "acc", 0.75)]


def test_metric_inserted_for_a_checkpoint_keys_the_row_by_checkpoint_only(bench):
    changes = bench.log(_model_and_checkpoint_metrics)
    before, after, event = bench.step(changes, ev.METRIC_INSERTED, "metrics")
    assert (event.payload["model_id"], event.payload["checkpoint_id"], event.payload["step"]) == (1, 1, 100)
    assert after == before + [(5, None, 1, "mmlu", "acc", 0.125)]


def test_metric_overwritten_changes_the_value_in_place(bench):
    changes = bench.log(lambda h: (_model_and_checkpoint_metrics(h), h.log_model_metric("a", "mmlu", "acc", 0.625,
                                                                                       force=True)))
    before, after, event = bench.step(changes, ev.METRIC_OVERWRITTEN, "metrics")
    assert event.payload["metrics"] == [{"metric_id": 1, "family": "mmlu", "metric_name": "acc", "value": 0.625,
                                         "previous_value": 0.5}]
    assert after == [(1, 1, None, "mmlu", "acc", 0.625)] + before[1:]


def test_model_deleted_removes_the_model_and_checkpoint_metrics_of_that_model_only(bench):
    changes = bench.log(lambda h: (_model_and_checkpoint_metrics(h), h.delete_model("a")))
    before, after, event = bench.step(changes, ev.MODEL_DELETED, "metrics")
    assert [m["id"] for m in event.payload["snapshot"]["metrics"]] == [1, 5]
    assert after == [row for row in before if row[0] not in (1, 5)]
    assert [row[1] for row in after] == [2, 2, 2]


def test_model_restored_puts_the_same_rows_back(bench):
    changes = bench.log(lambda h: (_model_and_checkpoint_metrics(h), h.delete_model("a"), h.restore_model("a")))
    deleted_at = [c.type for c in changes].index(ev.MODEL_DELETED)
    logged = bench.rows(bench.live(changes[:deleted_at]), "metrics")
    before, after, _ = bench.step(changes, ev.MODEL_RESTORED, "metrics")
    assert len(before) == 3
    assert after == logged
