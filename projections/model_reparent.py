"""The ``model_reparent`` table: each time a model was given a parent, or deliberately none.

One row per ``model_reparented`` event. The relink rule asks whether a model was reparented
after some delete: then a restore leaves it where the user put it.
"""

from lightml.log.events import Change

TABLE = "model_reparent"
DDL = """
CREATE TABLE model_reparent (
    model_id INTEGER NOT NULL,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (model_id, seq)
) WITHOUT ROWID"""
INDEXES: list[str] = []


def on_model_reparented(conn, events: list[Change]) -> None:
    conn.executemany("INSERT INTO model_reparent (model_id, seq) VALUES (?, ?)",
                     [(e.payload["model_id"], e.seq) for e in events])
