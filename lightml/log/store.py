"""The registry's storage, whatever its engine: connections, the format checks and the
schema, and LightML's own write transactions.

Engine-blind: what is specific to a database (SQLite's pragmas, ``BEGIN IMMEDIATE``, the
triggers of the events table) is the engine's (``lightml.log.engine``), found from the
``db`` string (``engine_for``) or from a connection it made (``engine_of``).
"""

from __future__ import annotations

import os
from pathlib import Path

import projections
from lightml.errors import InvalidInputError, NotARegistryError
from lightml.log.engine import DEFAULT_TIMEOUT, Connection, engine_for, engine_of, shown
# A new SQLite file's companions (what a command's output writes beside it); readonly_uri is
# the SQLite adapter's, importable from here as before.
from lightml.log.sqlite_files import companion_files, readonly_uri  # noqa: F401

FORMAT_VERSION = 2  # LightML 1.x databases (read tables only) are format 1.

EVENT_COLUMNS = "seq, type, version, payload, at, user, host, pid, origin"
INSERT_EVENT = f"INSERT INTO events ({EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"  # one row, in that order


def connect(db: str | os.PathLike, *, timeout: float = DEFAULT_TIMEOUT, synchronous: str = "FULL") -> Connection:
    """A writer connection to the registry ``db`` (``StorageEngine.connect``)."""
    return engine_for(db).connect(timeout=timeout, synchronous=synchronous)


def connect_readonly(db: str | os.PathLike, *, timeout: float = DEFAULT_TIMEOUT) -> Connection:
    """A read-only connection to ``db``; FileNotFoundError when it does not exist."""
    return engine_for(db).connect_readonly(timeout=timeout)


def table_names(conn: Connection) -> set[str]:
    return engine_of(conn).table_names(conn)


def missing_read_tables(conn: Connection) -> list[str]:
    """Read tables an event-sourced registry lacks: it was written by an earlier 2.x build,
    before the table existed (``score_docs`` and ``imported_file`` came after the first)."""
    tables = table_names(conn)
    return [name for name in projections.READ_TABLES if name not in tables]


def registry_format(conn: Connection) -> int | None:
    """2+ for an event-sourced registry, 1 for LightML 1.x, None for an empty database.

    Raises NotARegistryError for a database holding something else.
    """
    # (The marker table a LightML write transaction creates first, see begin_write, says nothing.)
    tables = table_names(conn) - {projections.guard.MARKER_TABLE}
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


def check_format(conn: Connection, path: str | os.PathLike) -> None:
    """Refuse databases this version cannot write to, with the way out in the message."""
    fmt = registry_format(conn)
    path = shown(path)  # (a URL's password is never in a message)
    if fmt == 1:
        raise NotARegistryError(
            f"{path} is a LightML 1.x registry; upgrade it first with: lightml migrate --db {path}"
        )
    if fmt is not None and fmt > FORMAT_VERSION:
        raise NotARegistryError(
            f"{path} was written by a newer LightML (format {fmt}; this one reads {FORMAT_VERSION}); "
            "upgrade light-ml-registry"
        )


def create_schema(conn: Connection) -> None:
    """Create the event log and the read tables, with their guards (inside the caller's
    transaction, begun with ``begin_write``)."""
    engine_of(conn).create_log_tables(conn)
    conn.execute(
        "INSERT INTO lightml_meta (key, value) VALUES ('format_version', ?)", (str(FORMAT_VERSION),)
    )
    projections.create_tables(conn)
    mark_tables_guarded_and_explained(conn)


# lightml_meta key: present while the read tables have been guarded ever since they last
# matched the log (created with their guards, or rebuilt from it), so no row in them can
# have been written behind the log and replay need not look for such rows.
_EXPLAINED_KEY = "read_tables_explained"


def mark_tables_guarded_and_explained(conn: Connection) -> None:
    """Record, in the caller's transaction, that the guarded read tables match the log."""
    engine_of(conn).set_meta(conn, _EXPLAINED_KEY, "guarded since they matched the log")


