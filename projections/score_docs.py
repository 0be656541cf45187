"""The ``score_docs`` table: which document each per-sample score is for.

Kept apart from ``detailed_scores`` so that table keeps LightML 1.2's columns. With keys on
both sides a paired test pairs scores by document, and refuses vectors scored on different
documents (one run with ``--limit``, say) instead of pairing them by position.
"""

from lightml.log.events import Change
from projections import metric_repeats

TABLE = "score_docs"
DDL = """
CREATE TABLE score_docs (
    metric_id INTEGER PRIMARY KEY REFERENCES metrics(id),
    doc_keys  TEXT NOT NULL
)"""
INDEXES: list[str] = []
# A row no sound event gives (replay checks the rebuilt table for one): keys that are not
# JSON array text.
DAMAGED_ROW = "CASE WHEN json_valid(doc_keys) THEN json_type(doc_keys) <> 'array' ELSE 1 END"

_INSERT = "INSERT INTO score_docs (metric_id, doc_keys) VALUES (?, ?)"


def on_metric_inserted(conn, events: list[Change]) -> None:
    rows = [(m["metric_id"], m["doc_keys"]) for e in events for m in e.payload["metrics"] if m.get("doc_keys")]
    if rows:
        conn.executemany(_INSERT, rows)


def on_metric_overwritten(conn, events: list[Change]) -> None:
    # Like the scores: an overwrite replaces them with the new call's, or leaves none (a repeat's
    # stay when the metric keeps scores: the per-document means, over these same documents).
    for event in events:
        metrics = event.payload["metrics"]
        conn.executemany("DELETE FROM score_docs WHERE metric_id = ?", [(m["metric_id"],) for m in metrics])
        conn.executemany(_INSERT, [(m["metric_id"], m["doc_keys"]) for m in metrics if m.get("doc_keys") and (
            "repeat" not in m or metric_repeats.document_means(metric_repeats.repeats_of(conn, m["metric_id"])))])


def on_model_deleted(conn, events: list[Change]) -> None:
    for event in events:
        conn.executemany("DELETE FROM score_docs WHERE metric_id = ?",
                         [(s["metric_id"],) for s in event.payload["snapshot"]["detailed_scores"]])


def on_model_restored(conn, events: list[Change]) -> None:
    for event in events:
        conn.executemany(_INSERT, [(s["metric_id"], s["doc_keys"])
                                   for s in event.payload["snapshot"]["detailed_scores"] if s.get("doc_keys")])
