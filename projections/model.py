"""The ``model`` table: registrations, deletes (children keep their row, unlinked), restores."""

from lightml.log.events import Change

TABLE = "model"
DDL = """
CREATE TABLE model (
    id         INTEGER PRIMARY KEY,
    model_name TEXT NOT NULL,
    path       TEXT,
    parent_id  INTEGER REFERENCES model(id),
    notes      TEXT,
    hidden     INTEGER NOT NULL DEFAULT 0,
    run_id     INTEGER REFERENCES run(id),
    UNIQUE (model_name, run_id)
)"""
INDEXES = ["CREATE INDEX IF NOT EXISTS model_parent ON model(parent_id)"]

_INSERT = (
    "INSERT INTO model (id, model_name, path, parent_id, notes, hidden, run_id) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)


def on_model_registered(conn, events: list[Change]) -> None:
    conn.executemany(
        _INSERT,
        [
            (p["model_id"], p["model_name"], p["path"], p["parent_id"], p.get("notes"),
             p.get("hidden", 0), p["run_id"])
            for p in (e.payload for e in events)
        ],
    )


def on_model_deleted(conn, events: list[Change]) -> None:
    for event in events:
        p = event.payload
        conn.executemany(
            "UPDATE model SET parent_id = NULL WHERE id = ?",
            [(child,) for child in p["snapshot"]["children"]],
        )
        conn.execute("DELETE FROM model WHERE id = ?", (p["model_id"],))


def on_model_restored(conn, events: list[Change]) -> None:
    for event in events:
        p = event.payload
        row = p["snapshot"]["model"]
        conn.execute(
            _INSERT,
            (row["id"], row["model_name"], row["path"], row["parent_id"], row["notes"],
             row["hidden"], row["run_id"]),
        )
        conn.executemany(
            "UPDATE model SET parent_id = ? WHERE id = ?",
            [(p["model_id"], child) for child in p["relinked_children"]],
        )


def on_model_notes_set(conn, events: list[Change]) -> None:
    conn.executemany("UPDATE model SET notes = ? WHERE id = ?",
                     [(e.payload["notes"], e.payload["model_id"]) for e in events])


def on_model_renamed(conn, events: list[Change]) -> None:
    conn.executemany("UPDATE model SET model_name = ? WHERE id = ?",
                     [(e.payload["model_name"], e.payload["model_id"]) for e in events])


def on_model_hidden_set(conn, events: list[Change]) -> None:
    conn.executemany("UPDATE model SET hidden = ? WHERE id = ?",
                     [(e.payload["hidden"], e.payload["model_id"]) for e in events])


def on_model_reparented(conn, events: list[Change]) -> None:
    conn.executemany("UPDATE model SET parent_id = ? WHERE id = ?",
                     [(e.payload["parent_id"], e.payload["model_id"]) for e in events])
