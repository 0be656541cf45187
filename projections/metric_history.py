"""The ``metric_history`` table: every change of a metric after it was inserted.

One row per metric per event that changed it: ``overwritten`` (new value and the previous
one; of a repeat, that repeat's), ``repeat added`` (a new repeat label's value), ``deleted`` (the value it had, as ``previous_value``) and ``restored``. Inserts are
recorded once per event as id ranges in ``metric_insert_range`` (bulk logging writes one
row per event there, not one per metric); ``lightml.read.queries.metric_history`` joins both
with the event rows for when and who.
"""

from lightml.log.events import Change

TABLE = "metric_history"
DDL = """
CREATE TABLE metric_history (
    metric_id      INTEGER NOT NULL,
    seq            INTEGER NOT NULL,
    action         TEXT NOT NULL,
    value          REAL,
    previous_value REAL,
    PRIMARY KEY (metric_id, seq)
) WITHOUT ROWID"""
INDEXES: list[str] = []

_INSERT = "INSERT INTO metric_history (metric_id, seq, action, value, previous_value) VALUES (?, ?, ?, ?, ?)"


def on_metric_overwritten(conn, events: list[Change]) -> None:
    conn.executemany(
        _INSERT,
        [
            (m["metric_id"], e.seq, "repeat added" if m.get("new_repeat") else "overwritten", m["value"],
             m["previous_value"])
            for e in events
            for m in e.payload["metrics"]
        ],
    )


def on_model_deleted(conn, events: list[Change]) -> None:
    conn.executemany(
        _INSERT,
        [(m["id"], e.seq, "deleted", None, m["value"]) for e in events for m in e.payload["snapshot"]["metrics"]],
    )


def on_model_restored(conn, events: list[Change]) -> None:
    conn.executemany(
        _INSERT,
        [(m["id"], e.seq, "restored", m["value"], None) for e in events for m in e.payload["snapshot"]["metrics"]],
    )
