"""The SQLite storage engine: a registry in one file (``lightml.log.engine`` says what an
engine provides).

SQLite's part of every promise: connections in autocommit mode with the registry's pragmas
(WAL, ``busy_timeout``, ``foreign_keys``), read-only connections that fall back to an
immutable read on read-only media (``sqlite_files``), ``BEGIN IMMEDIATE`` as the decide
lock, the marker row that the read tables' guard triggers look for, the append-only
triggers of the events table, TRUNCATE checkpoints, the JSON lookups
(``sqlite_lookups``), ``ATTACH`` for replay and verify, and the online backup API.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import projections
from lightml.defaults import DEFAULT_TIMEOUT
from lightml.errors import InvalidInputError, NotARegistryError, RegistryLockedError
from lightml.log import sqlite_files, sqlite_lookups

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

# The write marker (see projections.guard): a row only LightML's own transactions hold.
_MARK = f"INSERT INTO main.{projections.guard.MARKER_TABLE} (token) VALUES (1)"
_UNMARK = f"DELETE FROM main.{projections.guard.MARKER_TABLE}"


class SQLiteConnection(sqlite3.Connection):
    """A sqlite3 connection that knows its engine (``engine.Connection``)."""

    __slots__ = ("engine",)
    dialect = "sqlite"


class SQLiteEngine:
    """A registry in the SQLite file ``path`` (a ``StorageEngine``)."""

    integrity_error = sqlite3.IntegrityError
    dialect = "sqlite"

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.location = self.db = str(self.path)

    def __repr__(self) -> str:
        return f"<SQLiteEngine {self.location}>"

    # -- where the registry is -----------------------------------------------------------

    def checked(self, *, create: bool) -> "SQLiteEngine":
        """The file's absolute path (symlinks kept: model links go beside the name the user
        gave). A missing file is created only if asked and its folder exists."""
        path = Path(os.path.abspath(self.path))
        if path.is_dir():
            raise InvalidInputError(f"{path} is a folder; give the registry's .db file (e.g. {path / 'main.db'})")
        if not path.exists():
            if not create:
                raise FileNotFoundError(f"registry not found: {path}")
            if not path.parent.is_dir():
                raise FileNotFoundError(f"cannot create registry {path}: folder {path.parent} does not exist")
        return SQLiteEngine(path)

    def resolved(self) -> "SQLiteEngine":
        return SQLiteEngine(self.path.resolve())

    def owns_file(self, candidate: str | os.PathLike) -> bool:
        return sqlite_files.is_registry_file(candidate, self.path)

    # -- connections ---------------------------------------------------------------------

    def connect(self, *, timeout: float = DEFAULT_TIMEOUT, synchronous: str = "FULL") -> SQLiteConnection:
        """A connection in autocommit mode (we issue BEGIN ourselves) with the registry's pragmas."""
        # Opened as a URI so that ATTACH of a "file:...?mode=ro" URI works whatever the SQLite build.
        uri = Path(os.path.abspath(self.path)).as_uri()
        conn = sqlite3.connect(uri, uri=True, timeout=timeout, isolation_level=None, check_same_thread=False,
                               factory=SQLiteConnection)
        return self._configured(conn, timeout, "PRAGMA foreign_keys = ON", f"PRAGMA synchronous = {synchronous}")

    def connect_readonly(self, *, timeout: float = DEFAULT_TIMEOUT) -> SQLiteConnection:
        """A read-only connection; fails (and creates nothing) when the file does not exist.

        A ``-wal`` left holding committed data by a process that never closed is folded into
        the ``.db`` first when nobody else has the file open (see ``fold_leftover_wal``), so a
        read command leaves a file that is complete on its own."""
        if not self.path.is_file():
            raise FileNotFoundError(f"registry not found: {self.path}")
        sqlite_files.fold_leftover_wal(self.path)
        conn = sqlite3.connect(sqlite_files.readonly_uri(self.path), uri=True, timeout=timeout, isolation_level=None,
                               check_same_thread=False, factory=SQLiteConnection)
        return self._configured(conn, timeout)

    async def connect_readonly_async(self):
        """An aiosqlite connection opened as ``connect_readonly``'s (never writes, never
        blocks a writer in another process: WAL readers take no write lock)."""
        import aiosqlite

        conn = await aiosqlite.connect(sqlite_files.readonly_uri(self.path), uri=True)
        try:
            await conn.execute("PRAGMA busy_timeout = 30000")
        except BaseException:
            await conn.close()
            raise
        return conn

    def _configured(self, conn: SQLiteConnection, timeout: float, *pragmas: str) -> SQLiteConnection:
        """Set the busy timeout and pragmas, and read the schema once: a file that is not SQLite
        fails here with a clear error rather than at the first query."""
        conn.engine = self
        try:
            conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
            for pragma in pragmas:
                conn.execute(pragma)
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise NotARegistryError(f"{self.location} is not a SQLite database ({exc})") from None
        return conn

    def begin_snapshot(self, conn: SQLiteConnection) -> None:
        conn.execute("BEGIN")  # deferred: the snapshot is taken at the first read (WAL)

    # -- the write transaction -----------------------------------------------------------

    def begin_decide_lock(self, conn: SQLiteConnection) -> None:
        """``BEGIN IMMEDIATE``: the write lock now (waiting up to busy_timeout), so that
        check-then-write cannot race. (A deferred BEGIN that reads and then writes fails
        at once with "database is locked", whatever the busy timeout.)"""
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

    def try_begin_decide_lock(self, conn: SQLiteConnection, timeout: float) -> bool:
        """``BEGIN IMMEDIATE`` if the lock is free right now; the connection's busy timeout
        (``timeout`` seconds) is put back either way."""
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

    def mark_write(self, conn: SQLiteConnection) -> None:
        try:
            try:
                conn.execute(_MARK)
            except sqlite3.OperationalError as exc:
                if not str(exc).startswith("no such table") or projections.guard.MARKER_TABLE not in str(exc):
                    raise
                # A registry from before the guard, or an empty file: the table comes first (this
                # transaction commits it; add_missing_read_tables adds the guards).
                conn.execute(projections.guard.MARKER_DDL)
                conn.execute(_MARK)
        except BaseException:
            conn.execute("ROLLBACK")
            raise

    def commit_write(self, conn: SQLiteConnection) -> None:
        conn.execute(_UNMARK)
        conn.execute("COMMIT")

    def rollback(self, conn: SQLiteConnection) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")

    def checkpoint(self, conn: SQLiteConnection) -> bool:
        """Copy the WAL into the ``.db`` and empty it (TRUNCATE) without waiting for anyone:
        True when done; False when a reader or writer holds it (try again later)."""
        try:
            if conn.in_transaction:
                return False
            timeout_ms = conn.execute("PRAGMA busy_timeout").fetchone()[0]
            conn.execute("PRAGMA busy_timeout = 0")
            try:
                busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
                return busy == 0
            except sqlite3.Error:
                return False
            finally:
                conn.execute(f"PRAGMA busy_timeout = {timeout_ms}")
        except sqlite3.Error:  # e.g. the file went away: nothing a caller must hear of
            return False

    # -- schema and format ---------------------------------------------------------------

    def table_names(self, conn: SQLiteConnection) -> set[str]:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}

    def create_log_tables(self, conn: SQLiteConnection) -> None:
        for statement in EVENTS_DDL:
            conn.execute(statement)

    def set_meta(self, conn: SQLiteConnection, key: str, value: str) -> None:
        conn.execute("INSERT OR REPLACE INTO lightml_meta (key, value) VALUES (?, ?)", (key, value))

    def prepare_for_writing(self, conn: SQLiteConnection) -> None:
        """WAL mode, so that readers never block the writer: a ``backup`` copy, or a file
        another tool rewrote, is put back in it."""
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            try:
                conn.execute("PRAGMA journal_mode = WAL")
            except sqlite3.OperationalError:  # another connection has it open: it stays as it is
                pass

    def defer_reference_checks(self, conn: SQLiteConnection) -> None:
        conn.execute("PRAGMA foreign_keys = OFF")  # (outside a transaction: SQLite ignores it inside one)

    def reference_problems(self, conn: SQLiteConnection) -> list:
        return conn.execute("PRAGMA foreign_key_check").fetchall()

    # -- the dialect's lookups -----------------------------------------------------------

    existing_metrics = staticmethod(sqlite_lookups.existing_metrics)
    existing_metrics_one_by_one = staticmethod(sqlite_lookups.existing_metrics_one_by_one)
    metric_value_rows = staticmethod(sqlite_lookups.metric_value_rows)

    # -- copies --------------------------------------------------------------------------

    def attach_as_live(self, scratch: sqlite3.Connection) -> None:
        scratch.execute("ATTACH DATABASE ? AS live", (sqlite_files.readonly_uri(self.path),))

    def copy_into_file(self, conn: SQLiteConnection, target: Path, *, single_file: bool) -> None:
        """SQLite's online backup API: all pages in one step, one snapshot of the source
        while other processes keep writing. ``single_file``: the copy is left in
        rollback-journal mode (LightML puts it back in WAL mode when it opens it to write)."""
        copy = sqlite3.connect(target, isolation_level=None)
        try:
            conn.backup(copy)
            if single_file:
                copy.execute("PRAGMA journal_mode = DELETE")
        finally:
            copy.close()

    @staticmethod
    def quick_check(conn: SQLiteConnection) -> bool:
        """Does SQLite's ``quick_check`` find the file sound?"""
        return conn.execute("PRAGMA quick_check").fetchone()[0] == "ok"


def _held_by_another(exc: sqlite3.OperationalError) -> bool:
    """Did SQLite refuse because another connection holds the lock?"""
    return "locked" in str(exc) or "busy" in str(exc)
