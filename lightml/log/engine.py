"""What a storage engine provides: the seam between LightML and the database under it.

Everything above this interface is engine-blind. The writer asks an engine for a writer
connection, for the "decide inside the transaction" lock, for the mark that lets the
transaction write the read tables, and for a checkpoint when idle; ``lightml.log.store``
builds the format checks and the marked write transaction from these; the metric log asks
it which metrics exist; the read side asks it for read-only connections. SQLite (a file
path) is the first adapter (``lightml.log.sqlite_engine``).

``engine_for`` is the one place where a ``db`` string picks its adapter; the adapter's
module is imported only then (a second engine's driver must not slow ``import lightml``).
A connection made by an engine carries it (``conn.engine``, see ``engine_of``), so code
that holds only a connection (a command inside its transaction, ``store.begin_write``)
asks the engine that made it.

What stays outside the interface, on purpose: the SQL every engine speaks (``SELECT``,
``INSERT``, ``SAVEPOINT``), run with ``conn.execute`` / ``conn.executemany`` (DB-API) with
``?`` and ``:name`` parameters (an adapter whose driver takes another style translates
them in its connection); and the scratch databases of ``replay --out`` and
``verify``, which are SQLite files or memory databases whatever the registry's engine
(``attach_as_live`` brings the registry into them).
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Protocol

from lightml.defaults import DEFAULT_TIMEOUT
from lightml.errors import InvalidInputError

if TYPE_CHECKING:
    import aiosqlite

# (family, metric_name) -> (metric id, value): what ``existing_metrics`` answers.
ExistingMetrics = dict[tuple[str, str], tuple[Any, Any]]


class Connection(Protocol):
    """A connection made by an engine (DB-API calls, autocommit: LightML begins and ends
    its transactions itself), carrying the engine that made it.

    Inside a transaction a write's answer (its cursor, its row count) is never read: an
    engine may send the write later, with the next statement that is answered, which then
    raises the write's error (PostgreSQL's adapter does, to save round trips)."""

    engine: "StorageEngine"

    def execute(self, sql: str, parameters: Any = ..., /) -> Any: ...

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Any: ...

    def close(self) -> None: ...


class StorageEngine(Protocol):
    """What a storage engine provides (one instance names one registry: ``location``)."""

    location: str  # the registry as messages name it (a path; a URL without its password)
    db: str  # what ``engine_for`` takes to make this engine again (a URL keeps its password)
    dialect: str  # "sqlite" or "postgresql": which SQL its connections speak
    integrity_error: type[Exception]  # what the driver raises for a broken constraint

    # -- where the registry is, and connections to it ----------------------------------

    def checked(self, *, create: bool) -> "StorageEngine":
        """This registry at its absolute location, after checking that it can be opened:
        it exists or (``create``) can be made. FileNotFoundError / InvalidInputError."""

    def resolved(self) -> "StorageEngine":
        """This registry under its canonical name (what results report)."""

    def owns_file(self, candidate: str | os.PathLike) -> bool:
        """Is ``candidate`` one of the registry's own files (never to be overwritten)?"""

    def connect(self, *, timeout: float = DEFAULT_TIMEOUT, synchronous: str = "FULL") -> Connection:
        """A writer connection: waits up to ``timeout`` for a lock, durable commits
        (``synchronous``: FULL or NORMAL), references checked. Creates an empty
        database where there is none; a database that is not the engine's raises
        NotARegistryError."""

    def connect_readonly(self, *, timeout: float = DEFAULT_TIMEOUT) -> Connection:
        """A connection that cannot write, and never blocks a writer; FileNotFoundError
        (creating nothing) when the registry does not exist."""

    async def connect_readonly_async(self) -> "aiosqlite.Connection":
        """The dashboard's read-only connection: ``await conn.execute_fetchall(sql,
        params)`` runs a statement (``read.sql.run_async``), ``await conn.close()``."""

    def begin_snapshot(self, conn: Connection) -> None:
        """Begin a read transaction: every read until the connection closes (or the
        transaction ends) sees the registry as of one moment, whatever others write."""

    # -- the write transaction -----------------------------------------------------------

    def begin_decide_lock(self, conn: Connection) -> None:
        """Begin a transaction holding the registry's write lock, so that what is read
        next cannot change before COMMIT (decide inside the transaction). Waits up to the
        connection's timeout, then RegistryLockedError."""

    def try_begin_decide_lock(self, conn: Connection, timeout: float) -> bool:
        """``begin_decide_lock`` if the lock is free right now (True), else False at once."""

    def mark_write(self, conn: Connection) -> None:
        """Mark the transaction as LightML's own: the read tables' guards let it write,
        and no other connection sees the mark. Rolls back and raises if it cannot."""

    def commit_write(self, conn: Connection) -> None:
        """Remove the mark and commit: the only way a marked transaction ends well."""

    def rollback(self, conn: Connection) -> None:
        """Undo the open transaction, if there is one."""

    def checkpoint(self, conn: Connection) -> bool:
        """Idle maintenance (SQLite: fold the WAL into the file), outside a transaction;
        never waits, never raises: True when done, False to try again later."""

    # -- schema and format -----------------------------------------------------------------

    def table_names(self, conn: Connection) -> set[str]:
        """The registry's tables (what the format checks look at)."""

    def create_log_tables(self, conn: Connection) -> None:
        """The ``events`` table (columns ``store.EVENT_COLUMNS``; UPDATE, DELETE and a
        replacing INSERT refused in the database) and ``lightml_meta`` (key, value)."""

    def set_meta(self, conn: Connection, key: str, value: str) -> None:
        """Insert or replace one ``lightml_meta`` row."""

    def prepare_for_writing(self, conn: Connection) -> None:
        """Put a registry in the state writers need (SQLite: WAL mode); never fails."""

    def defer_reference_checks(self, conn: Connection) -> None:
        """Before a bulk rebuild: references are checked once, by ``reference_problems``,
        rather than at every row."""

    def reference_problems(self, conn: Connection) -> list[Any]:
        """Rows whose references are broken (a few, for the message); [] when none."""

    # -- the dialect's lookups -------------------------------------------------------------

    def existing_metrics(self, conn: Connection, key_column: str, key: int,
                         pairs: set[tuple[str, str]]) -> ExistingMetrics:
        """For a model (``key_column`` model_id) or checkpoint (checkpoint_id): the
        (family, metric_name) pairs that exist -> (metric id, value), in few queries."""

    def existing_metrics_one_by_one(self, conn: Connection, key_column: str, key: int,
                                    pairs: set[tuple[str, str]]) -> ExistingMetrics:
        """The same answer, one query per pair: the reference the fast path is tested against."""

    def metric_value_rows(self, conn: Connection) -> list[tuple] | None:
        """Every value the log gave a metric, in log order: (event type, metric id, value,
        original_at, original_actor, at, user, host, origin) per metric item; None when
        the log cannot be read that way (a payload that is not JSON)."""

    # -- copies ----------------------------------------------------------------------------

    def attach_as_live(self, scratch: Any) -> None:
        """Make this registry readable as schema ``live`` of ``scratch`` (a sqlite3
        connection opened with ``uri=True``), as one snapshot once a read transaction is
        open there: what ``replay --out`` and ``verify`` rebuild from and compare with."""

    def copy_into_file(self, conn: Connection, target: Path, *, single_file: bool) -> None:
        """One consistent snapshot of the registry behind ``conn`` into the new SQLite
        file ``target`` (``single_file``: no ``-wal``/``-shm`` to carry along)."""


