"""The ``detailed_scores`` table: per-sample scores of a metric, as a JSON array (of a metric
with repeats: the per-document means of the repeats' scores, see ``metric_repeats``)."""


from lightml.log import codec
from lightml.log.events import Change
from projections import metric_repeats

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
        conn.executemany(_INSERT, [row for row in map(lambda m: _new_scores(conn, m), metrics) if row is not None])


def _new_scores(conn, m: dict) -> tuple | None:
    """A metric's scores after an overwrite: the new call's; for a repeat (after
    metric_repeats' handler), the per-document means of its repeats when they allow them."""
    if "repeat" not in m:
        return None if m.get("scores") is None else (m["metric_id"], m["scores"], m.get("n_samples"))
    means = metric_repeats.document_means(metric_repeats.repeats_of(conn, m["metric_id"]))
    return None if means is None else (m["metric_id"], means, len(codec.loads(means)))


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
