"""The ``model_param`` table: a model's parameters (``lr``, ``beta``, ``dataset``...), one row
per key, as ``set_params`` (or ``register_model(params=...)``) gave them.

``value`` is the parameter as JSON (exact: an int stays an int), ``number`` the same as a
float for a number (NULL for text and true/false), ``text`` the string of a text value: the
filter expressions (``lightml.read.filters``) compare numbers with numbers and text with text.
"""

from __future__ import annotations

import json

from lightml.log.events import Change

TABLE = "model_param"
DDL = """
CREATE TABLE model_param (
    model_id INTEGER NOT NULL REFERENCES model(id),
    key      TEXT NOT NULL,
    value    TEXT NOT NULL,
    number   REAL,
    text     TEXT,
    PRIMARY KEY (model_id, key)
)"""
INDEXES = ["CREATE INDEX IF NOT EXISTS model_param_by_key ON model_param(key, number)"]

_INSERT = "INSERT INTO model_param (model_id, key, value, number, text) VALUES (?, ?, ?, ?, ?)"


def rows(model_id: int, params_text: str | None) -> list[tuple]:
    """The rows of a model's parameters, given as canonical JSON text (None: none)."""
    if params_text is None:
        return []
    found = []
    for key, value in json.loads(params_text).items():
        number = float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None
        found.append((model_id, key, json.dumps(value), number, value if isinstance(value, str) else None))
    return found


def on_model_params_set(conn, events: list[Change]) -> None:
    for event in events:
        p = event.payload
        conn.execute("DELETE FROM model_param WHERE model_id = ?", (p["model_id"],))
        conn.executemany(_INSERT, rows(p["model_id"], p["params"]))


def on_model_deleted(conn, events: list[Change]) -> None:
    conn.executemany("DELETE FROM model_param WHERE model_id = ?", [(e.payload["model_id"],) for e in events])


def on_model_restored(conn, events: list[Change]) -> None:
    for event in events:
        p = event.payload
        conn.executemany(_INSERT, rows(p["model_id"], p["snapshot"].get("params")))
