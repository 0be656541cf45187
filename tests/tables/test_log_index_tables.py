"""The log's indexes (``projections.LOG_INDEXES``): the rows each event type makes in each
of them, and the same tables whether applied event by event on a live file or rebuilt."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

import projections
from lightml import LightMLHandle
from lightml.log import events as ev
from lightml.log.events import Change
from lightml.log.replay import replay, verify
from lightml.log.schemas import payload_problem

_MODEL_ROW = {"id": 2, "model_name": "sft", "path": "org/sft", "parent_id": 1, "notes": None, "hidden": 0, "run_id": 1}
_SNAPSHOT = {"model": _MODEL_ROW, "checkpoints": [], "metrics": [], "detailed_scores": [], "children": [3, 4]}
_RUN_ROW = {"id": 5, "run_name": "scratch", "description": None, "metadata": None, "created_at": None}

# One event of every type, as the library writes them (each checked against its schema).
PAYLOADS: dict[str, dict[str, Any]] = {
    ev.RUN_CREATED: {"run_id": 1, "run_name": "r", "created_at": "2026-01-01T00:00:00Z"},
    ev.MODEL_REGISTERED: {"model_id": 2, "model_name": "sft", "path": "org/sft", "parent_id": 1, "run_id": 1},
    ev.CHECKPOINT_REGISTERED: {"checkpoint_id": 7, "model_id": 2, "step": 100, "path": None, "created_at": None},
    ev.METRIC_INSERTED: {"model_id": 2, "checkpoint_id": None, "step": None,
                         "metrics": [{"metric_id": 8, "family": "f", "metric_name": "m", "value": 0.5},
                                     {"metric_id": 9, "family": "f", "metric_name": "n", "value": 0.25}]},
    ev.METRIC_OVERWRITTEN: {"model_id": 2, "checkpoint_id": None, "step": None,
                            "metrics": [{"metric_id": 8, "family": "f", "metric_name": "m", "value": 0.75,
                                         "previous_value": 0.5}]},
    ev.MODEL_DELETED: {"model_id": 2, "model_name": "sft", "run_id": 1, "snapshot": _SNAPSHOT},
    ev.MODEL_RESTORED: {"model_id": 2, "deleted_seq": 6, "snapshot": _SNAPSHOT, "relinked_children": [3]},
    ev.SCHEMA_RULE_ADDED: {"family": "f", "metric_name": "m"},
    ev.MODEL_NOTES_SET: {"model_id": 2, "notes": "good", "previous": None},
    ev.MODEL_RENAMED: {"model_id": 2, "run_id": 1, "model_name": "sft-v2", "previous_name": "sft"},
    ev.MODEL_HIDDEN_SET: {"model_id": 2, "hidden": 1, "previous": 0},
    ev.MODEL_REPARENTED: {"model_id": 3, "parent_id": None, "previous_parent_id": 2},
    ev.RUN_DELETED: {"run_id": 5, "run_name": "scratch", "snapshot": _RUN_ROW},
    ev.RUN_RESTORED: {"run_id": 5, "deleted_seq": 40, "snapshot": _RUN_ROW},
    ev.FILE_IMPORTED: {"path": "/evals/results.json", "sha256": "ab" * 32, "size": 10, "mtime_ns": 1, "model_id": 2},
    ev.SETTINGS_RECORDED: {"settings_id": 1, "settings": '{"num_fewshot":5}'},
    ev.MODEL_PARAMS_SET: {"model_id": 2, "params": '{"lr":3e-05}', "previous": None},
    ev.MODEL_TAGS_SET: {"model_id": 2, "tags": ["dpo"], "previous": []},
    ev.DASHBOARD_ITEM_SAVED: {"item_id": 1, "kind": "view", "name": "sft runs", "position": 0,
                              "spec": '{"where":"tag:sft"}', "previous_name": None, "previous_spec": None},
    ev.DASHBOARD_ITEM_REMOVED: {"item_id": 1, "kind": "view", "name": "sft runs"},
    ev.DASHBOARD_ITEM_RESTORED: {"item_id": 1, "kind": "view", "name": "sft runs", "position": 0},
    ev.DASHBOARD_ITEMS_REORDERED: {"kind": "view", "item_ids": [1], "previous": [1]},
}

SEQ = 50

# The rows one event of each type makes, per table (a type not named makes none there).
EXPECTED: dict[str, dict[str, list[tuple]]] = {
    "model_event": {t: [(SEQ, PAYLOADS[t]["model_id"])] for t in (
        ev.MODEL_REGISTERED, ev.CHECKPOINT_REGISTERED, ev.METRIC_INSERTED, ev.METRIC_OVERWRITTEN, ev.MODEL_DELETED,
        ev.MODEL_RESTORED, ev.MODEL_NOTES_SET, ev.MODEL_RENAMED, ev.MODEL_HIDDEN_SET, ev.MODEL_REPARENTED,
        ev.FILE_IMPORTED, ev.MODEL_PARAMS_SET, ev.MODEL_TAGS_SET)},
    "model_tombstone": {ev.MODEL_DELETED: [(SEQ, 2, "sft", 1, 1)]},  # seq, model, name, run, former parent
    "unlinked_child": {ev.MODEL_DELETED: [(3, SEQ, 2), (4, SEQ, 2)]},  # child, seq, the deleted parent
    "run_tombstone": {ev.RUN_DELETED: [(SEQ, 5, "scratch")]},
    "model_arrival": {ev.MODEL_REGISTERED: [(2, SEQ)], ev.MODEL_RESTORED: [(2, SEQ)]},
    "model_reparent": {ev.MODEL_REPARENTED: [(3, SEQ)]},
}


def _rows_made(events: list[Change], table: str) -> list[tuple]:
    conn = sqlite3.connect(":memory:")
    try:
        conn.execute(next(m.DDL for m in projections.MODULES if m.TABLE == table))
        projections.build_tables(conn, [events], [table])
        return conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
    finally:
        conn.close()


def test_the_expectations_cover_every_event_type_and_log_index() -> None:
    assert set(PAYLOADS) == set(ev.EVENT_TYPES)
    assert set(EXPECTED) == set(projections.LOG_INDEXES)
    for event_type, payload in PAYLOADS.items():
        assert payload_problem(event_type, payload) is None, event_type


@pytest.mark.parametrize("event_type", ev.EVENT_TYPES)
def test_rows_each_event_type_makes(event_type: str) -> None:
    made = {table: _rows_made([Change(SEQ, event_type, PAYLOADS[event_type])], table)
            for table in projections.LOG_INDEXES}
    assert made == {table: EXPECTED[table].get(event_type, []) for table in projections.LOG_INDEXES}


def test_a_child_named_twice_in_one_snapshot_is_one_row() -> None:
    payload = {**PAYLOADS[ev.MODEL_DELETED], "snapshot": {**_SNAPSHOT, "children": [3, 3]}}
    assert _rows_made([Change(SEQ, ev.MODEL_DELETED, payload)], "unlinked_child") == [(3, SEQ, 2)]


def test_tombstones_are_kept_after_a_restore() -> None:
    log = [Change(10, ev.MODEL_DELETED, PAYLOADS[ev.MODEL_DELETED]),
           Change(11, ev.MODEL_RESTORED, {**PAYLOADS[ev.MODEL_RESTORED], "deleted_seq": 10}),
           Change(12, ev.MODEL_DELETED, PAYLOADS[ev.MODEL_DELETED])]
    assert _rows_made(log, "model_tombstone") == [(10, 2, "sft", 1, 1), (12, 2, "sft", 1, 1)]
    assert _rows_made(log, "unlinked_child") == [(3, 10, 2), (3, 12, 2), (4, 10, 2), (4, 12, 2)]
    assert _rows_made(log, "model_arrival") == [(2, 11)]


# -- on a live file -----------------------------------------------------------------------


def _log_index_rows(db: Path) -> dict[str, list[tuple]]:
    with sqlite3.connect(db) as conn:
        return {table: conn.execute(f"SELECT * FROM {table} ORDER BY 1, 2").fetchall()
                for table in projections.LOG_INDEXES}


def _lifecycle_registry(db: Path) -> None:
    """base <- sft <- dpo, with every event type the handle writes: edits, a delete and a
    restore, a prune that removes a run, and the restore that brings it back."""
    with LightMLHandle(db, "r") as h:
        h.register_model("base", "org/base")
        h.register_model("sft", "org/sft", parent_name="base")
        h.register_model("dpo", "org/dpo", parent_name="sft")
        h.log_model_metric("dpo", "f", "acc", 0.7)  # not empty: prune keeps it
        h.register_checkpoint("sft", 100, "org/sft-100")
        h.log_model_metric("sft", "f", "acc", 0.5)
        h.log_model_metric("sft", "f", "acc", 0.6, force=True)
        h.add_schema_rule("f", "acc")
        h.set_notes("sft", "good")
        h.set_hidden("dpo")
        h.delete_model("sft")  # dpo is unlinked
        h.set_parent("dpo", None)
        h.restore_model("sft")
        h.rename_model("sft", "sft-v2")
    with LightMLHandle(db, "scratch") as h:
        h.register_model("empty", "org/empty")
    with LightMLHandle(db) as h:
        assert h.prune(grace_seconds=0).runs == ["scratch"]
        h.restore_model("empty", run_name="scratch")


def test_a_live_registry_records_its_lifecycle_in_the_log_indexes(tmp_path: Path) -> None:
    db = tmp_path / "reg.db"
    _lifecycle_registry(db)
    with sqlite3.connect(db) as conn:
        ids = dict(conn.execute("SELECT model_name, id FROM model"))
        seqs = {t: [s for (s,) in conn.execute("SELECT seq FROM events WHERE type = ? ORDER BY seq", (t,))]
                for t in ev.EVENT_TYPES}
        about = {(s, m) for s, m in conn.execute(
            "SELECT seq, json_extract(payload, '$.model_id') FROM events WHERE json_extract(payload, '$.model_id') IS NOT NULL")}
    rows = _log_index_rows(db)
    sft, dpo, empty = ids["sft-v2"], ids["dpo"], ids["empty"]
    (sft_deleted, empty_deleted) = seqs[ev.MODEL_DELETED]
    assert set(rows["model_event"]) == about and len(rows["model_event"]) == len(about)
    assert rows["model_tombstone"] == [(sft_deleted, sft, "sft", 1, ids["base"]), (empty_deleted, empty, "empty", 2, None)]
    assert rows["unlinked_child"] == [(dpo, sft_deleted, sft)]
    assert rows["run_tombstone"] == [(seqs[ev.RUN_DELETED][0], 2, "scratch")]
    assert rows["model_reparent"] == [(dpo, seqs[ev.MODEL_REPARENTED][0])]
    assert sorted(rows["model_arrival"]) == sorted(
        [(m, s) for s, m in about if s in seqs[ev.MODEL_REGISTERED] + seqs[ev.MODEL_RESTORED]])
    assert len(rows["model_arrival"]) == len(seqs[ev.MODEL_REGISTERED]) + len(seqs[ev.MODEL_RESTORED])


def test_applied_on_a_live_file_equals_rebuilt_from_the_log(tmp_path: Path) -> None:
    db = tmp_path / "reg.db"
    _lifecycle_registry(db)
    live = _log_index_rows(db)
    assert all(live.values())  # every index has rows to compare
    replay(db)  # in place: every read table rebuilt from the log
    assert _log_index_rows(db) == live
    assert verify(db).ok
