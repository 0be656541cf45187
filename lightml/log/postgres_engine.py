"""The PostgreSQL storage engine: a registry in a database (or a schema of one) that eval jobs
on many machines write at once (``lightml.log.engine`` says what an engine provides).

PostgreSQL's part of every promise:
- connections through psycopg 3 (the ``postgres`` extra, imported only here and in
  ``postgres_connection``, their class) in autocommit mode, LightML beginning and ending its transactions itself; every statement is
  LightML's shared SQL translated by ``postgres_dialect``; values are bound on the client
  (psycopg's ``ClientCursor``), as SQLite does, so a parameter's type never has to be
  guessed by the server;
- the decide lock: ``pg_advisory_xact_lock`` on the registry's key (its schema), taken
  right after ``BEGIN``, so that writers on every host decide one at a time and what they
  read cannot change before COMMIT (READ COMMITTED reads what was committed before the lock
  was granted); a wait longer than the timeout (``lock_timeout``) is RegistryLockedError;
- the write mark: ``SET LOCAL lightml.writing``, which the read tables' guard triggers
  look for (no other session sees it, and it ends with the transaction);
- the append-only log: triggers refusing UPDATE, DELETE and TRUNCATE of ``events``;
- durability: ``synchronous="FULL"`` is ``synchronous_commit=on``, ``NORMAL`` is ``off``
  (a server crash may lose the last commits, never half of one);
- read-only sessions, and REPEATABLE READ for a snapshot;
- the URL: libpq's (a password from the URL, ``PGPASSWORD`` or ``~/.pgpass``), plus an
  optional ``schema`` parameter naming the registry's schema; the password is never shown.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import projections
from lightml.defaults import DEFAULT_TIMEOUT
from lightml.errors import InvalidInputError, NotARegistryError, RegistryLockedError
from lightml.log import events as ev
from lightml.log import sqlite_lookups
from lightml.log.engine import shown as redacted
from lightml.log.postgres_connection import (AsyncPostgresReader, PostgresConnection, _first_line,
                                              _adapt_types, _psycopg)
from lightml.log import codec

SCHEMES = ("postgresql", "postgres")

EVENTS_DDL = [
    """
    CREATE TABLE events (
        seq     BIGINT PRIMARY KEY,
        type    TEXT COLLATE "C" NOT NULL,
        version INTEGER NOT NULL,
        payload TEXT COLLATE "C" NOT NULL,
        at      TEXT COLLATE "C" NOT NULL,
        "user"  TEXT COLLATE "C",
        host    TEXT COLLATE "C",
        pid     BIGINT,
        origin  TEXT COLLATE "C" NOT NULL
    )""",
    """
    CREATE FUNCTION lightml_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'the LightML event log is append-only'; END $$""",
    """
    CREATE TRIGGER events_append_only BEFORE UPDATE OR DELETE ON events
    FOR EACH ROW EXECUTE FUNCTION lightml_events_append_only()""",
    """
    CREATE TRIGGER events_append_only_truncate BEFORE TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION lightml_events_append_only()""",
    # As on SQLite: an event at a taken position is refused by name, not only by the key.
    """
    CREATE FUNCTION lightml_events_no_replace() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM events WHERE seq = NEW.seq) THEN
            RAISE EXCEPTION 'the LightML event log is append-only: an event cannot be replaced';
        END IF;
        RETURN NEW;
    END $$""",
    """
    CREATE TRIGGER events_append_only_insert BEFORE INSERT ON events
    FOR EACH ROW EXECUTE FUNCTION lightml_events_no_replace()""",
    'CREATE TABLE lightml_meta (key TEXT COLLATE "C" PRIMARY KEY, value TEXT COLLATE "C" NOT NULL)',
]


class PostgresEngine:
    """A registry in the PostgreSQL database (and schema) that ``url`` names."""

    dialect = "postgresql"

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in SCHEMES:
            raise InvalidInputError(f"not a PostgreSQL URL: {redacted(url)}")
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        self.schema = query.pop("schema", None) or None
        if self.schema is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", self.schema):
            raise InvalidInputError(f"schema {self.schema!r}: use letters, digits and _ (at most 63)")
        if not parts.path.strip("/") and "dbname" not in query:
            raise InvalidInputError(f"{redacted(url)} names no database: add it, e.g. postgresql://host/evals")
        self.db = url
        self.conninfo = urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), ""))
        self.location = redacted(url)
        self.integrity_error = _psycopg().IntegrityError

    def __repr__(self) -> str:
        return f"<PostgresEngine {self.location}>"

    # -- where the registry is -----------------------------------------------------------

    def checked(self, *, create: bool) -> "PostgresEngine":
        """The server is reached once here, so that a wrong host, password or database
        name is one clear error before anything else happens. A database that does not
        exist is FileNotFoundError, as a SQLite file's missing folder is: LightML makes a
        registry's tables, never the database they go in."""
        try:
            self._raw_connect(readonly=True, missing_ok=False).close()
        except FileNotFoundError as missing:
            if not create:
                raise
            raise FileNotFoundError(f"cannot create registry {self.location}: its database does not exist "
                                    f"(make it first, e.g. with createdb; {missing})") from None
        return self

    def resolved(self) -> "PostgresEngine":
        return self

    def owns_file(self, candidate: str | os.PathLike) -> bool:
        return False  # no file of the registry lies on this machine

    # -- connections ---------------------------------------------------------------------

    def _raw_connect(self, *, readonly: bool, timeout: float = DEFAULT_TIMEOUT, synchronous: str = "FULL",
                     missing_ok: bool = True) -> Any:
        psycopg = _psycopg()
        # (at least 1 ms: PostgreSQL's lock_timeout 0 means "wait for ever", SQLite's 0 "do not wait")
        options = [f"-c lock_timeout={max(1, math.ceil(timeout * 1000))}", "-c client_min_messages=warning"]
        if readonly:
            options.append("-c default_transaction_read_only=on")
        if synchronous.upper() == "NORMAL":
            options.append("-c synchronous_commit=off")
        if self.schema is not None:
            options.append(f"-c search_path={self.schema}")
        try:
            raw = psycopg.connect(self.conninfo, autocommit=True, cursor_factory=psycopg.ClientCursor,
                                  options=" ".join(options), connect_timeout=max(1, int(min(timeout, 30))),
                                  application_name="lightml")
        except psycopg.OperationalError as exc:
            if not missing_ok and "does not exist" in str(exc) and "database" in str(exc):
                raise FileNotFoundError(f"registry not found: {self.location} ({_first_line(exc)})") from None
            raise NotARegistryError(f"cannot connect to {self.location}: {_first_line(exc)}") from None
        except psycopg.Error as exc:  # the URL itself could not be read: its text may hold the password
            raise InvalidInputError(f"cannot read the URL {self.location} ({type(exc).__name__}; check its "
                                    "percent-encoding)") from None
        _adapt_types(raw)
        return raw

    def connect(self, *, timeout: float = DEFAULT_TIMEOUT, synchronous: str = "FULL") -> PostgresConnection:
        def raw() -> Any:
            return self._raw_connect(readonly=False, timeout=timeout, synchronous=synchronous)
        conn = PostgresConnection(raw(), self, timeout, raw)
        if self.schema is not None:
            conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        return conn

    def connect_readonly(self, *, timeout: float = DEFAULT_TIMEOUT) -> PostgresConnection:
        """As on SQLite, FileNotFoundError when there is no registry: the database does not
        exist, or its schema holds no table at all (nothing is created either way)."""
        def raw() -> Any:
            return self._raw_connect(readonly=True, timeout=timeout, missing_ok=False)
        conn = PostgresConnection(raw(), self, timeout, raw)
        try:
            if not self.table_names(conn):
                raise FileNotFoundError(f"registry not found: {self.location} holds no table")
        except BaseException:
            conn.close()
            raise
        return conn

    async def connect_readonly_async(self) -> "AsyncPostgresReader":
        psycopg = _psycopg()
        options = "-c default_transaction_read_only=on -c client_min_messages=warning"
        if self.schema is not None:
            options += f" -c search_path={self.schema}"
        try:
            raw = await psycopg.AsyncConnection.connect(
                self.conninfo, autocommit=True, cursor_factory=psycopg.AsyncClientCursor, options=options,
                application_name="lightml-dashboard")
        except psycopg.OperationalError as exc:
            raise NotARegistryError(f"cannot connect to {self.location}: {_first_line(exc)}") from None
        except psycopg.Error as exc:
            raise InvalidInputError(f"cannot read the URL {self.location} ({type(exc).__name__})") from None
        _adapt_types(raw)
        return AsyncPostgresReader(raw)

    def begin_snapshot(self, conn: PostgresConnection) -> None:
        conn.execute("BEGIN ISOLATION LEVEL REPEATABLE READ")

    # -- the write transaction -----------------------------------------------------------

    def begin_decide_lock(self, conn: PostgresConnection) -> None:
        psycopg = _psycopg()
        conn.execute("BEGIN")
        try:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('lightml:' || current_schema()))")
        except psycopg.errors.LockNotAvailable:
            conn.execute("ROLLBACK")
            raise RegistryLockedError(
                f"the registry is locked by another writer (waited {conn.timeout:g} s); nothing was written, try again"
            ) from None
        except BaseException:
            self.rollback(conn)
            raise

    def try_begin_decide_lock(self, conn: PostgresConnection, timeout: float) -> bool:
        conn.execute("BEGIN")
        try:
            (got,), = conn.execute("SELECT pg_try_advisory_xact_lock(hashtext('lightml:' || current_schema()))").fetchall()
        except BaseException:
            self.rollback(conn)
            raise
        if not got:
            conn.execute("ROLLBACK")
        return bool(got)

    def mark_write(self, conn: PostgresConnection) -> None:
        try:
            conn.execute(f"SET LOCAL {projections.guard.PG_SETTING} = 'on'")
        except BaseException:
            self.rollback(conn)
            raise

    def commit_write(self, conn: PostgresConnection) -> None:
        if conn.references_deferred:  # (never a table without its references)
            problems = conn.add_deferred_references()
            if problems:
                raise NotARegistryError(f"broken references: {problems[0]}")
        conn.execute("COMMIT")  # (the SET LOCAL mark ends with the transaction)

    def rollback(self, conn: PostgresConnection) -> None:
        if conn.in_transaction:
            conn.execute("ROLLBACK")  # (on a lost connection: only forgets the transaction)

    def checkpoint(self, conn: PostgresConnection) -> bool:
        return not conn.in_transaction  # nothing to do: the server keeps its own files in order

    # -- schema and format ---------------------------------------------------------------

    def table_names(self, conn: PostgresConnection) -> set[str]:
        return {row[0] for row in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
            "AND table_type = 'BASE TABLE'")}

    def create_log_tables(self, conn: PostgresConnection) -> None:
        for statement in EVENTS_DDL:
            conn.execute_native(statement)  # (PostgreSQL's own DDL: not translated)

    def set_meta(self, conn: PostgresConnection, key: str, value: str) -> None:
        conn.execute("INSERT INTO lightml_meta (key, value) VALUES (?, ?) "
                     "ON CONFLICT (key) DO UPDATE SET value = excluded.value", (key, value))

    def prepare_for_writing(self, conn: PostgresConnection) -> None:
        pass  # nothing to switch on: every PostgreSQL session can write alongside readers

    def defer_reference_checks(self, conn: PostgresConnection) -> None:
        conn.defer_references()  # the tables created next get their references after the rows

    def reference_problems(self, conn: PostgresConnection) -> list:
        return conn.add_deferred_references()

    # -- the dialect's lookups -----------------------------------------------------------

    def existing_metrics(self, conn: PostgresConnection, key_column: str, key: int,
                         pairs: set[tuple[str, str]]) -> dict:
        """The target's metrics in the families asked about, with one of the names asked
        about (one index range per family), kept when the pair itself was asked: arrays of
        the distinct families and names cost a fraction of an array of every pair, which
        the server parses and joins (about 8x slower for 1,000 families x 10 metrics)."""
        if len(pairs) <= 1:
            return self.existing_metrics_one_by_one(conn, key_column, key, pairs)
        families = sorted({family for family, _ in pairs})
        names = sorted({name for _, name in pairs})
        rows = conn.execute_native(
            f"SELECT family, metric_name, id, value FROM metrics WHERE {key_column} = %s "
            "AND family = ANY(%s::text[]) AND metric_name = ANY(%s::text[])", (key, families, names))
        return {(family, name): (mid, value) for family, name, mid, value in rows if (family, name) in pairs}

    # The one-by-one twin is shared SQL (one indexed lookup per pair): SQLite's, translated.
    existing_metrics_one_by_one = staticmethod(sqlite_lookups.existing_metrics_one_by_one)

    def metric_value_rows(self, conn: PostgresConnection) -> list[tuple] | None:
        rows = conn.execute(
            "SELECT type, payload, at, user, host, origin FROM events WHERE type IN (?, ?) ORDER BY seq",
            (ev.METRIC_INSERTED, ev.METRIC_OVERWRITTEN)).fetchall()
        out = []
        for event_type, payload, at, user, host, origin in rows:
            try:
                items = codec.loads(payload)["metrics"]
            except (ValueError, KeyError, TypeError):
                return None
            out.extend((event_type, m.get("metric_id"), m.get("value"), m.get("original_at"),
                        m.get("original_actor"), at, user, host, origin) for m in items)
        return out

    # -- copies --------------------------------------------------------------------------

    def attach_as_live(self, scratch: Any) -> None:
        """The registry copied, as one REPEATABLE READ snapshot, into a memory database
        attached to ``scratch`` as ``live`` (the log and every read table, same columns)."""
        from lightml.log.sqlite_engine import EVENTS_DDL as SQLITE_EVENTS_DDL

        scratch.execute("ATTACH DATABASE ? AS live", (f"file:lightml-live-{id(scratch)}?mode=memory&cache=shared",))
        conn = self.connect_readonly()
        try:
            self.begin_snapshot(conn)
            # every table's columns in one catalog query (one per table costs a round trip each)
            present: dict[str, list[str]] = {}
            for table, column in conn.execute(
                    "SELECT c.table_name, c.column_name FROM information_schema.columns c "
                    "JOIN information_schema.tables t ON t.table_schema = c.table_schema "
                    "AND t.table_name = c.table_name AND t.table_type = 'BASE TABLE' "
                    "WHERE c.table_schema = current_schema() ORDER BY c.table_name, c.ordinal_position"):
                present.setdefault(table, []).append(column)
            statements = [SQLITE_EVENTS_DDL[0], SQLITE_EVENTS_DDL[-1]] + [m.DDL for m in projections.MODULES]
            scratch.execute("BEGIN")
            for statement in statements:
                table = re.search(r"CREATE TABLE (\w+)", statement).group(1)
                if table not in present:
                    continue
                scratch.execute(statement.replace(f"CREATE TABLE {table}", f"CREATE TABLE live.{table}", 1))
                columns = present[table]
                quoted = ", ".join(f'"{c}"' for c in columns)
                cursor = conn.raw.cursor(name=f"lightml_copy_{table}")  # server-side: not all rows at once
                cursor.itersize = 20_000
                cursor.execute(f'SELECT {quoted} FROM "{table}"')
                insert = f'INSERT INTO live."{table}" ({quoted}) VALUES ({", ".join("?" * len(columns))})'
                while True:
                    rows = cursor.fetchmany(20_000)
                    scratch.executemany(insert, rows)
                    if len(rows) < 20_000:  # the last batch: no round trip to hear that nothing is left
                        break
                cursor.close()
            scratch.execute("COMMIT")
        finally:
            conn.close()

    def copy_into_file(self, conn: PostgresConnection, target: Path, *, single_file: bool) -> None:
        raise InvalidInputError(f"{self.location} is a PostgreSQL registry: copy it with lightml copy")
