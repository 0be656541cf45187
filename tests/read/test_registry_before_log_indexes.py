"""A registry written before the log's indexes existed (``projections.LOG_INDEXES``: the
tombstones, the events by model, arrivals and reparents) gets them from its own log on
open, and answers restore, the relink rule, prune and the histories as a new one does;
one that cannot be written answers the same from indexes built in memory."""

from __future__ import annotations

import shutil
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

import pytest

import projections
from lightml import LightMLHandle
from lightml.errors import NotARegistryError
from lightml.log import opening
from lightml.log.replay import verify
from lightml.read import queries, resolve
from lightml.write import lifecycle


def _registry(db: Path) -> None:
    """base <- sft <- dpo in run r; sft deleted (dpo unlinked); an empty model pruned with its run;
    a fresh model with no metrics yet."""
    with LightMLHandle(db, "r") as h:
        h.register_model("base", "org/base")
        h.register_model("sft", "org/sft", parent_name="base")
        h.register_model("dpo", "org/dpo", parent_name="sft")
        for name in ("base", "sft", "dpo"):
            h.log_model_metric(name, "f", "acc", 0.5)
        h.log_model_metric("sft", "f", "acc", 0.6, force=True)
        h.set_notes("sft", "before the delete")
        h.delete_model("sft")
    with LightMLHandle(db, "scratch") as h:
        h.register_model("empty", "org/empty")
    with LightMLHandle(db) as h:
        assert h.prune(grace_seconds=0).runs == ["scratch"]
    with LightMLHandle(db, "r") as h:
        h.register_model("fresh", "org/fresh")  # no metrics yet: prune keeps it for its grace period


def _as_written_before_the_log_indexes(source: Path, db: Path) -> None:
    """A copy of ``source`` as the previous build wrote it: the same log and tables, without
    the log's indexes (their indexes and guard triggers go with them)."""
    shutil.copy(source, db)
    conn = sqlite3.connect(db)
    try:
        for table in projections.LOG_INDEXES:
            conn.execute(f"DROP TABLE {table}")
        conn.commit()
        left = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE sql LIKE '%model_tombstone%' "
                                                 "OR sql LIKE '%model_event%' OR sql LIKE '%unlinked_child%'")}
        assert left == set()
    finally:
        conn.close()


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        return {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def _lineage(db: Path) -> dict[str, tuple]:
    with sqlite3.connect(db) as conn:
        return {name: (mid, parent, run) for name, mid, parent, run in conn.execute(
            "SELECT m.model_name, m.id, m.parent_id, r.run_name FROM model m LEFT JOIN run r ON r.id = m.run_id")}


@pytest.fixture()
def new_and_old(tmp_path: Path) -> tuple[Path, Path]:
    new, old = tmp_path / "new.db", tmp_path / "old.db"
    _registry(new)
    _as_written_before_the_log_indexes(new, old)
    return new, old


def test_an_older_registry_gets_the_log_indexes_on_open_and_restores_the_same(new_and_old) -> None:
    new, old = new_and_old
    assert not set(projections.LOG_INDEXES) & _tables(old)
    for db in (new, old):
        with LightMLHandle(db, "r") as h:
            h.restore_model("sft")  # dpo is re-linked to it
            h.restore_model("empty", run_name="scratch")  # its pruned run comes back with it
    assert set(projections.LOG_INDEXES) <= _tables(old)
    assert _lineage(old) == _lineage(new)
    assert _lineage(old)["dpo"][1] == _lineage(old)["sft"][0]
    assert _lineage(old)["empty"][2] == "scratch"
    assert verify(old).ok


def _answers(conn: sqlite3.Connection) -> dict[str, object]:
    """What the read side and the restore decisions ask of the log's indexes."""
    run = resolve.run_id(conn, "r")
    ids = dict(conn.execute("SELECT model_name, id FROM model"))
    sft = resolve.latest_deletes(conn, "sft", run)[run][1]["model_id"]
    far_future = datetime(2100, 1, 1, tzinfo=timezone.utc)
    return {
        "sft history": [(e["seq"], e["type"], e["what"]) for e in queries.model_events(conn, "sft", run, "r")],
        "sft acc": [(e["seq"], e["action"], e["value"]) for e in queries.metric_history(
            conn, queries.history_metric_ids(conn, "sft", "f", "acc", None, run, "r"))],
        "empty deleted from": sorted(resolve.latest_deletes(conn, "empty", None)),
        "dpo relinkable": lifecycle.relinkable_by_a_restore(conn, ids["dpo"]),
        "sft relinkable": lifecycle.relinkable_by_a_restore(conn, sft),
        "prune now": lifecycle.prune_candidates(conn, datetime.now(timezone.utc), 3600).too_new,
        "prune later": lifecycle.prune_candidates(conn, far_future, 3600).models,
    }


def test_an_older_registry_that_cannot_be_written_answers_from_indexes_built_in_memory(
        new_and_old, monkeypatch) -> None:
    new, old = new_and_old
    conn = opening.open_registry_readonly(new)
    try:
        expected = _answers(conn)
    finally:
        conn.close()
    assert expected["sft history"][-1][1] == "model_deleted" and len(expected["sft acc"]) == 3
    assert expected["empty deleted from"] == [2] and expected["dpo relinkable"] is True
    assert expected["prune now"] == [("fresh", "r")] and [m[1:] for m in expected["prune later"]] == [("fresh", "r")]

    def read_only_media(path, **_):  # what adding the tables raises where the file cannot be written
        raise NotARegistryError(f"{path}: attempt to write a readonly database")

    monkeypatch.setattr(opening, "add_missing_read_tables", read_only_media)
    conn = opening.open_registry_readonly(old)
    try:
        assert _answers(conn) == expected
    finally:
        conn.close()
    assert not set(projections.LOG_INDEXES) & _tables(old)  # nothing was written to the file


def test_a_demo_registry_of_the_earlier_build_is_still_known_as_a_demo(tmp_path: Path) -> None:
    from lightml.demo import build_demo
    from lightml.errors import ConflictError

    db = build_demo(tmp_path / "demo")  # it has a deleted model: known from its tombstone
    _as_written_before_the_log_indexes(db, tmp_path / "old.db")
    shutil.move(tmp_path / "old.db", db)
    assert build_demo(tmp_path / "demo") == db  # rebuilt without --overwrite
    with LightMLHandle(db, "sft-dpo-2026-11") as h:
        h.register_model("my-own-model", "org/mine")
    _as_written_before_the_log_indexes(db, tmp_path / "old.db")
    shutil.move(tmp_path / "old.db", db)
    with pytest.raises(ConflictError, match="not a demo registry"):
        build_demo(tmp_path / "demo")
