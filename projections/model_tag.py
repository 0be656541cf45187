"""The ``model_tag`` table: a model's tags (``dpo``, ``baseline``...), one row per tag."""

from __future__ import annotations

from lightml.log.events import Change

TABLE = "model_tag"
DDL = """
CREATE TABLE model_tag (
    model_id INTEGER NOT NULL REFERENCES model(id),
    tag      TEXT NOT NULL,
    PRIMARY KEY (model_id, tag)
)"""
INDEXES = ["CREATE INDEX IF NOT EXISTS model_tag_by_tag ON model_tag(tag)"]

_INSERT = "INSERT INTO model_tag (model_id, tag) VALUES (?, ?)"


def on_model_tags_set(conn, events: list[Change]) -> None:
    for event in events:
        p = event.payload
        conn.execute("DELETE FROM model_tag WHERE model_id = ?", (p["model_id"],))
        conn.executemany(_INSERT, [(p["model_id"], tag) for tag in p["tags"]])


def on_model_deleted(conn, events: list[Change]) -> None:
    conn.executemany("DELETE FROM model_tag WHERE model_id = ?", [(e.payload["model_id"],) for e in events])


def on_model_restored(conn, events: list[Change]) -> None:
    for event in events:
        p = event.payload
        conn.executemany(_INSERT, [(p["model_id"], tag) for tag in p["snapshot"].get("tags", ())])
