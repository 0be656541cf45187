"""The ``run`` table: one row per run, from ``run_created``."""

from lightml.log.events import Change

TABLE = "run"
DDL = """
CREATE TABLE run (
    id          INTEGER PRIMARY KEY,
    run_name    TEXT NOT NULL UNIQUE,
    description TEXT,
    metadata    TEXT,
    created_at  TEXT
)"""
INDEXES: list[str] = []


def on_run_created(conn, events: list[Change]) -> None:
    conn.executemany(
        "INSERT INTO run (id, run_name, description, metadata, created_at) VALUES (?, ?, ?, ?, ?)",
        [
            (p["run_id"], p["run_name"], p.get("description"), p.get("metadata"), p["created_at"])
            for p in (e.payload for e in events)
        ],
    )


def on_run_deleted(conn, events: list[Change]) -> None:
    conn.executemany("DELETE FROM run WHERE id = ?", [(e.payload["run_id"],) for e in events])


def on_run_restored(conn, events: list[Change]) -> None:
    conn.executemany(
        "INSERT INTO run (id, run_name, description, metadata, created_at) VALUES (?, ?, ?, ?, ?)",
        [
            (r["id"], r["run_name"], r["description"], r["metadata"], r["created_at"])
            for r in (e.payload["snapshot"] for e in events)
        ],
    )
