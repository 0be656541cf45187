"""Opening a registry file: connections, pragmas, the events table, and format checks."""

from __future__ import annotations

import fnmatch
import os
import sqlite3
import sys
from pathlib import Path

import projections
from lightml.errors import InvalidInputError, NotARegistryError, RegistryLockedError

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
    """A read-only connection; fails (and creates nothing) when the file does not exist.

    A ``-wal`` left holding committed data by a process that never closed is folded into
    the ``.db`` first when nobody else has the file open (see ``fold_leftover_wal``), so a
    read command leaves a file that is complete on its own."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"registry not found: {path}")
    fold_leftover_wal(path)
    conn = sqlite3.connect(readonly_uri(path), uri=True, timeout=timeout, isolation_level=None,
                           check_same_thread=False)
    return _configured(conn, path, timeout)


def readonly_uri(path: str | os.PathLike) -> str:
    """The URI every read-only connection to the registry uses.

    ``mode=ro`` normally. A WAL file on read-only media (its folder cannot be written, and
    its ``-wal``/``-shm`` are not there to be used) cannot be read that way: SQLite needs to
    create a ``-shm``. Then the file is opened ``immutable=1`` (valid because nobody can
    write there); a one-line note on stderr says so, once per file and process. An immutable
    read ignores the ``-wal``, so a ``-wal`` holding data (a writer killed before it could
    checkpoint) is read as SQLite can on such media, and refused if it cannot: never stale
    values without a word.
    """
    resolved = Path(path).expanduser().resolve()
    plain = resolved.as_uri() + "?mode=ro"
    if not _needs_immutable(resolved):
        return plain
    if _wal_holds_data(resolved):
        if _readable(plain):  # SQLite reads a -wal beside a read-only -shm (3.22+)
            return plain
        raise NotARegistryError(
            f"{resolved} is on read-only media and its -wal holds changes not yet in the .db, which "
            "cannot be read there; copy the folder to writable storage (the copy reads in full)")
    _note_immutable_once(resolved)
    return resolved.as_uri() + "?immutable=1"


def _wal_holds_data(path: Path) -> bool:
    try:
        return Path(f"{path}-wal").stat().st_size > 0
    except OSError:
        return False


def _readable(uri: str) -> bool:
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=0)
    except sqlite3.Error:
        return False
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return True
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def _needs_immutable(path: Path) -> bool:
    if os.access(path.parent, os.W_OK):  # the usual case, checked first: one system call
        return False
    if not _is_wal_file(path):  # a rollback-journal file needs no -shm
        return False
    shm, wal = Path(f"{path}-shm"), Path(f"{path}-wal")
    return not (shm.exists() and wal.exists() and os.access(shm, os.R_OK | os.W_OK))


def _is_wal_file(path: Path) -> bool:
    """Bytes 18-19 of the header are 2 in WAL mode (SQLite's file format)."""
    try:
        with open(path, "rb") as f:
            header = f.read(20)
    except OSError:
        return False
    return len(header) == 20 and header[18] == 2


_noted_immutable: set[Path] = set()


def _note_immutable_once(path: Path) -> None:
    if path in _noted_immutable:
        return
    _noted_immutable.add(path)
    sys.stderr.write(f"lightml: warning: {path} is on read-only media (its folder cannot be written): "
                     "reading it as an immutable file\n")


def fold_leftover_wal(path: str | os.PathLike) -> None:
    """If the file's ``-wal`` holds data and the folder can be written, open and close a
    read-write connection: when no other connection has the file open (the process that
    wrote it is gone without closing), SQLite's last close checkpoints the ``-wal`` into the
    ``.db`` and removes it. With others connected it does nothing (they will), and it never
    waits or fails the caller."""
    wal = Path(f"{path}-wal")
    try:
        if wal.stat().st_size == 0 or not os.access(wal.parent, os.W_OK) or not os.access(path, os.W_OK):
            return
    except OSError:  # no -wal: nothing to fold
        return
    try:
        conn = sqlite3.connect(Path(os.path.abspath(path)).as_uri() + "?mode=rw", uri=True, timeout=0,
                               isolation_level=None)
    except sqlite3.Error:
        return
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the WAL
    except sqlite3.Error:
        pass
    finally:
        conn.close()


def checkpoint(conn: sqlite3.Connection) -> bool:
    """Copy the WAL into the ``.db`` and empty it (TRUNCATE) without waiting for anyone:
    True when done; False when a reader or writer holds it (try again later)."""
    timeout_ms = conn.execute("PRAGMA busy_timeout").fetchone()[0]
    conn.execute("PRAGMA busy_timeout = 0")
    try:
        busy, _, _ = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        return busy == 0
    except sqlite3.Error:
        return False
    finally:
        conn.execute(f"PRAGMA busy_timeout = {timeout_ms}")


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
    """Create the event log and the read tables, with their guards (inside the caller's
    transaction, begun with ``begin_write``)."""
    for statement in EVENTS_DDL:
        conn.execute(statement)
    conn.execute(
        "INSERT INTO lightml_meta (key, value) VALUES ('format_version', ?)", (str(FORMAT_VERSION),)
    )
    projections.create_tables(conn)
    mark_tables_guarded_and_explained(conn)


# lightml_meta key: present while the read tables have been guarded ever since they last
# matched the log (created with their guards, or rebuilt from it), so no row in them can
# have been written behind the log and replay need not look for such rows.
_EXPLAINED_KEY = "read_tables_explained"


def mark_tables_guarded_and_explained(conn: sqlite3.Connection) -> None:
    """Record, in the caller's transaction, that the guarded read tables match the log."""
    conn.execute("INSERT OR REPLACE INTO lightml_meta (key, value) VALUES (?, 'guarded since they matched the log')",
                 (_EXPLAINED_KEY,))


def tables_guarded_and_explained(conn: sqlite3.Connection) -> bool:
    """Can every row of the read tables be explained by the log without looking? True when
    they were marked so and every guard is still in place (a tool that dropped one may
    have written behind the log)."""
    marked = conn.execute("SELECT 1 FROM lightml_meta WHERE key = ?", (_EXPLAINED_KEY,)).fetchone()
    return marked is not None and not projections.unguarded_tables(conn)


def ensure_schema(conn: sqlite3.Connection, path: str | os.PathLike) -> None:
    """Check the format; on an empty database, create the schema (once, even if racing).
    A registry not in WAL mode (a ``backup`` copy, a file another tool rewrote) is put
    back in it, so that readers never block the writer."""
    check_format(conn, path)
    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        try:
            conn.execute("PRAGMA journal_mode = WAL")
        except sqlite3.OperationalError:  # another connection has it open: it stays as it is
            pass
    if "events" in table_names(conn):
        return
    begin_write(conn)
    try:
        if registry_format(conn) is None:  # another process may have won the race
            create_schema(conn)
        commit_write(conn)
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


# -- LightML's own write transactions (see projections.guard) ------------------------------

_MARK = f"INSERT INTO main.{projections.guard.MARKER_TABLE} (token) VALUES (1)"
_UNMARK = f"DELETE FROM main.{projections.guard.MARKER_TABLE}"


def begin_write(conn: sqlite3.Connection) -> None:
    """``begin_immediate``, then mark the transaction as LightML's own: the read tables'
    guard triggers let it write. Every write to the read tables starts here."""
    begin_immediate(conn)
    _mark(conn)


def try_begin_write(conn: sqlite3.Connection, timeout: float) -> bool:
    """``try_begin_immediate``, marked as ``begin_write`` when the lock was free."""
    if not try_begin_immediate(conn, timeout):
        return False
    _mark(conn)
    return True


def commit_write(conn: sqlite3.Connection) -> None:
    """Remove the mark and commit: the only way a marked transaction ends well."""
    conn.execute(_UNMARK)
    conn.execute("COMMIT")


def _mark(conn: sqlite3.Connection) -> None:
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


# -- "Is this path the registry or one of its files?" -------------------------------------

_COMPANIONS = ("-wal", "-shm", "-journal")


def migration_backup_name(path: Path, stamp: str) -> Path:
    """Where ``lightml migrate`` keeps the original of ``path``."""
    return path.with_name(f"{path.stem}.backup-{stamp}{path.suffix or '.db'}")


def is_registry_file(candidate: str | os.PathLike, db: str | os.PathLike) -> bool:
    """Is ``candidate`` the registry ``db`` itself, its ``-wal``/``-shm``/``-journal``, or a
    backup ``migrate`` made of it? By resolved path (symlinks followed) and, for files that
    exist, by inode (a hard link or another spelling of the same file)."""
    target = Path(os.path.abspath(Path(candidate).expanduser())).resolve()
    live = Path(os.path.abspath(Path(db).expanduser())).resolve()
    own = [live, *(Path(f"{live}{suffix}") for suffix in _COMPANIONS)]
    if target in own:
        return True
    backup_pattern = migration_backup_name(live, "*").name
    if target.parent == live.parent and fnmatch.fnmatchcase(target.name, backup_pattern):
        return True
    try:
        target_stat = target.stat()
    except OSError:  # does not exist: only its name could have matched
        return False
    others = own + [p for p in live.parent.glob(backup_pattern)]
    for other in others:
        try:
            if os.path.samestat(target_stat, other.stat()):
                return True
        except OSError:
            continue
    return False


def refuse_registry_file(candidate: str | os.PathLike, db: str | os.PathLike, what: str, *,
                         sqlite_file: bool = False) -> None:
    """Raise InvalidInputError when ``candidate`` (the ``what`` of a command, e.g.
    ``--out``) is the registry or one of its files (``is_registry_file``). With
    ``sqlite_file`` (the candidate becomes a SQLite database, which writes its own
    ``-wal``/``-shm``/``-journal`` beside it), those must not be the registry's either."""
    written = [Path(candidate)]
    if sqlite_file:
        written += [Path(f"{candidate}{suffix}") for suffix in _COMPANIONS]
    for path in written:
        if is_registry_file(path, db):
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
