"""projections.guard: a write to a read table outside LightML's write transaction fails with
the registry's message (what a LightML 1.x client meets); inside one it goes through."""

from __future__ import annotations

import re
import shutil
import sqlite3

import pytest

import projections
from lightml.log import store
from lightml.log.replay import verify
from projections import guard

REFUSED = re.escape(guard.MESSAGE)


def _guarded_tables_with_rows(conn: sqlite3.Connection) -> list[str]:
    return [t for t in projections.READ_TABLES if conn.execute(f'SELECT 1 FROM "{t}" LIMIT 1').fetchone()]


def _one_row_writes(conn: sqlite3.Connection, table: str) -> dict[str, tuple[str, tuple]]:
    """operation -> (SQL, parameters): an UPDATE, a DELETE and an INSERT of the first row of
    ``table`` that, run in that order, leave the table as it was."""
    info = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
    columns = [r[1] for r in info]
    keys = [r[1] for r in sorted(info, key=lambda r: r[5]) if r[5]] or columns
    row = conn.execute(f'SELECT * FROM "{table}" ORDER BY 1 LIMIT 1').fetchone()
    key_values = tuple(row[columns.index(k)] for k in keys)
    where = " AND ".join(f'"{k}" IS ?' for k in keys)
    names = ", ".join(f'"{c}"' for c in columns)
    return {
        "UPDATE": (f'UPDATE "{table}" SET "{columns[-1]}" = "{columns[-1]}" WHERE {where}', key_values),
        "DELETE": (f'DELETE FROM "{table}" WHERE {where}', key_values),
        "INSERT": (f'INSERT INTO "{table}" ({names}) VALUES ({", ".join("?" for _ in columns)})', tuple(row)),
    }


def test_every_read_table_refuses_writes_outside_a_lightml_write_transaction(every_event_registry, tmp_path):
    db = shutil.copy(every_event_registry, tmp_path / "copy.db")
    conn = sqlite3.connect(db, isolation_level=None)  # a plain client, as LightML 1.x opens the file
    tables = _guarded_tables_with_rows(conn)
    assert {"run", "model", "metrics", "detailed_scores", "imported_file", "id_counter"} <= set(tables)
    before = {t: conn.execute(f'SELECT * FROM "{t}"').fetchall() for t in tables}
    for table in tables:
        for sql, parameters in _one_row_writes(conn, table).values():
            with pytest.raises(sqlite3.IntegrityError, match=REFUSED):
                conn.execute(sql, parameters)
    assert {t: conn.execute(f'SELECT * FROM "{t}"').fetchall() for t in tables} == before
    conn.close()


def test_inside_a_lightml_write_transaction_the_same_writes_go_through(every_event_registry, tmp_path):
    db = shutil.copy(every_event_registry, tmp_path / "copy.db")
    conn = store.connect(db)
    tables = _guarded_tables_with_rows(conn)
    store.begin_write(conn)
    conn.execute("PRAGMA defer_foreign_keys = ON")  # a parent row is deleted and put back
    for table in tables:
        for sql, parameters in _one_row_writes(conn, table).values():  # the row ends as it was
            conn.execute(sql, parameters)
    store.commit_write(conn)
    assert conn.execute(f"SELECT count(*) FROM {guard.MARKER_TABLE}").fetchone() == (0,)  # no mark left behind
    conn.close()
    assert verify(db).ok


def test_the_mark_of_a_write_transaction_is_not_seen_by_other_connections(every_event_registry, tmp_path):
    db = shutil.copy(every_event_registry, tmp_path / "copy.db")
    writer = store.connect(db)
    other = sqlite3.connect(db, isolation_level=None, timeout=0)
    store.begin_write(writer)
    assert other.execute(f"SELECT count(*) FROM {guard.MARKER_TABLE}").fetchone() == (0,)
    with pytest.raises(sqlite3.OperationalError):  # and it cannot write meanwhile at all
        other.execute("DELETE FROM registry_schema")
    writer.execute("ROLLBACK")
    with pytest.raises(sqlite3.IntegrityError, match=REFUSED):
        other.execute("DELETE FROM registry_schema")
    writer.close()
    other.close()


def test_fresh_and_rebuilt_tables_are_guarded(bench, every_event_registry):
    changes = bench.log_of(every_event_registry)
    for conn in (bench.fresh(), bench.rebuilt(changes)):
        assert projections.unguarded_tables(conn) == []
        with pytest.raises(sqlite3.IntegrityError, match=REFUSED):
            conn.execute("INSERT INTO registry_schema VALUES ('f', 'm')")
        store.begin_write(conn)
        conn.execute("INSERT INTO registry_schema VALUES ('f', 'm')")
        store.commit_write(conn)
        assert ("f", "m") in bench.rows(conn, "registry_schema")


def test_unguarded_tables_names_a_table_that_lost_a_trigger_and_all_without_the_marker(bench):
    conn = bench.fresh()
    conn.execute(f'DROP TRIGGER "{guard.trigger_name("metrics", "UPDATE")}"')
    assert projections.unguarded_tables(conn) == ["metrics"]
    projections.create_guards(conn)  # puts back only what is missing
    assert projections.unguarded_tables(conn) == []
    conn.execute(f"DROP TABLE {guard.MARKER_TABLE}")
    assert projections.unguarded_tables(conn) == projections.READ_TABLES
