"""The ``checkpoint`` table: registrations, and the rows a model delete removes or a restore returns."""

from lightml.log.events import Change

TABLE = "checkpoint"
DDL = """
CREATE TABLE checkpoint (
    id         INTEGER PRIMARY KEY,
    model_id   INTEGER NOT NULL REFERENCES model(id),
    step       INTEGER,
    path       TEXT,
    created_at TEXT
)"""
INDEXES = ["CREATE INDEX IF NOT EXISTS checkpoint_model_step ON checkpoint(model_id, step)"]

_INSERT = "INSERT INTO checkpoint (id, model_id, step, path, created_at) VALUES (?, ?, ?, ?, ?)"


def on_checkpoint_registered(conn, events: list[Change]) -> None:
    conn.executemany(
        _INSERT,
        [
            (p["checkpoint_id"], p["model_id"], p["step"], p["path"], p["created_at"])
            for p in (e.payload for e in events)
        ],
    )


def on_model_deleted(conn, events: list[Change]) -> None:
    for event in events:
        conn.executemany(
            "DELETE FROM checkpoint WHERE id = ?",
            [(c["id"],) for c in event.payload["snapshot"]["checkpoints"]],
        )


def on_model_restored(conn, events: list[Change]) -> None:
    for event in events:
        conn.executemany(
            _INSERT,
            [
                (c["id"], c["model_id"], c["step"], c["path"], c["created_at"])
                for c in event.payload["snapshot"]["checkpoints"]
            ],
        )
