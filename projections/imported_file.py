"""The ``imported_file`` table: what ``scan`` imported, so that unchanged files are skipped.

One row per file path (the latest import). A model's rows go when it is deleted, so a scan
after a delete imports its files again.
"""

from lightml.log.events import Change

TABLE = "imported_file"
DDL = """
CREATE TABLE imported_file (
    path     TEXT PRIMARY KEY,
    sha256   TEXT NOT NULL,
    size     INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    model_id INTEGER NOT NULL,
    seq      INTEGER NOT NULL
)"""
INDEXES = ["CREATE INDEX IF NOT EXISTS imported_file_model ON imported_file(model_id)"]


def on_file_imported(conn, events: list[Change]) -> None:
    conn.executemany(
        "INSERT INTO imported_file (path, sha256, size, mtime_ns, model_id, seq) VALUES (?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (path) DO UPDATE SET sha256 = excluded.sha256, size = excluded.size, "
        "mtime_ns = excluded.mtime_ns, model_id = excluded.model_id, seq = excluded.seq",
        [(p["path"], p["sha256"], p["size"], p["mtime_ns"], p["model_id"], e.seq)
         for e, p in ((e, e.payload) for e in events)],
    )


def on_model_deleted(conn, events: list[Change]) -> None:
    conn.executemany("DELETE FROM imported_file WHERE model_id = ?", [(e.payload["model_id"],) for e in events])
