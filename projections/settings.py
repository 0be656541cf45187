"""The ``settings`` table: every distinct set of eval settings, once.

A set is a flat JSON object (keys sorted, compact), found again by the SHA-256 of its text
(an index on the digest, not on the text: a set may be longer than a PostgreSQL index
entry). Metric events name sets by id (``event_settings``); a set is never removed, so a
deleted and restored value finds its settings again.
"""

import hashlib

from lightml.log.events import Change

TABLE = "settings"
DDL = """
CREATE TABLE settings (
    id       INTEGER PRIMARY KEY,
    digest   TEXT NOT NULL UNIQUE,
    settings TEXT NOT NULL
)"""
INDEXES: list[str] = []
# A row no sound event gives (replay checks the rebuilt table for one).
DAMAGED_ROW = "CASE WHEN json_valid(settings) THEN json_type(settings) <> 'object' ELSE 1 END"


def digest(text: str) -> str:
    """What a set is looked up by: the SHA-256 of its canonical text."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def on_settings_recorded(conn, events: list[Change]) -> None:
    conn.executemany(
        "INSERT INTO settings (id, digest, settings) VALUES (?, ?, ?)",
        [(e.payload["settings_id"], digest(e.payload["settings"]), e.payload["settings"]) for e in events],
    )
