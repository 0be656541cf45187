"""The ``model_arrival`` table: when each model came into the tables (registered, restored).

One row per ``model_registered`` and ``model_restored`` event; prune's grace period asks
for a model's latest arrival (the time is the event's, fetched by ``seq``).
"""

from lightml.log.events import Change

TABLE = "model_arrival"
DDL = """
CREATE TABLE model_arrival (
    model_id INTEGER NOT NULL,
    seq      INTEGER NOT NULL,
    PRIMARY KEY (model_id, seq)
) WITHOUT ROWID"""
INDEXES: list[str] = []


def on_model_arrived(conn, events: list[Change]) -> None:
    conn.executemany("INSERT INTO model_arrival (model_id, seq) VALUES (?, ?)",
                     [(e.payload["model_id"], e.seq) for e in events])
