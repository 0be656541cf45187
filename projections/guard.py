"""The guard on the read tables: only LightML's own write transactions may change them.

A LightML 1.x client (or any tool) that inserts, updates or deletes rows of a read table
directly bypasses the log: ``verify`` then fails and ``replay`` would drop its rows. Each
read table has BEFORE INSERT/UPDATE/DELETE triggers that abort unless the marker table
holds a row; LightML's write transactions insert that row right after ``BEGIN IMMEDIATE``
and delete it just before ``COMMIT`` (``lightml.log.store.begin_write``/``commit_write``), so
no other connection ever sees it. A trigger costs well under a microsecond per row; a
pragma-based check or a Python function cost more, and a function would give old clients
a useless "no such function" instead of the way out.
"""

from __future__ import annotations

import sqlite3

from lightml.log.engine import dialect_of

MARKER_TABLE = "lightml_writing"
MARKER_DDL = f"CREATE TABLE IF NOT EXISTS main.{MARKER_TABLE} (token INTEGER PRIMARY KEY)"
MESSAGE = ("this is a LightML 2 registry (made by LightML 2, or migrated with lightml migrate): a LightML 1.x "
           "client cannot write to it; upgrade light-ml-registry (pip install -U light-ml-registry)")
_OPERATIONS = ("INSERT", "UPDATE", "DELETE")


def trigger_name(table: str, operation: str) -> str:
    return f"lightml_guard_{table}_{operation.lower()}"


def _trigger_ddl(table: str, operation: str) -> str:
    return (f'CREATE TRIGGER IF NOT EXISTS main."{trigger_name(table, operation)}" BEFORE {operation} '
            f'ON "{table}" WHEN NOT EXISTS (SELECT 1 FROM {MARKER_TABLE}) '
            f"BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END")


# On PostgreSQL the mark is a transaction-local setting (``SET LOCAL lightml.writing = 'on'``,
# see lightml/log/postgres_engine.py), and one trigger function serves every table, once per
# statement (a trigger per row cost a bulk log about half its time there).
PG_SETTING = "lightml.writing"
_PG_FUNCTION = (
    "CREATE OR REPLACE FUNCTION lightml_guard() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    f"IF coalesce(current_setting('{PG_SETTING}', true), '') <> 'on' THEN RAISE EXCEPTION '{MESSAGE}'; END IF; "
    "RETURN NULL; END $$")  # (a statement trigger: the mark is the transaction's, not a row's)


def create_guards(conn: sqlite3.Connection, tables: list[str]) -> None:
    """The marker table and the guard triggers of ``tables`` (those missing)."""
    if dialect_of(conn) == "postgresql":
        conn.execute_native(_PG_FUNCTION)
        present = _pg_triggers(conn)
        for table in tables:
            for operation in _OPERATIONS:
                if trigger_name(table, operation) not in present:
                    conn.execute_native(f'CREATE TRIGGER "{trigger_name(table, operation)}" BEFORE {operation} '
                                     f'ON "{table}" FOR EACH STATEMENT EXECUTE FUNCTION lightml_guard()')
        return
    conn.execute(MARKER_DDL)
    for table in tables:
        for operation in _OPERATIONS:
            conn.execute(_trigger_ddl(table, operation))


def unguarded_tables(conn: sqlite3.Connection, tables: list[str]) -> list[str]:
    """The tables (of those that exist) that lack one of their guard triggers: a registry
    written before the guard existed."""
    if dialect_of(conn) == "postgresql":
        present, existing = _pg_triggers(conn), conn.engine.table_names(conn)
        return [t for t in tables if t in existing and any(trigger_name(t, op) not in present for op in _OPERATIONS)]
    present = {row[0] for row in conn.execute("SELECT name FROM main.sqlite_master WHERE type = 'trigger'")}
    existing = {row[0] for row in conn.execute("SELECT name FROM main.sqlite_master WHERE type = 'table'")}
    return [t for t in tables if t in existing
            and (MARKER_TABLE not in existing or any(trigger_name(t, op) not in present for op in _OPERATIONS))]


def _pg_triggers(conn) -> set[str]:
    return {row[0] for row in conn.execute_native(
        "SELECT t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE c.relnamespace = current_schema()::regnamespace AND NOT t.tgisinternal")}
