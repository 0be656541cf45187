"""The log's own format: every event the library writes matches its documented schema."""

from __future__ import annotations

import sqlite3

import pytest

from lightml.log import events as ev
from lightml.demo import build_demo
from lightml.log.schemas import PAYLOADS, validate_payload
from lightml.log.events import UnknownEventError, decode_changes, upcast
from lightml.log.store import EVENT_COLUMNS


def test_every_event_type_has_a_schema() -> None:
    assert set(PAYLOADS) == set(ev.EVENT_TYPES) == set(ev.CURRENT_VERSION)


def test_demo_log_matches_the_schemas(tmp_path) -> None:
    db = build_demo(tmp_path / "demo")
    with sqlite3.connect(db) as conn:
        rows = conn.execute(f"SELECT {EVENT_COLUMNS} FROM events ORDER BY seq").fetchall()
    seen = set()
    for change in decode_changes([row[:4] for row in rows]):
        validate_payload(change.type, change.payload)
        seen.add(change.type)
    for at in (row[4] for row in rows):
        assert at.endswith("Z") and len(at) == len("2026-01-01T00:00:00.000000Z")
    assert {ev.RUN_CREATED, ev.MODEL_REGISTERED, ev.CHECKPOINT_REGISTERED, ev.METRIC_INSERTED,
            ev.METRIC_OVERWRITTEN, ev.MODEL_DELETED} <= seen
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    assert [r[4] for r in rows] == sorted(r[4] for r in rows)  # time never goes back along the log


def test_unknown_or_newer_events_are_refused() -> None:
    with pytest.raises(UnknownEventError, match="newer"):
        upcast(ev.RUN_CREATED, 99, {})
    with pytest.raises(UnknownEventError, match="unknown event type"):
        upcast("teleported", 1, {})


def test_upcasters_run_in_order(monkeypatch) -> None:
    monkeypatch.setitem(ev.CURRENT_VERSION, ev.SCHEMA_RULE_ADDED, 3)
    monkeypatch.setitem(ev.UPCASTERS, (ev.SCHEMA_RULE_ADDED, 1), lambda p: {**p, "v2": True})
    monkeypatch.setitem(ev.UPCASTERS, (ev.SCHEMA_RULE_ADDED, 2), lambda p: {**p, "v3": p["v2"]})
    row = (1, ev.SCHEMA_RULE_ADDED, 1, '{"family":"f","metric_name":"m"}')
    (change,) = decode_changes([row])
    assert change.payload == {"family": "f", "metric_name": "m", "v2": True, "v3": True}
    assert (change.seq, change.type) == (1, ev.SCHEMA_RULE_ADDED)
