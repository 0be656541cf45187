"""projections.score_docs: which document each per-sample score is for, (metric_id, doc_keys JSON text)."""

from __future__ import annotations

import json

from lightml.log import events as ev


def _scored_with_docs(handle) -> None:
    handle.register_model("a", "org/a")
    handle.log_model_metric("a", "mmlu", "acc", 0.5, scores=[1, 0], doc_ids=["q1", 7])
    handle.log_model_metric("a", "mmlu", "f1", 0.5, scores=[1, 0])  # scores without documents: no row
    handle.register_model("b", "org/b")
    handle.log_model_metric("b", "mmlu", "acc", 0.5, scores=[0, 1], doc_ids=["é", "q2"])


def test_metric_inserted_with_doc_ids_makes_a_row_and_without_none(bench):
    changes = bench.log(_scored_with_docs)
    conn = bench.live(changes)
    assert bench.rows(conn, "score_docs") == [(1, '["q1",7]'), (3, '["é","q2"]')]
    assert json.loads(bench.rows(conn, "score_docs")[1][1]) == ["é", "q2"]
    assert [row[0] for row in bench.rows(conn, "detailed_scores")] == [1, 2, 3]


def test_metric_overwritten_replaces_the_keys_or_drops_them(bench):
    def script(h):
        _scored_with_docs(h)
        h.log_model_metric("a", "mmlu", "acc", 0.5, scores=[0, 1], doc_ids=["q9", "q1"], force=True)
        h.log_model_metric("b", "mmlu", "acc", 0.5, scores=[0, 1], force=True)

    changes = bench.log(script)
    overwrites = [i for i, c in enumerate(changes) if c.type == ev.METRIC_OVERWRITTEN]
    conn = bench.live(changes[:overwrites[0]])
    bench.apply_live(conn, [changes[overwrites[0]]])
    assert bench.rows(conn, "score_docs") == [(1, '["q9","q1"]'), (3, '["é","q2"]')]
    bench.apply_live(conn, [changes[overwrites[1]]])
    assert bench.rows(conn, "score_docs") == [(1, '["q9","q1"]')]


def test_model_deleted_and_restored_remove_and_return_the_keys(bench):
    changes = bench.log(lambda h: (_scored_with_docs(h), h.delete_model("a"), h.restore_model("a")))
    before, after_delete, event = bench.step(changes, ev.MODEL_DELETED, "score_docs")
    assert [s.get("doc_keys") for s in event.payload["snapshot"]["detailed_scores"]] == ['["q1",7]', None]
    assert after_delete == [(3, '["é","q2"]')]
    _, after_restore, _ = bench.step(changes, ev.MODEL_RESTORED, "score_docs")
    assert after_restore == before
