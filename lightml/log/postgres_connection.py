"""The PostgreSQL adapter's connections (``lightml.log.postgres_engine`` makes them): LightML's
shared SQL translated (``postgres_dialect``), values bound on the client, several rows sent
as one multi-row INSERT, NUL refused as the user's error, and a connection that outlives the
server's (see ``PostgresConnection``); and the dashboard's async reader."""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable

from lightml.errors import InvalidInputError, NotARegistryError, RegistryUnavailableError
from lightml.log.postgres_dialect import translate, without_references

EXTRA = "pip install 'light-ml-registry[postgres]'"


def _psycopg():
    try:
        import psycopg
    except ImportError:
        raise InvalidInputError(f"a PostgreSQL registry needs the postgres extra: {EXTRA}") from None
    return psycopg


# "INSERT INTO t (a, b) VALUES (%s, %s)" and nothing after: rows can go by COPY.
_PLAIN_INSERT = re.compile(
    r"^\s*INSERT\s+INTO\s+([^()\s]+)\s*(\([^()]*\))\s*VALUES\s*\(\s*%s(?:\s*,\s*%s)*\s*\)\s*$",
    re.IGNORECASE)
# A statement whose answer nobody reads: a write without RETURNING (LightML reads no row
# counts), or the write mark.
_ANSWERLESS = re.compile(r"^\s*(?:INSERT|UPDATE|DELETE|SET\s+LOCAL)\b(?!.*\bRETURNING\b)", re.IGNORECASE | re.DOTALL)
_COPY_FROM_ROWS = 64  # from this many rows a plain INSERT goes by COPY (several times faster)
_QUEUE_LIMIT = 1 << 20  # characters of held-back statements, sent by themselves beyond this


