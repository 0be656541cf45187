"""The write transaction: what a command sees while it runs inside the decide lock
(``store.begin_write``: ``BEGIN IMMEDIATE`` on SQLite).

It gives the connection, never-used ids and event times, and appends events: ``emit``
appends now, ``defer`` hands an event to a *buffer* that appends it later, together with
its neighbours (what makes many small writes in one transaction cheap). Buffers are
flushed before any other append and before COMMIT, so an emitted event never overtakes
one deferred before it. ``savepoint()`` runs one command so that its failure undoes its
events, its buffered events, its ids and its after-commit hooks, and nothing else.

It knows units of work, not what they write: what a buffer merges, and which answers the
read cache may keep, are said by the modules that write (``lightml.write``).
"""

from __future__ import annotations

import getpass
import os
import socket
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable, ClassVar, Hashable, Protocol, TypeVar

import projections
from lightml.log import store
from lightml.log.engine import Connection
from lightml.log.events import CURRENT_VERSION, Change, encode


@dataclass(frozen=True, slots=True)
class Actor:
    """Who writes: stored with every event."""

    user: str | None
    host: str | None
    pid: int
    origin: str

    @classmethod
    def current(cls, origin: str) -> "Actor":
        try:
            user = getpass.getuser()
        except Exception:  # no user name in some containers
            user = None
        return cls(user, socket.gethostname() or None, os.getpid(), origin)


def utc_now() -> str:
    """UTC with microseconds, fixed width, so that text order is time order."""
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# An event as a buffer holds it and ``append`` takes it: (type, payload, who).
Entry = tuple[str, dict[str, Any], Actor]


class Buffer(Protocol):
    """Events of some types, held back by a transaction to be appended together.

    Made by ``WriteTransaction.buffer`` (one per kind and transaction) and fed by
    ``WriteTransaction.defer``. ``flush`` appends what it holds with ``tx.append`` (and
    forgets whatever it knew of the tables that the append may change); ``discard``
    forgets what it holds without appending it (its command's savepoint was rolled back).
    A buffer keeps the order of its own events, and the transaction flushes its buffers in
    the order they were made: event types whose order matters to each other belong to
    the same buffer.
    """

    EVENT_TYPES: ClassVar[tuple[str, ...]]

    def defer(self, event_type: str, payload: dict[str, Any], actor: Actor) -> None: ...

    def flush(self, tx: "WriteTransaction") -> None: ...

    def discard(self) -> None: ...


B = TypeVar("B", bound=Buffer)


_READ_TABLES = frozenset(projections.READ_TABLES)


class ReadCache:
    """Answers read inside one transaction (ids of names, the schema rules), each kept with
    the read tables it was read from, until an event changes one of those tables.

    Only this transaction writes while it runs, so an answer stays true until one of its
    own events changes a table it came from; which tables an event changes is
    ``projections.TABLES_CHANGED`` (derived from the projections' handlers).
    """

    __slots__ = ("_answers", "_tables")

    def __init__(self) -> None:
        self._answers: dict[Hashable, Any] = {}
        self._tables: set[str] = set()

    def __contains__(self, key: Hashable) -> bool:
        return key in self._answers

    def get(self, key: Hashable) -> Any:
        return self._answers.get(key)

    def put(self, key: Hashable, answer: Any, tables: frozenset[str]) -> Any:
        """Keep ``answer``, read from ``tables`` (read tables' names); returns it."""
        if not tables <= _READ_TABLES:  # a misspelt table would never be changed: a stale answer
            raise ValueError(f"not read tables: {sorted(tables - _READ_TABLES)}")
        self._answers[key] = answer
        self._tables.update(tables)
        return answer

    def clear(self) -> None:
        self._answers.clear()
        self._tables.clear()

    def forget_if_changed(self, events: list[Change]) -> None:
        tables = self._tables
        if tables and any(not tables.isdisjoint(projections.TABLES_CHANGED[e.type]) for e in events):
            self.clear()


_LAST_ID = "SELECT last_id FROM id_counter WHERE entity = ?"


@dataclass(frozen=True, slots=True)
class Known:
    """What a committed transaction knew (its read cache and last ids), and the log's last
    event then: a writer's next transaction starts from it when the log has not moved since
    (no one else wrote, so every answer in it is still true), which saves a lookup of the
    run, model, schema rules and counters per call (a round trip each on a server)."""

    last_seq: int
    cache: ReadCache
    last_ids: dict[str, int]


