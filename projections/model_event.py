"""The ``model_event`` table: which events are about which model (the log indexed by model).

One row per event whose payload names a model (``model_id``): registration, checkpoints,
metric logs, edits, delete, restore, imported files. A model's history and "its newest
event" read this table and then fetch the events by ``seq`` (the log's primary key).
"""

from lightml.log.events import Change

TABLE = "model_event"
DDL = """
CREATE TABLE model_event (
    seq      INTEGER PRIMARY KEY,
    model_id INTEGER NOT NULL
)"""
# Keyed by seq, so a replay appends its rows in log order, and the index by model is built
# once after them: replay pays about half what a (model_id, seq) key cost it. An index of a
# rowid table holds the rowid, so this one answers "the events of model M in order" alone.
INDEXES = ["CREATE INDEX IF NOT EXISTS model_event_by_model ON model_event(model_id)"]


def on_event_about_a_model(conn, events: list[Change]) -> None:
    conn.executemany("INSERT INTO model_event (seq, model_id) VALUES (?, ?)",
                     [(e.seq, e.payload["model_id"]) for e in events])