class PostgresConnection:
    """A psycopg connection speaking LightML's shared SQL (``engine.Connection``).

    Round trips are what a small write costs on a server, so inside a transaction a
    statement whose answer nobody reads (``BEGIN``, an INSERT, UPDATE or DELETE, the write
    mark) is held back, composed, and sent in one round trip with the next statement that
    is answered (a SELECT, SAVEPOINT, RELEASE, COMMIT): a one-metric log is one round trip
    for its writes and its COMMIT together. An error of a held-back statement is therefore
    raised by that next statement, still inside the same transaction, so nothing of it is
    committed. ``ROLLBACK`` (and ``ROLLBACK TO``, issued after the savepoint that sent
    everything before it) drops what is held back. A plain INSERT of many rows goes by
    COPY.

    It outlives the server's connection: when the server goes away (a restart, a network
    cut), a statement outside a transaction, or the first round trip of one (nothing of it
    was done yet), connects again and is tried once more; later in a transaction the
    transaction is lost, so that statement and the ones after it raise
    RegistryUnavailableError until the caller's ROLLBACK, and the next transaction connects
    again. A COMMIT that loses the connection says its outcome is not confirmed."""

    dialect = "postgresql"

    def __init__(self, raw: Any, engine: Any, timeout: float, reconnect: Callable[[], Any]) -> None:
        self.raw = raw
        self.engine = engine
        self.timeout = timeout  # (seconds a lock is waited for, for RegistryLockedError's message)
        self._reconnect = reconnect
        self._in_transaction = False  # a BEGIN of ours not yet ended by COMMIT or ROLLBACK
        self._lost: str | None = None  # why the open transaction was lost, until its ROLLBACK
        self._last_error = ""  # the last statement's error, for the message of an aborted COMMIT
        self._held: list[str] = []  # composed statements not sent yet (see the class's text)
        self._held_size = 0
        self._unsent_begin = False  # the transaction's BEGIN is still held: nothing was sent
        # While references are deferred (a bulk rebuild): the ALTER TABLEs that add the
        # references of the tables created since, taken out of their CREATE TABLE.
        self._deferred_references: list[str] | None = None

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        """The statement's cursor; None for one held back (its answer is never read)."""
        bound = parameters
        translated = translate(sql)
        if self._deferred_references is not None:
            translated, references = without_references(translated)
            self._deferred_references.extend(references)
        if self._holds(sql):
            self._hold([self._compose(translated, bound)])
            return None
        return self._run(sql, lambda raw: self._send(raw, translated, bound), [bound])

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> None:
        """Inside a transaction: a plain ``INSERT ... VALUES (%s, ...)`` of many rows by COPY,
        any other write held back, one composed statement per row. Outside one (rare: a
        schema's set-up): psycopg's ``executemany``."""
        bound = parameters if isinstance(parameters, list) else list(parameters)
        if not bound:
            return None
        translated = translate(sql)
        if not self._holds(sql):
            self._run(sql, lambda raw: raw.cursor().executemany(translated, bound), bound)
            return None
        plain = _PLAIN_INSERT.match(translated) if len(bound) >= _COPY_FROM_ROWS else None
        if plain is None:
            self._hold([self._compose(translated, p) for p in bound])
            return None
        copy = f"COPY {plain.group(1)} {plain.group(2)} FROM STDIN"

        def copy_rows(raw: Any) -> None:
            self._send_held(raw)
            with raw.cursor().copy(copy) as rows:
                for row in bound:
                    rows.write_row(row)
        self._run(sql, copy_rows, bound)
        return None

    def execute_native(self, sql: str, parameters: Any = None) -> Any:
        """A statement in PostgreSQL's own words (DDL, arrays): not translated, never held."""
        return self._run(sql, lambda raw: (self._send_held(raw), raw.execute(sql, parameters))[1], [])

    # -- references added after the rows ---------------------------------------------------

    def defer_references(self) -> None:
        """Tables created from now on get their references (foreign keys) only at
        ``add_deferred_references``: a rebuild then checks them once, over all rows, instead
        of once per row (about three times faster)."""
        self._deferred_references = []

    @property
    def references_deferred(self) -> bool:
        return bool(self._deferred_references)

    def add_deferred_references(self) -> list[str]:
        """Add the deferred references; the first broken one's error, or [] when all hold."""
        statements, self._deferred_references = self._deferred_references or [], None
        for statement in statements:
            try:
                self.execute_native(statement)
            except _psycopg().errors.ForeignKeyViolation as exc:
                return [_first_line(exc)]
        return []

    # -- holding statements back ---------------------------------------------------------

    def _holds(self, sql: str) -> bool:
        """Whether ``sql`` is held back rather than sent now; a held BEGIN starts the transaction."""
        if self._lost is not None:
            return False  # (_run refuses it with the reason)
        if not self._in_transaction:
            if not sql.lstrip()[:5].upper() == "BEGIN":
                return False
            if self._gone():  # a server known to be away: connect before anything else
                self._connect_again()
            self._in_transaction = self._unsent_begin = True
            return True
        return bool(_ANSWERLESS.match(sql))

    def _compose(self, translated: str, bound: Any) -> str:
        """The statement with its values in it, as psycopg's ClientCursor writes them."""
        try:
            return self.raw.cursor().mogrify(translated, bound)
        except Exception as exc:
            _refuse_nul(exc, [bound])
            raise

    def _hold(self, statements: list[str]) -> None:
        self._held.extend(statements)
        self._held_size += sum(map(len, statements))
        if self._held_size > _QUEUE_LIMIT:  # a bulk write: send what is held, answer unread
            self._run("(held statements)", self._send_held, [])

    def _take_held(self) -> list[str]:
        held, self._held, self._held_size = self._held, [], 0
        return held

    def _send_held(self, raw: Any) -> None:
        held = self._take_held()
        if held:
            raw.execute("; ".join(held))  # (no parameters: psycopg sends the text as it is)

    def _send(self, raw: Any, translated: str, bound: Any) -> Any:
        """The held statements and this one, in one round trip; the cursor of this one."""
        if not self._held:
            return raw.execute(translated, bound)
        this = raw.cursor().mogrify(translated, bound)  # (a value it refuses leaves the held ones held)
        cursor = raw.execute("; ".join([*self._take_held(), this]))
        while cursor.nextset():  # (the cursor starts at the first statement's result)
            pass
        return cursor

    # -- sending -------------------------------------------------------------------------

    def _run(self, sql: str, statement: Callable[[Any], Any], bound: list[Any]) -> Any:
        word = sql.lstrip()[:8].upper()
        ends = word.startswith(("COMMIT", "ROLLBACK")) and "TO" not in sql.upper().split()[:3]
        if self._lost is not None:  # the transaction is gone: only its ROLLBACK passes
            if ends and word.startswith("ROLLBACK"):
                self._in_transaction, self._lost = False, None
                return None
            raise self._unavailable(self._lost, committing=word.startswith("COMMIT"))
        if word.startswith("ROLLBACK"):  # what is held back would be undone anyway
            self._take_held()
            if ends and self._deferred_references:  # (the tables that lacked them are gone)
                self._deferred_references = None
            if ends and self._unsent_begin:  # nothing of the transaction reached the server
                self._in_transaction = self._unsent_begin = False
                return None
        if not self._in_transaction and self._gone():
            self._connect_again()
        if word.startswith("COMMIT") and not self._unsent_begin and self._aborted():
            # A statement of this transaction failed (a statement_timeout, say) and the server
            # aborted it; COMMIT would then answer ROLLBACK without an error: say so instead.
            self._take_held()
            self.raw.execute("ROLLBACK")
            self._in_transaction = False
            raise RegistryUnavailableError(
                f"{self.engine.location} aborted this transaction after an error ({self._last_error}); "
                "nothing of it was committed: try again")
        first_round_trip, self._unsent_begin = self._unsent_begin, False
        held = list(self._held) if first_round_trip else []
        try:
            result = statement(self.raw)
        except Exception as exc:
            _refuse_nul(exc, bound)
            self._last_error = _first_line(exc)
            if not self._gone():
                if ends:
                    self._in_transaction = False
                    if self._server_in_transaction():  # a held statement failed before the COMMIT
                        self.raw.execute("ROLLBACK")
                raise
            why = self._last_error
            if not self._in_transaction or first_round_trip:
                # Nothing was begun, or the transaction's first round trip never arrived:
                # connect again and try once more.
                self._connect_again()
                self._held, self._held_size = held, sum(map(len, held))
                result = statement(self.raw)
            elif ends:
                self._in_transaction = False
                raise self._unavailable(why, committing=word.startswith("COMMIT")) from None
            else:
                self._lost = why
                raise self._unavailable(why, committing=False) from None
        if word.startswith("BEGIN"):
            self._in_transaction = True
        elif ends:
            self._in_transaction = False
        return result

    def _gone(self) -> bool:
        return self.raw.closed or self.raw.broken

    def _aborted(self) -> bool:
        return self.raw.info.transaction_status == _psycopg().pq.TransactionStatus.INERROR

    def _server_in_transaction(self) -> bool:
        return self.raw.info.transaction_status != _psycopg().pq.TransactionStatus.IDLE

    def _connect_again(self) -> None:
        try:
            self.raw = self._reconnect()
        except NotARegistryError as exc:  # the server is still away
            raise RegistryUnavailableError(f"{exc}; nothing of this call was written, try again") from None

    def _unavailable(self, why: str, *, committing: bool) -> RegistryUnavailableError:
        outcome = ("its COMMIT was not confirmed (look before you log it again: a metric that exists is "
                   "skipped)") if committing else "this call's transaction was not committed"
        return RegistryUnavailableError(
            f"lost the connection to {self.engine.location} ({why}); {outcome}; the next call connects again")

    @property
    def in_transaction(self) -> bool:
        return self._in_transaction

    def close(self) -> None:
        self.raw.close()

    def __repr__(self) -> str:
        return f"<PostgresConnection {self.engine.location}>"