class WriteTransaction:
    """What a command sees: the connection (inside the transaction), ids, time, events."""

    def __init__(self, conn: Connection, known: Known | None = None) -> None:
        self.conn = conn
        row = conn.execute("SELECT seq, at FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        self._next_seq = row[0] + 1 if row else 1
        self._last_at = row[1] if row else ""
        self.actor: Actor | None = None  # the current command's caller (set by the writer)
        self.after_commit: list[Callable[[], None]] = []
        if known is not None and known.last_seq == self._next_seq - 1:
            self.cache, self._last_ids = known.cache, dict(known.last_ids)
        else:
            self.cache = ReadCache()  # shared by the commands of one group
            self._last_ids: dict[str, int] = {}
        self._buffers: dict[type, Buffer] = {}
        self._buffer_of: dict[str, Buffer] = {}  # event type -> the buffer that holds it back

    # -- ids and time --------------------------------------------------------------------

    def next_id(self, entity: str) -> int:
        """The next never-used id of ``entity`` (one counted in ``id_counter``), taken."""
        new_id = self.peek_id(entity)
        self._last_ids[entity] = new_id
        return new_id

    def peek_id(self, entity: str, last_id_query: str | None = None) -> int:
        """The id ``next_id`` would give, not taken (see ``take_ids``). The last id given is
        read from ``id_counter``, or by ``last_id_query`` (one value, or no row: none yet)
        for ids counted elsewhere; then remembered by the transaction."""
        last = self._last_ids.get(entity)
        if last is None:
            if last_id_query is None:
                row = self.conn.execute(_LAST_ID, (entity,)).fetchone()
            else:
                row = self.conn.execute(last_id_query).fetchone()
            last = self._last_ids[entity] = row[0] if row else 0
        return last + 1

    def take_ids(self, entity: str, last: int) -> None:
        """Take every id from ``peek_id`` up to ``last`` (a block of new ids)."""
        if entity not in self._last_ids:
            raise RuntimeError(f"take_ids({entity!r}) before peek_id")
        if last < self._last_ids[entity]:
            raise RuntimeError(f"ids of {entity} up to {last} were already taken")
        self._last_ids[entity] = last

    def now(self) -> str:
        # Never earlier than the last event, so --as-of follows log order even if clocks step back.
        self._last_at = max(utc_now(), self._last_at)
        return self._last_at

    # -- events --------------------------------------------------------------------------

    def emit(self, items: list[tuple[str, dict[str, Any]]], at: str | None = None) -> list[Change]:
        """Append events to the log and apply them to the read tables, in this transaction.

        Payloads are built from validated input, so they are not run through the pydantic
        schemas here (that costs more than the insert itself); ``lightml verify`` checks
        every stored payload against them.
        """
        self.flush()  # keep log order: events deferred before these come first
        actor = self.actor
        return self.append([(event_type, payload, actor) for event_type, payload in items], at)

    def buffer(self, kind: type[B]) -> B:
        """This transaction's buffer of ``kind``, made on first use; ``defer`` then sends it
        the events of its ``EVENT_TYPES``."""
        buffer = self._buffers.get(kind)
        if buffer is None:
            buffer = self._buffers[kind] = kind()
            for event_type in kind.EVENT_TYPES:
                self._buffer_of[event_type] = buffer
        return buffer  # type: ignore[return-value]

    def defer(self, event_type: str, payload: dict[str, Any]) -> None:
        """Hand an event to its buffer (see ``buffer``), to be appended at the next flush.
        The payload becomes the buffer's (it may merge it with its neighbour's)."""
        self._buffer_of[event_type].defer(event_type, payload, self.actor)

    def flush(self) -> None:
        """Append what every buffer holds (before any other append, and before COMMIT)."""
        for buffer in self._buffers.values():
            buffer.flush(self)

    def append(self, entries: list[Entry], at: str | None = None) -> list[Change]:
        """Append events now, buffers left as they are (what a buffer's ``flush`` calls)."""
        at = at or self.now()
        rows, events = [], []
        for event_type, payload, actor in entries:
            assert actor is not None
            seq = self._next_seq
            self._next_seq += 1
            rows.append((seq, event_type, CURRENT_VERSION[event_type], encode(payload), at,
                         actor.user, actor.host, actor.pid, actor.origin))
            events.append(Change(seq, event_type, payload))
        self.conn.executemany(store.INSERT_EVENT, rows)
        projections.apply(self.conn, events)
        self.cache.forget_if_changed(events)
        return events

    def commit(self) -> Known:
        """Append what the buffers hold, then COMMIT (``store.commit_write``); what it
        knew, for the writer's next transaction."""
        self.flush()
        store.commit_write(self.conn)
        return Known(self._next_seq - 1, self.cache, self._last_ids)

    # -- one command's share -------------------------------------------------------------

    def savepoint(self) -> "Savepoint":
        """``with tx.savepoint(): command(tx)``: an error (an ``Exception``) in the block
        rolls back to where it began: events, buffered events, ids, hooks. Anything else
        (Ctrl-C) goes up to the writer, which rolls back the whole transaction."""
        return Savepoint(self)


class Savepoint:
    """A SQL savepoint plus what the transaction keeps outside the database (see ``savepoint``)."""

    __slots__ = ("_tx", "_mark")

    def __init__(self, tx: WriteTransaction) -> None:
        self._tx = tx

    def __enter__(self) -> None:
        tx = self._tx
        tx.flush()  # the buffers start empty, so a rollback discards them whole
        self._mark = tx._next_seq, tx._last_at, dict(tx._last_ids), len(tx.after_commit)
        tx.conn.execute("SAVEPOINT command")

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> bool:
        if kind is not None and issubclass(kind, Exception):
            self._roll_back()
        elif kind is None:
            try:
                # (On PostgreSQL the command's last writes go with this statement: their error
                # is raised here, and undoes the command like any other.)
                self._tx.conn.execute("RELEASE command")
            except Exception:
                self._roll_back()
                raise
        return False

    def _roll_back(self) -> None:
        tx = self._tx
        tx.conn.execute("ROLLBACK TO command")
        tx.conn.execute("RELEASE command")
        tx._next_seq, tx._last_at, tx._last_ids, n_hooks = self._mark
        del tx.after_commit[n_hooks:]
        tx.cache.clear()
        for buffer in tx._buffers.values():
            buffer.discard()
