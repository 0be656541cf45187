"""The single writer of a process: a thread fed by a queue, committing in groups.

Every write command is a function ``command(tx) -> result`` run on this thread (or, see
``run_now``, on a waiting caller's) inside a ``BEGIN IMMEDIATE`` transaction: it reads the projections, decides, and appends events
with ``tx.emit`` (which also applies them to the read tables). Commands that queue up
while a transaction runs share the next one (group commit); each runs in its own
savepoint, so one command's error never undoes another's work. A caller's future resolves
only after COMMIT. A blocking caller (the sync handle) runs its command on its own thread
when the writer is idle and the write lock is free (``run_now``): handing it to the writer
thread and waiting for the answer cost more than the command itself.

Metric logs are "deferrable" commands (``decide(tx)`` writes nothing): a run of them in
a group is looked up with one ``prefetch`` per target, decided one by one, and appended
together at the next ``flush``, neighbouring events of one target merged (``defer``).

Every transaction is begun with ``store.begin_write`` and ended with ``store.commit_write``
(the read tables' guards let only such marked transactions write). The WAL is folded into
the ``.db`` (a TRUNCATE checkpoint) when the last handle of the process lets the writer go,
at interpreter exit, and after a second without commits, so that the ``.db`` alone is
always a complete copy of the registry; a checkpoint never waits for or fails a caller.
"""

from __future__ import annotations

import atexit
import getpass
import os
import queue
import socket
import sqlite3
import threading
import warnings
from concurrent.futures import Future
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Callable

import projections
from lightml.log import store
from lightml.log.events import CURRENT_VERSION, METRIC_INSERTED, METRIC_OVERWRITTEN, Change, encode

MAX_GROUP = 512  # commands per transaction; bounds how long one group holds the lock
# Seconds without a commit after which the writer folds the WAL into the .db, so that a
# handle left open (a notebook) still leaves a file that is complete on its own.
IDLE_CHECKPOINT = 1.0


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


# The highest id ever given. Metric ids come only from metric_inserted events, whose id
# ranges never overlap and are never removed, so the last range holds the highest one; the
# other kinds keep a counter row (a counter row per metric log would cost a page per commit).
_LAST_METRIC_ID = "SELECT last_metric_id FROM metric_insert_range ORDER BY first_metric_id DESC LIMIT 1"
_LAST_ID = "SELECT last_id FROM id_counter WHERE entity = ?"
_CACHE_SAFE = {METRIC_INSERTED, METRIC_OVERWRITTEN}
_INSERT_EVENT = f"INSERT INTO events ({store.EVENT_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"


