"""The ``model_event`` table: which events are about which model (the log indexed by model).

One row per event whose payload names a model (``model_id``): registration, checkpoints,
metric logs, edits, delete, restore, imported files. A model's history and "its newest
event" read this table and then fetch the events by ``seq`` (the log's primary key).
"""

from lightml.log.events import Change

TABLE = "model_event"
DDL = """
CREATE TABLE model_event (
    model_id INTEGER NOT NULL,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (model_id, seq)
) WITHOUT ROWID"""
INDEXES: list[str] = []


def on_event_about_a_model(conn, events: list[Change]) -> None:
    # In key order: a replay's batch of 20,000 events then fills each model's pages once,
    # not once per event (several times faster with many models).
    conn.executemany("INSERT INTO model_event (model_id, seq) VALUES (?, ?)",
                     sorted((e.payload["model_id"], e.seq) for e in events))
