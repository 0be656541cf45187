"""projections.metric_history: every change of a metric after its insert,
(metric_id, seq, action, value, previous_value)."""

from __future__ import annotations

from lightml.log import events as ev


def _logged_twice(handle) -> None:
    handle.register_model("a", "org/a")
    checkpoint = handle.register_checkpoint("a", 10, "ckpt/a-10")
    handle.log_metrics_flat("a", {"acc": 0.5, "f1": 0.25}, "mmlu")
    handle.log_checkpoint_metric(checkpoint, "mmlu", "acc", 0.125)
    handle.log_metrics_flat("a", {"acc": 0.75, "f1": 0.25}, "mmlu", force=True)


def test_inserts_make_no_history_rows(bench):
    changes = bench.log(lambda h: (h.register_model("a", "org/a"), h.log_model_metric("a", "f", "m", 0.5)))
    assert bench.rows(bench.live(changes), "metric_history") == []


def test_metric_overwritten_records_new_and_previous_value_per_metric(bench):
    changes = bench.log(_logged_twice)
    before, after, event = bench.step(changes, ev.METRIC_OVERWRITTEN, "metric_history")
    assert before == []
    # Forced with an unchanged value (f1) is an overwrite too: the log says it was written again.
    assert after == [(1, event.seq, "overwritten", 0.75, 0.5), (2, event.seq, "overwritten", 0.25, 0.25)]


def test_model_deleted_records_each_value_it_removes_checkpoint_metrics_included(bench):
    changes = bench.log(lambda h: (_logged_twice(h), h.delete_model("a")))
    before, after, event = bench.step(changes, ev.MODEL_DELETED, "metric_history")
    assert after == sorted(before + [(1, event.seq, "deleted", None, 0.75), (2, event.seq, "deleted", None, 0.25),
                                     (3, event.seq, "deleted", None, 0.125)])


def test_model_restored_records_each_value_it_brings_back(bench):
    changes = bench.log(lambda h: (_logged_twice(h), h.delete_model("a"), h.restore_model("a")))
    before, after, event = bench.step(changes, ev.MODEL_RESTORED, "metric_history")
    assert after == sorted(before + [(1, event.seq, "restored", 0.75, None), (2, event.seq, "restored", 0.25, None),
                                     (3, event.seq, "restored", 0.125, None)])