class WriteTransaction:
    """What a command sees: the connection (inside the transaction), id and seq assignment, emit."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        row = conn.execute("SELECT seq, at FROM events ORDER BY seq DESC LIMIT 1").fetchone()
        self._next_seq = row[0] + 1 if row else 1
        self._last_at = row[1] if row else ""
        self._last_ids: dict[str, int] = {}
        self.actor: Actor | None = None
        self.after_commit: list[Callable[[], None]] = []
        # Lookups (run and model ids, schema rules) shared by the commands of one group.
        # Only this transaction writes while it runs, and only events other than metric
        # logs change what they read, so those events clear it.
        self.cache: dict[Any, Any] = {}
        self._deferred: list[tuple[str, dict[str, Any], Actor | None]] = []
        self._deferred_ids: set[int] = set()  # the metric ids of the last deferred event
        # (key column, key) -> {(family, metric): (metric id, value)} decided, not yet appended
        self.pending_metrics: dict[tuple, dict[tuple, tuple]] = {}
        # (key column, key) -> (pairs asked about, {pair: (metric id, value)} of those that
        # exist): looked up once for a run of deferrable commands (see LogMetrics.prefetch)
        self.prefetched: dict[tuple, tuple] = {}

    def next_id(self, entity: str) -> int:
        """The next never-used id for ``entity`` (run, model, checkpoint, metric), taken."""
        new_id = self.peek_id(entity)
        self._last_ids[entity] = new_id
        return new_id

    def peek_id(self, entity: str) -> int:
        """The id ``next_id`` would give, not taken (see ``take_ids``)."""
        last = self._last_ids.get(entity)
        if last is None:
            if entity == "metric":
                row = self.conn.execute(_LAST_METRIC_ID).fetchone()
            else:
                row = self.conn.execute(_LAST_ID, (entity,)).fetchone()
            last = self._last_ids[entity] = row[0] if row else 0
        return last + 1

    def take_ids(self, entity: str, last: int) -> None:
        """Take every id from ``peek_id`` up to ``last`` (a bulk call's block of new ids)."""
        if last < self.peek_id(entity) - 1:
            raise RuntimeError(f"ids of {entity} up to {last} were already taken")
        self._last_ids[entity] = last

    def now(self) -> str:
        # Never earlier than the last event, so --as-of follows log order even if clocks step back.
        self._last_at = max(utc_now(), self._last_at)
        return self._last_at

    def emit(self, items: list[tuple[str, dict[str, Any]]], at: str | None = None) -> list[Change]:
        """Append events to the log and apply them to the read tables, in this transaction.

        Payloads are built by ``commands`` from validated input, so they are not run
        through the pydantic schemas here (that costs more than the insert itself);
        ``lightml verify`` checks every stored payload against them.
        """
        self.flush()  # keep log order: deferred events of earlier commands come first
        return self._append([(event_type, payload, self.actor) for event_type, payload in items], at)

    def defer(self, event_type: str, payload: dict[str, Any]) -> None:
        """Queue a metric event to be appended with the rest of the group's (see ``flush``).

        It joins the event queued just before it when that one has the same type, target
        (model_id, checkpoint_id, step) and actor: when the async handle batches a hundred
        single-metric calls into one transaction, one event listing a hundred metrics costs
        a fraction of a hundred events (one JSON text, one log row, one id range) and says
        the same thing. Log order is kept (only neighbours join), and an overwrite of a
        metric the queued event already changes starts a new event, so that an event
        changes each metric at most once (a metric's history has one row per event).
        (Inserts never repeat an id.) The payload, and its metrics list, become the
        transaction's: the caller builds them fresh for each call.
        """
        metrics = payload["metrics"]
        overwrite = event_type == METRIC_OVERWRITTEN
        if self._deferred:
            last_type, last_payload, last_actor = self._deferred[-1]
            if (last_type == event_type and (last_actor is self.actor or last_actor == self.actor)
                    and last_payload["model_id"] == payload["model_id"]
                    and last_payload["checkpoint_id"] == payload["checkpoint_id"]
                    and last_payload["step"] == payload["step"]):
                ids = [m["metric_id"] for m in metrics] if overwrite else ()
                if self._deferred_ids.isdisjoint(ids):
                    last_payload["metrics"].extend(metrics)
                    self._deferred_ids.update(ids)
                    return
        self._deferred.append((event_type, payload, self.actor))
        self._deferred_ids = {m["metric_id"] for m in metrics} if overwrite else set()

    def flush(self) -> None:
        """Append the deferred events, all in one batch; forget the group's pending and
        prefetched metrics (the tables now say what they said)."""
        deferred, self._deferred, self._deferred_ids = self._deferred, [], set()
        try:
            if deferred:
                self._append(deferred, None)
        finally:  # appended, or failed and about to be rolled back: either way no longer pending
            self.pending_metrics.clear()
            self.prefetched.clear()

    def _append(self, entries: list[tuple[str, dict[str, Any], Actor | None]], at: str | None) -> list[Change]:
        at = at or self.now()
        rows, events = [], []
        for event_type, payload, actor in entries:
            assert actor is not None
            seq = self._next_seq
            self._next_seq += 1
            version = CURRENT_VERSION[event_type]
            rows.append((seq, event_type, version, encode(payload), at, actor.user, actor.host, actor.pid, actor.origin))
            events.append(Change(seq, event_type, payload))
        self.conn.executemany(_INSERT_EVENT, rows)
        projections.apply(self.conn, events)
        if any(event.type not in _CACHE_SAFE for event in events):
            self.cache.clear()
        return events

    def _mark(self) -> tuple:
        return self._next_seq, self._last_at, dict(self._last_ids), len(self.after_commit)

    def _reset(self, mark: tuple) -> None:
        self._next_seq, self._last_at, self._last_ids, n_hooks = mark
        del self.after_commit[n_hooks:]
        self.cache.clear()
        self.prefetched.clear()
        self.pending_metrics.clear()
        self._deferred, self._deferred_ids = [], set()


Command = Callable[[WriteTransaction], Any]
_STOP = object()


class Writer:
    """One per (process, database file, settings): serializes all of that process's writes."""

    def __init__(self, path: str, timeout: float, synchronous: str) -> None:
        self.path, self.timeout, self.synchronous = path, timeout, synchronous
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = -1
        self._lock = threading.Lock()
        # Held while a group runs on the connection, by the writer thread or by run_now.
        self._busy = threading.Lock()
        self._conn: sqlite3.Connection | None = None  # the writer thread's, once connected
        self._queued = 0  # queue items not finished yet (under _lock): run_now never overtakes them
        # Commits so far, and as of the last checkpoint / the last idle check (see _idle).
        self._commits = self._checkpointed = self._seen = 0

    def submit(self, command: Command, actor: Actor) -> Future:
        """Queue one command; the future resolves to its result (or error) after COMMIT."""
        return self._put([command], actor, many=False)

    def run_now(self, command: Command, actor: Actor) -> Future:
        """Run one command on the calling thread if the writer is idle and the write lock
        is free, else queue it; in the first case the future is done (after COMMIT) when
        this returns.

        For callers that wait for the answer anyway: the thread hop to the writer and back
        (two wake-ups and a GIL handover) took longer than a small command's transaction.
        Queued work is never overtaken, the connection is used by one thread at a time
        (``_busy``), and a lock held by another process is waited for by the writer thread,
        so that Ctrl-C still interrupts the caller's wait."""
        conn = self._conn
        if conn is None or self._pid != os.getpid() or self._queued or not self._busy.acquire(blocking=False):
            return self.submit(command, actor)
        try:
            if self._conn is conn and not self._queued and store.try_begin_write(conn, self.timeout):
                future: Future = Future()
                self._commit_group(conn, [([command], actor, future, False)], begun=True)
                return future
        except BaseException:  # e.g. Ctrl-C right after BEGIN: leave no transaction open
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        finally:
            self._busy.release()
        return self.submit(command, actor)

    def submit_many(self, commands: list[Command], actor: Actor) -> Future:
        """Queue commands for the same transaction; the future resolves to a list of
        ``(result, exception)`` pairs, one per command, after COMMIT. One wake-up for all of
        them: what the async handle uses to batch the calls of many coroutines."""
        return self._put(commands, actor, many=True)

    def _put(self, commands: list[Command], actor: Actor, many: bool) -> Future:
        future: Future = Future()
        with self._lock:
            if self._thread is None or self._pid != os.getpid():  # first use, or a forked child
                self._queue = queue.SimpleQueue()
                if self._pid != os.getpid():  # the parent's connection, lock and queue are not ours
                    self._busy, self._conn, self._queued = threading.Lock(), None, 0
                self._pid = os.getpid()
                self._thread = threading.Thread(target=self._run, name="lightml-writer", daemon=True)
                self._thread.start()
            self._queued += 1
            self._queue.put((commands, actor, future, many))
        return future

    def _finished(self, n_items: int) -> None:
        with self._lock:
            self._queued -= n_items

    def stop(self) -> None:
        with self._lock:
            thread, self._thread = self._thread, None
            if thread is not None and self._pid == os.getpid():
                self._queue.put(_STOP)
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    # -- the writer thread ---------------------------------------------------------------

    def _run(self) -> None:
        pending: queue.SimpleQueue = self._queue
        conn = None
        try:
            conn = store.connect(self.path, timeout=self.timeout, synchronous=self.synchronous)
        except BaseException as exc:  # report to whoever waits, then keep failing fast
            self._fail_forever(pending, exc)
            return
        self._conn = conn
        try:
            while True:
                try:
                    # Not a per-call timer: a wake-up per idle second, on this thread only.
                    item = pending.get(timeout=IDLE_CHECKPOINT)
                except queue.Empty:
                    self._idle()
                    continue
                if item is _STOP:
                    return
                group = [item]
                while len(group) < MAX_GROUP:
                    try:
                        nxt = pending.get_nowait()
                    except queue.Empty:
                        break
                    if nxt is _STOP:
                        pending.put(_STOP)
                        break
                    group.append(nxt)
                try:
                    with self._busy:
                        self._commit_group(conn, group)
                except BaseException as exc:  # a bug must not leave callers waiting forever
                    for entry in group:
                        if not entry[2].done():
                            entry[2].set_exception(exc)
                    if not isinstance(exc, Exception):
                        raise
                finally:
                    self._finished(len(group))
        finally:
            with self._busy:  # a run_now in progress finishes first
                if self._conn is conn:
                    self._conn = None
                self._checkpoint(conn)  # the last writer of the process is done
                conn.close()

    def _idle(self) -> None:
        """A second passed without queued work: checkpoint once commits (here or by
        ``run_now``) have stopped for a whole second; retried while a reader prevents it."""
        commits = self._commits
        if commits == self._checkpointed:
            return
        if commits != self._seen:  # still committing (run_now does not wake this thread)
            self._seen = commits
            return
        if self._busy.acquire(blocking=False):  # a caller's command runs now: later
            try:
                if self._conn is not None:
                    self._checkpoint(self._conn)
            finally:
                self._busy.release()

    def _checkpoint(self, conn: sqlite3.Connection) -> None:
        """Fold the WAL into the .db (under ``_busy``); never waits, never raises."""
        commits = self._commits
        try:
            if store.checkpoint(conn):
                self._checkpointed = commits
        except sqlite3.Error:  # e.g. the file went away: nothing a caller must hear of
            pass

    def checkpoint_at_exit(self) -> None:
        """At interpreter exit (the writer thread is a daemon and never reaches its
        ``finally``): checkpoint if the connection is free and something was committed."""
        if self._pid != os.getpid() or self._commits == self._checkpointed:
            return
        if self._busy.acquire(timeout=IDLE_CHECKPOINT):
            try:
                if self._conn is not None and not self._conn.in_transaction:
                    self._checkpoint(self._conn)
            finally:
                self._busy.release()

    def _fail_forever(self, pending: queue.SimpleQueue, exc: BaseException) -> None:
        with self._lock:
            self._thread = None  # the next submit starts afresh
        while True:
            try:
                item = pending.get_nowait()
            except queue.Empty:
                return
            if item is not _STOP:
                item[2].set_exception(exc)
                self._finished(1)

    def _commit_group(self, conn: sqlite3.Connection, group: list, begun: bool = False) -> None:
        """Run a group of queue items in one transaction (``begun``: BEGIN IMMEDIATE is done)."""
        group = [item for item in group if item[2].set_running_or_notify_cancel()]
        # One (result, exception) per command, per queue item.
        outcomes: list[list[tuple[Any, BaseException | None]]] = []
        alone = len(group) == 1 and len(group[0][0]) == 1  # no one else's work to protect
        # Every command with its caller and where its outcome goes, in queue order.
        flat: list[tuple[Actor, Command, list]] = []
        for commands, actor, _, _ in group:
            item_outcomes: list[tuple[Any, BaseException | None]] = []
            outcomes.append(item_outcomes)
            flat.extend((actor, command, item_outcomes) for command in commands)
        try:
            if not group:
                if begun:
                    conn.execute("ROLLBACK")
                return
            if not begun:
                store.begin_write(conn)
            tx = WriteTransaction(conn)
            for i, (actor, command, item_outcomes) in enumerate(flat):
                tx.actor = actor
                if getattr(command, "deferrable", False) and (i == 0 or type(flat[i - 1][1]) is not type(command)):
                    run = _same_kind_run(flat, i)
                    prefetch = getattr(type(command), "prefetch", None)
                    if prefetch is not None and len(run) > 1:  # one lookup for the run, not one per command
                        prefetch(tx, run)
                item_outcomes.append(self._run_command(conn, tx, command, alone))
            tx.flush()
            store.commit_write(conn)
            self._commits += 1
        except BaseException as exc:  # Ctrl-C on a caller's thread included: never leave a transaction open
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            for item in group:
                if not item[2].done():
                    item[2].set_exception(exc)
            return
        for hook in tx.after_commit:
            try:
                hook()
            except Exception as exc:  # side effects after the commit must never fail the call
                try:
                    warnings.warn(f"lightml: {exc}", RuntimeWarning, stacklevel=1)
                except Exception:  # warnings turned into errors: the commit still stands
                    pass
        for (_, _, future, many), item_outcomes in zip(group, outcomes):
            if many:
                future.set_result(item_outcomes)
            elif item_outcomes[0][1] is None:
                future.set_result(item_outcomes[0][0])
            else:
                future.set_exception(item_outcomes[0][1])

    @staticmethod
    def _run_command(conn: sqlite3.Connection, tx: WriteTransaction, command: Command,
                     alone: bool) -> tuple[Any, BaseException | None]:
        if getattr(command, "deferrable", False):
            # Decides without writing; its events are appended with the group's (tx.flush).
            try:
                return command.decide(tx), None
            except Exception as exc:
                return None, exc
        tx.flush()
        if alone:  # an error rolls the whole transaction back: nothing else is in it
            return command(tx), None
        mark = tx._mark()
        conn.execute("SAVEPOINT command")
        try:
            result = command(tx)
        except Exception as exc:
            conn.execute("ROLLBACK TO command")
            conn.execute("RELEASE command")
            tx._reset(mark)
            return None, exc
        conn.execute("RELEASE command")
        return result, None


def _same_kind_run(flat: list[tuple[Actor, Command, list]], start: int) -> list[Command]:
    """The commands from ``start`` on that are of the same class as the one at ``start``."""
    kind = type(flat[start][1])
    run = []
    for _, command, _ in flat[start:]:
        if type(command) is not kind:
            break
        run.append(command)
    return run


_writers: dict[tuple, tuple[Writer, int]] = {}
_writers_lock = threading.Lock()


def acquire(path: str, timeout: float, synchronous: str) -> Writer:
    """The process's writer for this file (shared by every handle on it)."""
    key = (os.getpid(), path, timeout, synchronous)
    with _writers_lock:
        writer, users = _writers.get(key, (None, 0))
        if writer is None:
            writer = Writer(path, timeout, synchronous)
        _writers[key] = (writer, users + 1)
        return writer


def has_writer(path: str) -> bool:
    """Does a handle of this process hold the file open for writing?"""
    with _writers_lock:
        return any(key[0] == os.getpid() and key[1] == path for key in _writers)


def release(writer: Writer) -> None:
    key = (os.getpid(), writer.path, writer.timeout, writer.synchronous)
    with _writers_lock:
        entry = _writers.get(key)
        if entry is None or entry[0] is not writer:
            return
        if entry[1] > 1:
            _writers[key] = (writer, entry[1] - 1)
            return
        del _writers[key]
    writer.stop()


def _checkpoint_all_at_exit() -> None:
    """The writers of handles never closed: their data must not stay in the -wal only."""
    with _writers_lock:
        open_writers = [w for w, _ in _writers.values()]
    for w in open_writers:
        w.checkpoint_at_exit()


atexit.register(_checkpoint_all_at_exit)