def tables_guarded_and_explained(conn: Connection) -> bool:
    """Can every row of the read tables be explained by the log without looking? True when
    they were marked so and every guard is still in place (a tool that dropped one may
    have written behind the log)."""
    marked = conn.execute("SELECT 1 FROM lightml_meta WHERE key = ?", (_EXPLAINED_KEY,)).fetchone()
    return marked is not None and not projections.unguarded_tables(conn)


def ensure_schema(conn: Connection, path: str | os.PathLike) -> None:
    """Check the format; on an empty database, create the schema (once, even if racing).
    The registry is put in the state writers need (``prepare_for_writing``: SQLite's WAL
    mode, so that readers never block the writer)."""
    check_format(conn, path)
    engine = engine_of(conn)
    engine.prepare_for_writing(conn)
    if "events" in engine.table_names(conn):
        return
    begin_write(conn)
    try:
        if registry_format(conn) is None:  # another process may have won the race
            create_schema(conn)
        commit_write(conn)
    except BaseException:
        engine.rollback(conn)
        raise


# -- LightML's own write transactions (see projections.guard) ------------------------------
# (The names say BEGIN IMMEDIATE, SQLite's form of the lock; every engine has its own.)


def begin_immediate(conn: Connection) -> None:
    """Take the decide lock now, waiting up to the connection's timeout (then
    RegistryLockedError), so that check-then-write cannot race."""
    engine_of(conn).begin_decide_lock(conn)


def try_begin_immediate(conn: Connection, timeout: float) -> bool:
    """Take the decide lock if it is free right now (True); False if someone holds it."""
    return engine_of(conn).try_begin_decide_lock(conn, timeout)


def begin_write(conn: Connection) -> None:
    """``begin_immediate``, then mark the transaction as LightML's own: the read tables'
    guards let it write. Every write to the read tables starts here."""
    begin_immediate(conn)
    engine_of(conn).mark_write(conn)


def try_begin_write(conn: Connection, timeout: float) -> bool:
    """``try_begin_immediate``, marked as ``begin_write`` when the lock was free."""
    if not try_begin_immediate(conn, timeout):
        return False
    engine_of(conn).mark_write(conn)
    return True


def commit_write(conn: Connection) -> None:
    """Remove the mark and commit: the only way a marked transaction ends well."""
    engine_of(conn).commit_write(conn)


# -- files a command writes beside a registry ---------------------------------------------


def refuse_registry_file(candidate: str | os.PathLike, db: str | os.PathLike, what: str, *,
                         sqlite_file: bool = False) -> None:
    """Raise InvalidInputError when ``candidate`` (the ``what`` of a command, e.g.
    ``--out``) is the registry or one of its files (``StorageEngine.owns_file``). With
    ``sqlite_file`` (the candidate becomes a SQLite database, which writes its own
    ``-wal``/``-shm``/``-journal`` beside it), those must not be the registry's either."""
    engine = engine_for(db)
    written = [Path(candidate)]
    if sqlite_file:
        written += companion_files(candidate)
    for path in written:
        if engine.owns_file(path):
            raise InvalidInputError(
                f"{what} {candidate} is the registry {db} or one of its files; choose another file")


def new_database_path(out: str | os.PathLike, db: str | os.PathLike, what: str = "--out") -> Path:
    """The absolute path of a new SQLite file a command writes (``replay --out``, ``backup``):
    not the registry or one of its files, not an existing file, in a folder that exists."""
    out_path = Path(os.path.abspath(Path(out).expanduser()))
    refuse_registry_file(out_path, db, what, sqlite_file=True)
    if out_path.exists():
        raise InvalidInputError(f"{out_path} already exists; choose a new file for {what}")
    if not out_path.parent.is_dir():
        raise FileNotFoundError(f"folder {out_path.parent} does not exist")
    return out_path
