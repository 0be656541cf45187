"""The ``model_tombstone`` table: every delete of a model, kept after a restore.

One row per ``model_deleted`` event: the model, the name and run it had, and its parent
then. Restore, the relink rule and the history of a deleted model start here; the rows
themselves (the snapshot) stay in the event, fetched by ``seq``. The children a delete
unlinked are in ``unlinked_child``.
"""

from lightml.log.events import Change

TABLE = "model_tombstone"
DDL = """
CREATE TABLE model_tombstone (
    seq        INTEGER PRIMARY KEY,
    model_id   INTEGER NOT NULL,
    model_name TEXT NOT NULL,
    run_id     INTEGER,
    parent_id  INTEGER
)"""
INDEXES = [
    "CREATE INDEX IF NOT EXISTS model_tombstone_model ON model_tombstone(model_id, seq)",
    "CREATE INDEX IF NOT EXISTS model_tombstone_name ON model_tombstone(model_name)",
    "CREATE INDEX IF NOT EXISTS model_tombstone_parent ON model_tombstone(parent_id)",
]


def on_model_deleted(conn, events: list[Change]) -> None:
    conn.executemany(
        "INSERT INTO model_tombstone (seq, model_id, model_name, run_id, parent_id) VALUES (?, ?, ?, ?, ?)",
        [(e.seq, p["model_id"], p["model_name"], p["run_id"], p["snapshot"]["model"]["parent_id"])
         for e, p in ((e, e.payload) for e in events)],
    )
