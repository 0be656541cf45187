"""The PostgreSQL adapter's connections (``lightml.log.postgres_engine`` makes them): LightML's
shared SQL translated (``postgres_dialect``), values bound on the client, several rows sent
as one multi-row INSERT, NUL refused as the user's error, and a connection that outlives the
server's (see ``PostgresConnection``); and the dashboard's async reader."""

from __future__ import annotations

import re
from typing import Any, Callable, Iterable

from lightml.errors import InvalidInputError, NotARegistryError, RegistryUnavailableError
from lightml.log.postgres_dialect import translate

EXTRA = "pip install 'light-ml-registry[postgres]'"


def _psycopg():
    try:
        import psycopg
    except ImportError:
        raise InvalidInputError(f"a PostgreSQL registry needs the postgres extra: {EXTRA}") from None
    return psycopg


# "INSERT INTO t (a, b) VALUES (%s, %s)" and nothing after: rows can be sent together.
_PLAIN_INSERT = re.compile(r"^\s*INSERT\s+INTO\s+[^()]+\([^()]*\)\s*VALUES\s*(\([^()]*\))\s*$", re.IGNORECASE)
_ROWS_PER_INSERT = 1000


class PostgresConnection:
    """A psycopg connection speaking LightML's shared SQL (``engine.Connection``).

    It outlives the server's connection: when the server goes away (a restart, a network
    cut), a statement outside a transaction connects again and is tried once more (nothing
    was done yet); inside a transaction the transaction is lost, so that statement and the
    ones after it raise RegistryUnavailableError until the caller's ROLLBACK, and the next
    transaction connects again. A COMMIT that loses the connection says its outcome is not
    confirmed."""

    dialect = "postgresql"

    def __init__(self, raw: Any, engine: Any, timeout: float, reconnect: Callable[[], Any]) -> None:
        self.raw = raw
        self.engine = engine
        self.timeout = timeout  # (seconds a lock is waited for, for RegistryLockedError's message)
        self._reconnect = reconnect
        self._in_transaction = False  # a BEGIN of ours not yet ended by COMMIT or ROLLBACK
        self._lost: str | None = None  # why the open transaction was lost, until its ROLLBACK
        self._last_error = ""  # the last statement's error, for the message of an aborted COMMIT

    def execute(self, sql: str, parameters: Any = (), /) -> Any:
        bound = _bindable(parameters)
        return self._run(sql, lambda raw: raw.execute(translate(sql), bound), [bound])

    def executemany(self, sql: str, parameters: Iterable[Any], /) -> Any:
        """One statement per row, except a plain ``INSERT ... VALUES (...)`` of several rows:
        that goes as multi-row INSERTs of up to ``_ROWS_PER_INSERT`` rows (one statement and
        one round trip each, not one per row; each row's values are composed by psycopg as
        for a single row). An INSERT with ON CONFLICT keeps one statement per row, where a
        later row may change one an earlier row wrote."""
        bound = [_bindable(p) for p in parameters]
        translated = translate(sql)
        values = _PLAIN_INSERT.match(translated) if len(bound) > 1 else None

        def many(raw: Any) -> Any:
            cursor = raw.cursor()
            if values is None:
                cursor.executemany(translated, bound)
                return cursor
            head, row = translated[:values.start(1)], values.group(1)
            for start in range(0, len(bound), _ROWS_PER_INSERT):
                rows = ", ".join(cursor.mogrify(row, p) for p in bound[start:start + _ROWS_PER_INSERT])
                cursor.execute(head + rows)  # (no parameters: the values are in the text)
            return cursor
        return self._run(sql, many, bound)

    def execute_native(self, sql: str, parameters: Any = None) -> Any:
        """A statement in PostgreSQL's own words (DDL, arrays): not translated."""
        return self._run(sql, lambda raw: raw.execute(sql, parameters), [])

    def _run(self, sql: str, statement: Callable[[Any], Any], bound: list[Any]) -> Any:
        word = sql.lstrip()[:8].upper()
        ends = word.startswith(("COMMIT", "ROLLBACK")) and "TO" not in sql.upper().split()[:3]
        if self._lost is not None:  # the transaction is gone: only its ROLLBACK passes
            if ends and word.startswith("ROLLBACK"):
                self._in_transaction, self._lost = False, None
                return None
            raise self._unavailable(self._lost, committing=word.startswith("COMMIT"))
        if not self._in_transaction and self._gone():
            self._connect_again()
        if word.startswith("COMMIT") and self._aborted():
            # A statement of this transaction failed (a statement_timeout, say) and the server
            # aborted it; COMMIT would then answer ROLLBACK without an error: say so instead.
            self.raw.execute("ROLLBACK")
            self._in_transaction = False
            raise RegistryUnavailableError(
                f"{self.engine.location} aborted this transaction after an error ({self._last_error}); "
                "nothing of it was committed: try again")
        try:
            result = statement(self.raw)
        except Exception as exc:
            _refuse_nul(exc, bound)
            self._last_error = _first_line(exc)
            if not self._gone():
                if ends:
                    self._in_transaction = False
                raise
            why = self._last_error
            if not self._in_transaction:  # nothing was begun: connect again and try once more
                self._connect_again()
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


def _bindable(parameters: Any) -> Any:
    """SQLite's parameter values as PostgreSQL takes them: a bool is an integer there too."""
    if isinstance(parameters, dict):
        return {k: int(v) if type(v) is bool else v for k, v in parameters.items()}
    return [int(v) if type(v) is bool else v for v in parameters]


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
        bound = _bindable(parameters)
        try:
            cursor = await self.raw.execute(translate(sql), bound)
        except Exception as exc:
            _refuse_nul(exc, [bound])
            raise
        return await cursor.fetchall()

    async def close(self) -> None:
        await self.raw.close()


def _numeric_as_float(raw: Any) -> None:
    """``avg`` and ``sum`` give NUMERIC in PostgreSQL: read it as a float, as SQLite gives."""
    from psycopg.types.numeric import FloatLoader

    raw.adapters.register_loader("numeric", FloatLoader)


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]
