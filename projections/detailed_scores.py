"""The ``detailed_scores`` table: per-sample scores of a metric, as a JSON array."""

from lightml.log.events import Change

TABLE = "detailed_scores"
DDL = """
CREATE TABLE detailed_scores (
    metric_id INTEGER PRIMARY KEY REFERENCES metrics(id),
    scores    TEXT NOT NULL,
    n_samples INTEGER
)"""
INDEXES: list[str] = []
# A row no sound event gives (replay checks the rebuilt table for one): scores that are not
# JSON array text.
DAMAGED_ROW = "CASE WHEN json_valid(scores) THEN json_type(scores) <> 'array' ELSE 1 END"

_INSERT = "INSERT INTO detailed_scores (metric_id, scores, n_samples) VALUES (?, ?, ?)"


def on_metric_inserted(conn, events: list[Change]) -> None:
    rows = [
        (m["metric_id"], m["scores"], m.get("n_samples"))
        for e in events
        for m in e.payload["metrics"]
        if m.get("scores") is not None
    ]
    if rows:
        conn.executemany(_INSERT, rows)


def on_metric_overwritten(conn, events: list[Change]) -> None:
    # An overwrite replaces the scores with the new call's (none given: the metric has none);
    # scores that described the old value would make a later paired test wrong.
    for event in events:
        metrics = event.payload["metrics"]
        conn.executemany("DELETE FROM detailed_scores WHERE metric_id = ?", [(m["metric_id"],) for m in metrics])
        conn.executemany(
            _INSERT,
            [(m["metric_id"], m["scores"], m.get("n_samples")) for m in metrics if m.get("scores") is not None],
        )


def on_model_deleted(conn, events: list[Change]) -> None:
    for event in events:
        conn.executemany(
            "DELETE FROM detailed_scores WHERE metric_id = ?",
            [(s["metric_id"],) for s in event.payload["snapshot"]["detailed_scores"]],
        )


def on_model_restored(conn, events: list[Change]) -> None:
    for event in events:
        conn.executemany(
            _INSERT,
            [(s["metric_id"], s["scores"], s["n_samples"]) for s in event.payload["snapshot"]["detailed_scores"]],
        )
