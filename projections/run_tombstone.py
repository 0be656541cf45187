"""The ``run_tombstone`` table: every run prune removed (``run_deleted``), kept after a restore.

A restore of a model deleted from such a run finds the run's name and its latest removal
here (the run's row itself is in the event, fetched by ``seq``).
"""

from lightml.log.events import Change

TABLE = "run_tombstone"
DDL = """
CREATE TABLE run_tombstone (
    seq      INTEGER PRIMARY KEY,
    run_id   INTEGER NOT NULL,
    run_name TEXT NOT NULL
)"""
INDEXES = [
    "CREATE INDEX IF NOT EXISTS run_tombstone_run ON run_tombstone(run_id, seq)",
    "CREATE INDEX IF NOT EXISTS run_tombstone_name ON run_tombstone(run_name)",
]


def on_run_deleted(conn, events: list[Change]) -> None:
    conn.executemany("INSERT INTO run_tombstone (seq, run_id, run_name) VALUES (?, ?, ?)",
                     [(e.seq, e.payload["run_id"], e.payload["run_name"]) for e in events])
