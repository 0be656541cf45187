"""LightML 1.x clients writing behind the log: every statement they issue fails with the way out
(``lightml migrate``) and leaves nothing, a registry from before the guard gets it when a
writer opens it, and a replay in place refuses rows the log does not explain unless forced.
CLI commands run in this process (``cli``)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from lightml import LightMLHandle
from lightml.errors import ConflictError
from lightml.log.replay import replay, verify


RUN = "r"
# The statements a LightML 1.x client issues (1.4.1: metrics.py, registry.py, checkpoints.py,
# database.py), with the parameters it would bind.
OLD_CLIENT_SQL = {
    "insert metric": ("INSERT INTO metrics (model_id, checkpoint_id, family, metric_name, value) VALUES (?, ?, ?, ?, ?)",
                      (1, None, "fam", "sneaky", 0.9)),
    "update metric": ("UPDATE metrics SET value = ? WHERE id = ?", (0.99, 1)),
    "replace scores": ("INSERT OR REPLACE INTO detailed_scores (metric_id, scores, n_samples) VALUES (?, ?, ?)",
                       (1, "[1, 1]", 2)),
    "insert run": ("INSERT OR IGNORE INTO run (run_name) VALUES (?)", ("old-client",)),
    "insert model": ("INSERT OR IGNORE INTO model (model_name, path, parent_id, run_id) VALUES (?, ?, ?, ?)",
                     ("old", "hub/old", None, 1)),
    "insert checkpoint": ("INSERT INTO checkpoint (model_id, step, path, created_at) VALUES (?, ?, ?, ?)",
                          (1, 200, "hub/m/ck200", "2024-01-02T00:00:00")),
    "insert schema rule": ("INSERT OR IGNORE INTO registry_schema (family, metric_name) VALUES (?, ?)",
                           ("fam", "acc")),
    "delete model": ("DELETE FROM model WHERE id = ?", (1,)),
    "delete model by name": ("DELETE FROM model WHERE model_name = ?", ("child",)),
    "rename model": ("UPDATE model SET model_name = ? WHERE model_name = ?", ("renamed", "m")),
    "set notes": ("UPDATE model SET notes = ? WHERE model_name = ?", ("hello", "m")),
    "delete run": ("DELETE FROM run WHERE run_name = ?", ("r",)),
}


@pytest.mark.parametrize("statement", sorted(OLD_CLIENT_SQL))
@pytest.mark.parametrize("kind", ["new", "migrated"])
def test_old_client_statements_fail_with_the_way_out_and_leave_nothing(tmp_path, kind, statement, dump,
                                                                       make_small_registry, make_migrated_registry):
    db = tmp_path / "reg.db"
    (make_small_registry if kind == "new" else make_migrated_registry)(db)
    before = dump(db)
    sql, params = OLD_CLIENT_SQL[statement]
    with contextlib.closing(sqlite3.connect(db)) as conn:  # as LightML 1.x connects
        conn.execute("PRAGMA foreign_keys = ON")
        with pytest.raises(sqlite3.DatabaseError) as info:
            conn.execute(sql, params)
            conn.commit()
    message = str(info.value)
    assert "lightml migrate" in message and "upgrade light-ml-registry" in message and "1.x" in message
    assert dump(db) == before
    assert verify(db).ok


def _drop_guards(db: Path) -> None:
    """Make the registry look like one written before the guard existed."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                    "AND name LIKE 'lightml_guard_%'").fetchall():
            conn.execute(f'DROP TRIGGER "{name}"')
        conn.execute("DROP TABLE lightml_writing")
        conn.commit()


def _old_client_insert(db: Path, name: str = "sneaky") -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("INSERT INTO metrics (model_id, checkpoint_id, family, metric_name, value) "
                     "VALUES (1, NULL, 'fam', ?, 0.9)", (name,))
        conn.commit()


@pytest.mark.tampered  # a 1.x client's row stays behind the log: the situation this test sets up
def test_registry_from_before_the_guard_gets_it_when_a_writer_opens_it(tmp_path, make_small_registry, cli):
    db = make_small_registry(tmp_path / "reg.db")
    _drop_guards(db)
    assert cli("list", "--db", str(db)).returncode == 0  # a read-only command does not add it ...
    _old_client_insert(db, "before")  # ... so a 1.x client still could (this is the situation)
    LightMLHandle(db, RUN).close()  # a writer's open adds the guard
    with pytest.raises(sqlite3.DatabaseError, match="lightml migrate"):
        _old_client_insert(db, "after")
    with LightMLHandle(db, RUN) as h:
        assert "after" not in [r["metric"] for r in h.search("m", "fam")]


def test_replay_in_place_refuses_rows_the_log_does_not_explain_unless_forced(tmp_path, make_small_registry, dump, cli):
    db = make_small_registry(tmp_path / "reg.db")
    assert replay(db).events_applied > 0  # tables the log explains: no force needed
    _drop_guards(db)  # an unguarded registry, written to by a 1.x client
    _old_client_insert(db)
    before = dump(db)
    with pytest.raises(ConflictError, match="sneaky") as info:
        replay(db)
    assert "metrics" in str(info.value) and "force" in str(info.value)
    assert dump(db) == before
    cli_result = cli("replay", "--db", str(db))
    assert cli_result.returncode == 2, cli_result
    assert len(cli_result.stderr.strip().splitlines()) == 1 and "sneaky" in cli_result.stderr
    assert dump(db) == before
    forced = cli("replay", "--db", str(db), "--force")
    assert forced.returncode == 0, forced.stderr
    assert "sneaky" not in repr(dump(db)["metrics"])
    assert verify(db).ok
    with pytest.raises(sqlite3.DatabaseError, match="lightml migrate"):  # the rebuild brought the guard
        _old_client_insert(db)
    with LightMLHandle(db, RUN) as h:  # and LightML itself still writes every kind of row
        h.add_schema_rules([("fam", "acc"), ("fam", "f1"), ("fam", "new")])
        h.log_model_metric("m", "fam", "acc", 0.7, force=True, scores=[1, 1])
        h.set_notes("m", "base model")
        h.rename_model("child", "kid")
        h.delete_model("kid")
        h.restore_model("kid")
        h.register_checkpoint("kid", 5, "hub/child/5")
    assert verify(db).ok
