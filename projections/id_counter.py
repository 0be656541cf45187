"""The ``id_counter`` table: the highest run, model and checkpoint id ever assigned.

Ids are never reused, even after a delete, so that a restore can put rows back under
their old ids. Max-of-table would hand a deleted model's id to the next registration.
(Metric ids need no counter: ``metric_insert_range`` already records every one given.)
"""

from lightml.log.events import Change

TABLE = "id_counter"
DDL = """
CREATE TABLE id_counter (
    entity  TEXT PRIMARY KEY,
    last_id INTEGER NOT NULL
) WITHOUT ROWID"""
INDEXES: list[str] = []

_UPSERT = (
    "INSERT INTO id_counter (entity, last_id) VALUES (?, ?) "
    "ON CONFLICT(entity) DO UPDATE SET last_id = "
    "CASE WHEN excluded.last_id > id_counter.last_id THEN excluded.last_id ELSE id_counter.last_id END"
)


def _bump(conn, entity: str, ids) -> None:
    highest = max(ids, default=None)
    if highest is not None:
        conn.execute(_UPSERT, (entity, highest))


def on_run_created(conn, events: list[Change]) -> None:
    _bump(conn, "run", [e.payload["run_id"] for e in events])


def on_model_registered(conn, events: list[Change]) -> None:
    _bump(conn, "model", [e.payload["model_id"] for e in events])


def on_checkpoint_registered(conn, events: list[Change]) -> None:
    _bump(conn, "checkpoint", [e.payload["checkpoint_id"] for e in events])
