"""Opening a registry file: connections, pragmas, the events table, and format checks."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import projections
from lightml.errors import NotARegistryError, RegistryLockedError

FORMAT_VERSION = 2  # LightML 1.x databases (read tables only) are format 1.
DEFAULT_TIMEOUT = 30.0

EVENTS_DDL = [
    """
    CREATE TABLE events (
        seq     INTEGER PRIMARY KEY,
        type    TEXT NOT NULL,
        version INTEGER NOT NULL,
        payload TEXT NOT NULL,
        at      TEXT NOT NULL,
        user    TEXT,
        host    TEXT,
        pid     INTEGER,
        origin  TEXT NOT NULL
    )""",
    """
    CREATE TRIGGER events_append_only_update BEFORE UPDATE ON events
    BEGIN SELECT RAISE(ABORT, 'the LightML event log is append-only'); END""",
    """
    CREATE TRIGGER events_append_only_delete BEFORE DELETE ON events
    BEGIN SELECT RAISE(ABORT, 'the LightML event log is append-only'); END""",
    # INSERT OR REPLACE deletes the old row without firing DELETE triggers: only appends pass.
    """
    CREATE TRIGGER events_append_only_insert BEFORE INSERT ON events
    WHEN EXISTS (SELECT 1 FROM events WHERE seq = NEW.seq)
    BEGIN SELECT RAISE(ABORT, 'the LightML event log is append-only: an event cannot be replaced'); END""",
    "CREATE TABLE lightml_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
]

EVENT_COLUMNS = "seq, type, version, payload, at, user, host, pid, origin"


def connect(path: str | os.PathLike, *, timeout: float = DEFAULT_TIMEOUT, synchronous: str = "FULL") -> sqlite3.Connection:
    """A connection in autocommit mode (we issue BEGIN ourselves) with the registry's pragmas."""
    # Opened as a URI so that ATTACH of a "file:...?mode=ro" URI works whatever the SQLite build.
    uri = Path(os.path.abspath(path)).as_uri()
    conn = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False)
    return _configured(conn, path, timeout, "PRAGMA foreign_keys = ON", f"PRAGMA synchronous = {synchronous}")