# "scheme://..." (RFC 3986 scheme characters); a Windows drive ("C:\\") has no "//".
_URL = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def engine_for(db: str | os.PathLike) -> StorageEngine:
    """The storage engine of the registry ``db``: the one place that reads a ``db`` string.

    A path (``~`` expanded) is a SQLite file; a ``postgresql://`` (or ``postgres://``) URL
    is a PostgreSQL database (``lightml.log.postgres_engine``, which needs the ``postgres``
    extra). Any other URL is refused with the way out.
    """
    if not isinstance(db, (str, os.PathLike)) or not os.fspath(db):
        raise InvalidInputError("db must be a path to the registry's .db file, or a postgresql:// URL")
    text = os.fspath(db)
    if isinstance(text, str):
        url = _URL.match(text)
        if url is not None:
            if url.group(1).lower() in ("postgresql", "postgres"):
                from lightml.log.postgres_engine import PostgresEngine

                return PostgresEngine(text)
            raise InvalidInputError(
                f"unsupported registry {url.group(1)}:// URL: give the path of a SQLite .db file "
                "or a postgresql:// URL")
    from lightml.log.sqlite_engine import SQLiteEngine

    return SQLiteEngine(os.path.expanduser(text))


def engine_of(conn: Connection) -> StorageEngine:
    """The engine that made ``conn`` (see ``Connection``)."""
    try:
        return conn.engine
    except AttributeError:
        raise TypeError(f"{conn!r} was not opened by a LightML storage engine (lightml.log.store.connect)") from None


def dialect_of(conn: Any) -> str:
    """The SQL dialect a connection speaks ("sqlite" or "postgresql"): its ``dialect``, which
    every engine's connections carry; an aiosqlite connection (the dashboard's) has none."""
    return getattr(conn, "dialect", "sqlite")


def result_location(engine: StorageEngine) -> Path | str:
    """The registry as results and ``handle.path`` name it: a file's Path, or the URL of a
    server's registry (without its password)."""
    return Path(engine.location) if engine.dialect == "sqlite" else engine.location


def driver_errors() -> tuple[type[Exception], ...]:
    """The base error classes of the database drivers in use (sqlite3, and psycopg once a
    PostgreSQL registry was opened): what the CLI reports as one line."""
    import sqlite3

    return (sqlite3.Error, *server_driver_errors())


def server_driver_errors() -> tuple[type[Exception], ...]:
    """psycopg's base error class once a PostgreSQL registry was opened, else none (the
    driver is never imported to ask)."""
    psycopg = sys.modules.get("psycopg")
    return () if psycopg is None else (psycopg.Error,)


# The password of a URL: "//user:PASSWORD@" and a "password=" query parameter (libpq's forms).
_URL_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/@:?#]*):[^@/?#]*@")
_QUERY_PASSWORD = re.compile(r"([?&])password=[^&#]*&?")


def shown(db: str | os.PathLike) -> str:
    """``db`` as output may show it: a URL without its password, a path as given."""
    text = os.fspath(db)
    if not isinstance(text, str) or _URL.match(text) is None:
        return str(text)
    text = _URL_PASSWORD.sub(r"\1@", text, count=1)
    return _QUERY_PASSWORD.sub(r"\1", text).rstrip("?&")