def _refuse_nul(exc: Exception, bound: list[Any]) -> None:
    """PostgreSQL's text cannot hold NUL (U+0000), which SQLite's can: psycopg refuses such a
    value while composing the statement, before anything is sent (``ClientCursor``). Raise
    that as the user's error, naming the value, instead of the driver's DataError; return
    when ``exc`` is anything else. (Checked only after a failure: the common path pays
    nothing.)"""
    if not isinstance(exc, _psycopg().DataError):
        return
    for parameters in bound:
        for value in parameters.values() if isinstance(parameters, dict) else parameters:
            if isinstance(value, str) and "\x00" in value:
                shown = value if len(value) <= 60 else value[:57] + "..."
                raise InvalidInputError(
                    f"{shown!r} contains NUL (U+0000), which a PostgreSQL registry cannot store") from None


class AsyncPostgresReader:
    """The dashboard's read-only connection to a PostgreSQL registry, with the two calls
    ``lightml.read.sql.run_async`` makes of an aiosqlite one."""

    dialect = "postgresql"

    def __init__(self, raw: Any) -> None:
        self.raw = raw

    async def execute_fetchall(self, sql: str, parameters: Any = ()) -> list[tuple]:
        try:
            cursor = await self.raw.execute(translate(sql), parameters)
        except Exception as exc:
            _refuse_nul(exc, [parameters])
            raise
        return await cursor.fetchall()

    async def close(self) -> None:
        await self.raw.close()


def _adapt_types(raw: Any) -> None:
    """Values as SQLite gives and takes them: ``avg`` and ``sum`` give NUMERIC in PostgreSQL,
    read as a float; a bool is written as the integer 0 or 1 (SQLite has no bool type, and
    LightML's columns are integers)."""
    from psycopg.adapt import Dumper
    from psycopg.types.numeric import FloatLoader

    class BoolAsInteger(Dumper):
        oid = _psycopg().postgres.types["int8"].oid

        def dump(self, obj: bool) -> bytes:
            return b"1" if obj else b"0"

        def quote(self, obj: bool) -> bytes:  # (a literal in a composed statement: no quotes)
            return self.dump(obj)

    raw.adapters.register_loader("numeric", FloatLoader)
    raw.adapters.register_dumper(bool, BoolAsInteger)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