def connect_readonly(path: str | os.PathLike, *, timeout: float = DEFAULT_TIMEOUT) -> sqlite3.Connection:
    """A read-only connection; fails (and creates nothing) when the file does not exist."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"registry not found: {path}")
    uri = path.resolve().as_uri() + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False)
    return _configured(conn, path, timeout)


def open_registry_readonly(path: str | os.PathLike, *, timeout: float = DEFAULT_TIMEOUT) -> sqlite3.Connection:
    """A read-only connection to an event-sourced registry (for the read-only commands and
    the module-level report functions); anything else is refused with the way out."""
    conn = connect_readonly(path, timeout=timeout)
    try:
        check_format(conn, path)
        if registry_format(conn) is None:
            raise NotARegistryError(f"{path} is an empty database, not a LightML registry")
        if missing_read_tables(conn):
            _add_missing_read_tables_or_stand_ins(conn, path, timeout)
    except BaseException:
        conn.close()
        raise
    return conn


def _add_missing_read_tables_or_stand_ins(conn: sqlite3.Connection, path, timeout: float) -> None:
    """Give an earlier 2.x registry its missing read tables (built from its log). Where the
    file cannot be written (read-only media), this connection gets empty TEMP stand-ins
    instead, so reading still works: scores then pair by position, as that build did."""
    from importlib import import_module

    # Imported here: replay imports this module. (``lightml.replay`` as an attribute is the
    # package's replay function, hence import_module.)
    replay = import_module("lightml.replay")
    try:
        replay.add_missing_read_tables(path, timeout=timeout)
    except NotARegistryError:
        for module in projections.MODULES:
            if module.TABLE in missing_read_tables(conn):
                conn.execute(module.DDL.replace("CREATE TABLE", "CREATE TEMP TABLE", 1))


def _configured(conn: sqlite3.Connection, path, timeout: float, *pragmas: str) -> sqlite3.Connection:
    """Set the busy timeout and pragmas, and read the schema once: a file that is not SQLite
    fails here with a clear error rather than at the first query."""
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
        for pragma in pragmas:
            conn.execute(pragma)
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise NotARegistryError(f"{path} is not a SQLite database ({exc})") from None
    return conn


def table_names(conn: sqlite3.Connection) -> set[str]:
    return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}


def missing_read_tables(conn: sqlite3.Connection) -> list[str]:
    """Read tables an event-sourced registry lacks: it was written by an earlier 2.x build,
    before the table existed (``score_docs`` and ``imported_file`` came after the first)."""
    tables = table_names(conn)
    return [name for name in projections.READ_TABLES if name not in tables]


def registry_format(conn: sqlite3.Connection) -> int | None:
    """2+ for an event-sourced registry, 1 for LightML 1.x, None for an empty database.

    Raises NotARegistryError for a database holding something else.
    """
    tables = table_names(conn)
    if "events" in tables and "lightml_meta" in tables:
        row = conn.execute("SELECT value FROM lightml_meta WHERE key = 'format_version'").fetchone()
        return int(row[0]) if row else FORMAT_VERSION
    if {"run", "model", "metrics"} <= tables:
        return 1
    if not tables:
        return None
    raise NotARegistryError(
        f"not a LightML registry: it has tables {', '.join(sorted(tables)[:5])} but no event log"
    )


def check_format(conn: sqlite3.Connection, path: str | os.PathLike) -> None:
    """Refuse databases this version cannot write to, with the way out in the message."""
    fmt = registry_format(conn)
    if fmt == 1:
        raise NotARegistryError(
            f"{path} is a LightML 1.x registry; upgrade it first with: lightml migrate --db {path}"
        )
    if fmt is not None and fmt > FORMAT_VERSION:
        raise NotARegistryError(
            f"{path} was written by a newer LightML (format {fmt}; this one reads {FORMAT_VERSION}); "
            "upgrade light-ml-registry"
        )


def create_schema(conn: sqlite3.Connection) -> None:
    """Create the event log and the read tables (inside the caller's transaction)."""
    for statement in EVENTS_DDL:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO lightml_meta (key, value) VALUES ('format_version', ?)", (str(FORMAT_VERSION),)
    )
    projections.create_tables(conn)


def ensure_schema(conn: sqlite3.Connection, path: str | os.PathLike) -> None:
    """Check the format; on an empty database, create the schema (once, even if racing)."""
    check_format(conn, path)
    if "events" in table_names(conn):
        return
    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        conn.execute("PRAGMA journal_mode = WAL")
    begin_immediate(conn)
    try:
        if registry_format(conn) is None:  # another process may have won the race
            create_schema(conn)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise


def _held_by_another(exc: sqlite3.OperationalError) -> bool:
    """Did SQLite refuse because another connection holds the lock?"""
    return "locked" in str(exc) or "busy" in str(exc)


def try_begin_immediate(conn: sqlite3.Connection, timeout: float) -> bool:
    """Take the write lock if it is free right now (True); False if someone holds it. The
    connection's busy timeout (``timeout`` seconds) is put back either way."""
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        conn.execute("BEGIN IMMEDIATE")
        return True
    except sqlite3.OperationalError as exc:
        if _held_by_another(exc):
            return False
        raise
    finally:
        conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")


def begin_immediate(conn: sqlite3.Connection) -> None:
    """Take the write lock now (waiting up to busy_timeout), so check-then-write cannot race."""
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.OperationalError as exc:
        if _held_by_another(exc):
            timeout_ms = conn.execute("PRAGMA busy_timeout").fetchone()[0]
            raise RegistryLockedError(
                f"the registry is locked by another writer (waited {timeout_ms / 1000:g} s); "
                "nothing was written, try again"
            ) from None
        raise
