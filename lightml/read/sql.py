"""Read queries defined once, run on either kind of connection; and the read-only connections.

A query is a generator function of its arguments: it yields a ``Statement``, receives that
statement's rows (a list of tuples), as often as it needs, and returns its answer. It does
no I/O itself (sans-I/O), so one definition serves two drivers:

- ``run(conn, steps)`` on a connection of the registry's storage engine (``sqlite3`` for a
  SQLite file): the handles, the CLI, the report;
- ``await run_async(conn, steps)`` on the engine's async read-only connection
  (``aiosqlite``): the dashboard, which so never blocks its event loop on a read.

``@query`` makes a generator function a ``Query``, which keeps the plain call shape of a
sync read function: ``catalog.list_runs(conn, include_hidden=True)`` runs it on a sqlite3
connection, ``await catalog.list_runs.run_async(aconn)`` on aiosqlite, and inside another
query ``runs = yield from catalog.list_runs.steps()`` makes it a part of a larger answer.
"""

from __future__ import annotations

import functools
import os
from contextlib import asynccontextmanager, contextmanager
from typing import (TYPE_CHECKING, Any, AsyncIterator, Callable, Generator, Generic, Iterator, NamedTuple, ParamSpec,
                    Sequence, TypeVar)

from lightml.log.engine import dialect_of

if TYPE_CHECKING:  # aiosqlite is imported by the dashboard only
    import aiosqlite

    from lightml.log.engine import Connection

P = ParamSpec("P")
R = TypeVar("R")


class Statement(NamedTuple):
    """One SQL statement a query asks to have run, with its parameters. ``postgresql``: the
    same question in PostgreSQL's words, where the shared SQL cannot ask it (SQLite's JSON
    functions); same parameters, same rows."""

    sql: str
    params: Sequence[Any] = ()
    postgresql: str | None = None

    def sql_for(self, conn: Any) -> str:
        if self.postgresql is not None and dialect_of(conn) == "postgresql":
            return self.postgresql
        return self.sql


Rows = list[tuple[Any, ...]]
# What a query's generator is: it yields statements, is sent their rows, and returns R.
Steps = Generator[Statement, Rows, R]


def run(conn: Connection, steps: Steps[R]) -> R:
    """Run a query's steps on a (sync) connection and return its answer."""
    rows: Rows | None = None
    while True:
        try:
            statement = steps.send(rows)  # (the first send, of None, starts the generator)
        except StopIteration as done:
            return done.value
        rows = conn.execute(statement.sql_for(conn), statement.params).fetchall()


async def run_async(conn: aiosqlite.Connection, steps: Steps[R]) -> R:
    """Run a query's steps on an async connection (aiosqlite, or the PostgreSQL adapter's
    reader) and return its answer."""
    rows: Rows | None = None
    while True:
        try:
            statement = steps.send(rows)
        except StopIteration as done:
            return done.value
        rows = list(await conn.execute_fetchall(statement.sql_for(conn), statement.params))


class Query(Generic[P, R]):
    """A read query: ``steps(*args)`` makes its generator; calling the query with a
    connection runs it there, ``run_async`` runs it on an async one (aiosqlite)."""

    def __init__(self, steps: Callable[P, Steps[R]]) -> None:
        self.steps = steps
        functools.update_wrapper(self, steps)

    def __call__(self, conn: Connection, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return run(conn, self.steps(*args, **kwargs))

    async def run_async(self, conn: aiosqlite.Connection, /, *args: P.args, **kwargs: P.kwargs) -> R:
        return await run_async(conn, self.steps(*args, **kwargs))

    def __repr__(self) -> str:
        return f"<query {self.steps.__module__}.{self.steps.__qualname__}>"


def query(steps: Callable[P, Steps[R]]) -> Query[P, R]:
    """Decorator: the generator function ``steps`` as a ``Query``."""
    return Query(steps)


def first(rows: Rows) -> tuple[Any, ...] | None:
    """The first row, or None (what ``cursor.fetchone()`` gives)."""
    return rows[0] if rows else None


@contextmanager
def reading(db: str | os.PathLike, *, snapshot: bool = False) -> Iterator[Connection]:
    """A read-only connection to the registry at ``db``, closed at the end of the
    block. Anything but an event-sourced registry is refused with the way out, and a
    registry of an earlier 2.x build gets its missing read tables first
    (``log.opening.open_registry_readonly``). With ``snapshot``, every read in the block
    sees the registry as it was at the first one (one read transaction)."""
    from lightml.log.engine import engine_of
    from lightml.log.opening import open_registry_readonly

    conn = open_registry_readonly(db)
    try:
        if snapshot:  # ended by close(): a read transaction has nothing to commit
            engine_of(conn).begin_snapshot(conn)
        yield conn
    finally:
        conn.close()


@asynccontextmanager
async def reading_async(db: str | os.PathLike) -> AsyncIterator[aiosqlite.Connection]:
    """An async read-only connection to ``db`` (the dashboard's, which checked the registry
    once with ``reading`` when it started), from its storage engine
    (``StorageEngine.connect_readonly_async``): it never writes, and never blocks a writer
    in another process."""
    from lightml.log.engine import engine_for

    conn = await engine_for(db).connect_readonly_async()
    try:
        yield conn
    finally:
        await conn.close()
