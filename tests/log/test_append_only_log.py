"""The event log is append-only: UPDATE, DELETE and REPLACE of an event are refused, in a live
registry and in a replayed one; appending stays allowed."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lightml import LightMLHandle
from lightml.log.replay import replay


RUN = "eval-run"
MODEL = "org/model-7b"


@pytest.fixture
def small_registry(tmp_path) -> Path:
    db = tmp_path / "main.db"
    with LightMLHandle(db, RUN) as h:
        h.register_model(MODEL, "hub/model-7b")
        h.log_model_metric(MODEL, "f", "acc", 0.5)
        h.log_model_metric(MODEL, "f", "acc", 0.7, force=True)
    return db


@pytest.mark.parametrize("statement", [
    "UPDATE events SET payload = '{}' WHERE seq = 1",
    "UPDATE events SET at = '1999-01-01T00:00:00.000000Z'",
    "UPDATE OR REPLACE events SET seq = 1 WHERE seq = 2",
    "DELETE FROM events WHERE seq = (SELECT max(seq) FROM events)",
    "DELETE FROM events",
    "INSERT INTO events (seq, type, version, payload, at, origin) "
    "SELECT 1, type, version, payload, at, origin FROM events WHERE seq = 2 "
    "ON CONFLICT(seq) DO UPDATE SET payload = excluded.payload",
])
def test_update_and_delete_on_events_are_rejected(small_registry, statement, dump_tables):
    before = dump_tables(small_registry, ["events"])
    conn = sqlite3.connect(small_registry, isolation_level=None)
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            conn.execute(statement)
    finally:
        conn.close()
    assert dump_tables(small_registry, ["events"]) == before


@pytest.mark.parametrize("statement", [
    "INSERT OR REPLACE INTO events (seq, type, version, payload, at, origin) "
    "VALUES (1, 'schema_rule_added', 1, '{\"family\":\"x\",\"metric_name\":\"y\"}', '2000-01-01T00:00:00.000000Z', 'api')",
    "REPLACE INTO events (seq, type, version, payload, at, origin) "
    "SELECT seq, type, version, '{}', at, origin FROM events WHERE seq = 1",
])
def test_replace_cannot_rewrite_an_existing_event(small_registry, statement, dump_tables):
    """REPLACE deletes the conflicting row without firing DELETE triggers (recursive_triggers
    is off by default): the log must refuse it too, or an event could be rewritten."""
    before = dump_tables(small_registry, ["events"])
    conn = sqlite3.connect(small_registry, isolation_level=None)
    try:
        with pytest.raises(sqlite3.DatabaseError):
            conn.execute(statement)
    finally:
        conn.close()
    assert dump_tables(small_registry, ["events"]) == before


def test_replayed_registry_log_is_append_only_too(small_registry, tmp_path):
    out = tmp_path / "replayed.db"
    replay(small_registry, out=out)
    conn = sqlite3.connect(out, isolation_level=None)
    try:
        for statement in ("UPDATE events SET type = 'x'", "DELETE FROM events",
                          "REPLACE INTO events SELECT * FROM events WHERE seq = 1"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                conn.execute(statement)
        # Appending stays allowed: that is how the log grows.
        conn.execute("INSERT INTO events (type, version, payload, at, origin) "
                     "VALUES ('schema_rule_added', 1, '{\"family\":\"f\",\"metric_name\":\"m\"}', "
                     "'2999-01-01T00:00:00.000000Z', 'api')")
    finally:
        conn.close()
