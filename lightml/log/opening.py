"""Opening a registry: the format checks, and bringing a file written by an earlier 2.x
build up to this one (its missing read tables, built from its own log, and the guards of its
read tables). Above ``store`` (connections) and ``replay`` (rebuilding), which it uses."""

from __future__ import annotations

import os
import sqlite3

import projections
from lightml.log import store
from lightml.log.engine import engine_of, shown
from lightml.errors import NotARegistryError
from lightml.log.replay import read_event_chunks, rebuild_and_commit


def open_registry_readonly(path: str | os.PathLike, *, timeout: float = store.DEFAULT_TIMEOUT) -> sqlite3.Connection:
    """A read-only connection to an event-sourced registry (for the read-only commands and
    the module-level report functions); anything else is refused with the way out."""
    conn = store.connect_readonly(path, timeout=timeout)
    try:
        store.check_format(conn, path)
        if store.registry_format(conn) is None:
            raise NotARegistryError(f"{shown(path)} is an empty database, not a LightML registry")
        if store.missing_read_tables(conn):
            _add_missing_read_tables_or_stand_ins(conn, path, timeout)
    except BaseException:
        conn.close()
        raise
    return conn


def _add_missing_read_tables_or_stand_ins(conn: sqlite3.Connection, path, timeout: float) -> None:
    """Give an earlier 2.x registry its missing read tables (built from its log). Where the
    file cannot be written (read-only media), this connection gets TEMP stand-ins instead,
    so reading still works and answers as that build did: the log's indexes
    (``projections.LOG_INDEXES``) are built from the log, as that build read the log for
    their answers; the other tables stay empty (scores then pair by position, as there)."""
    try:
        add_missing_read_tables(path, timeout=timeout)
    except NotARegistryError:
        missing = store.missing_read_tables(conn)
        for module in projections.MODULES:
            if module.TABLE in missing:
                conn.execute(module.DDL.replace("CREATE TABLE", "CREATE TEMP TABLE", 1))
                for statement in module.INDEXES:  # an index of a TEMP table is a TEMP index
                    conn.execute(statement)
        from_the_log = [table for table in projections.LOG_INDEXES if table in missing]
        if from_the_log:
            conn.execute("BEGIN")  # one transaction (it writes TEMP tables only): twice as fast
            projections.build_tables(conn, read_event_chunks(conn), from_the_log)
            conn.execute("COMMIT")  # (on failure the caller closes the connection: rolled back)


def add_missing_read_tables(path: str | os.PathLike, *, timeout: float = store.DEFAULT_TIMEOUT) -> list[str]:
    """Bring a registry written by an earlier 2.x build up to this one: its missing read
    tables and the guards of its read tables (``projections.guard``).

    The missing tables are built from the registry's own log (by rebuilding every read
    table, in one transaction, exactly as ``replay`` does), so the registry answers as if it
    had always had them. Returns the tables that were missing.
    """
    conn = store.connect(path, timeout=timeout)
    try:
        if not needs_upgrade(conn):
            return []
        engine_of(conn).defer_reference_checks(conn)  # checked once at the end instead of per row
        try:
            store.begin_write(conn)
            missing = store.missing_read_tables(conn)  # another process may have added them meanwhile
            if missing:
                rebuild_and_commit(conn)
            else:
                projections.create_guards(conn)
                store.commit_write(conn)
        except sqlite3.OperationalError as exc:  # e.g. a read-only file or folder
            engine_of(conn).rollback(conn)
            raise NotARegistryError(
                f"{shown(path)} was written by an earlier LightML 2 and lacks the tables or guards "
                f"of this one; adding them failed ({exc}). Make the file writable and run: "
                f"lightml replay --db {shown(path)}"
            ) from None
    finally:
        conn.close()
    return missing


def needs_upgrade(conn: sqlite3.Connection) -> bool:
    """Does this registry lack read tables, or guards, of this build?"""
    return bool(store.missing_read_tables(conn) or projections.unguarded_tables(conn))
