"""The ``metrics`` table: one value per (model or checkpoint, family, metric_name)."""

from lightml.log.events import Change
from projections import metric_repeats

TABLE = "metrics"
DDL = """
CREATE TABLE metrics (
    id            INTEGER PRIMARY KEY,
    model_id      INTEGER REFERENCES model(id),
    checkpoint_id INTEGER REFERENCES checkpoint(id),
    family        TEXT NOT NULL,
    metric_name   TEXT NOT NULL,
    value         REAL,
    CHECK ((model_id IS NULL) <> (checkpoint_id IS NULL))
)"""
# The unique indexes are the last line of defence against a duplicated metric.
INDEXES = [
    "CREATE UNIQUE INDEX IF NOT EXISTS metrics_model_key ON metrics(model_id, family, metric_name) "
    "WHERE model_id IS NOT NULL",
    "CREATE UNIQUE INDEX IF NOT EXISTS metrics_checkpoint_key "
    "ON metrics(checkpoint_id, family, metric_name) WHERE checkpoint_id IS NOT NULL",
]

_INSERT = (
    "INSERT INTO metrics (id, model_id, checkpoint_id, family, metric_name, value) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)


def on_metric_inserted(conn, events: list[Change]) -> None:
    rows = []
    for event in events:
        p = event.payload
        checkpoint_id = p["checkpoint_id"]
        model_id = None if checkpoint_id is not None else p["model_id"]
        for m in p["metrics"]:
            rows.append((m["metric_id"], model_id, checkpoint_id, m["family"], m["metric_name"], m["value"]))
    conn.executemany(_INSERT, rows)


def on_metric_overwritten(conn, events: list[Change]) -> None:
    # (after metric_repeats': a repeat's value changes the metric's mean, which it then holds)
    conn.executemany(
        "UPDATE metrics SET value = ? WHERE id = ?",
        [(_new_value(conn, m), m["metric_id"]) for e in events for m in e.payload["metrics"]],
    )


def _new_value(conn, m: dict):
    values = [row[1] for row in metric_repeats.repeats_of(conn, m["metric_id"])] if "repeat" in m else None
    # (no repeats left: a later event of the same batch logged the metric without a label)
    return metric_repeats.mean_of(values) if values else m["value"]


def on_model_deleted(conn, events: list[Change]) -> None:
    for event in events:
        conn.executemany(
            "DELETE FROM metrics WHERE id = ?",
            [(m["id"],) for m in event.payload["snapshot"]["metrics"]],
        )


def on_model_restored(conn, events: list[Change]) -> None:
    for event in events:
        conn.executemany(
            _INSERT,
            [
                (m["id"], m["model_id"], m["checkpoint_id"], m["family"], m["metric_name"], m["value"])
                for m in event.payload["snapshot"]["metrics"]
            ],
        )
