"""The single writer of a process: a thread fed by a queue, committing in groups.

Every write is a ``Command``, run on this thread (or, see ``run_now``, on a waiting
caller's) inside the decide lock (``lightml.log.transaction``; ``BEGIN IMMEDIATE`` on SQLite): it reads
the projections, decides, and appends events. Queue items (``WriteTask``) that wait while
a transaction runs share the next one (group commit); each command runs in its own
savepoint, so one command's error never undoes another's work. A caller's future resolves
only after COMMIT. A blocking caller (the sync handle) runs its command on its own thread
when the writer is idle and the write lock is free (``run_now``): handing it to the writer
thread and waiting for the answer cost more than the command itself.

A ``BufferedCommand`` decides without appending (its events go to a buffer of the
transaction) and without a savepoint: a stretch of queued commands of one class is
prefetched once, decided one by one, and appended together at the next flush.

Every transaction is begun with ``store.begin_write`` and ended with ``tx.commit``
(the read tables' guards let only such marked transactions write). The engine's idle
checkpoint (SQLite: the WAL folded into the ``.db``) runs when the last handle of the
process lets the writer go, at interpreter exit, and after a second without commits, so
that the ``.db`` alone is always a complete copy of the registry; a checkpoint never waits
for or fails a caller. The connection, the lock and the checkpoint are the storage
engine's (``lightml.log.engine``): nothing here is specific to one database.
"""

from __future__ import annotations

import atexit
import functools
import os
import queue
import threading
import warnings
from concurrent.futures import Future
from typing import Any, NamedTuple, Protocol, runtime_checkable

from lightml.log import store
from lightml.log.engine import Connection, StorageEngine
from lightml.log.transaction import Actor, Known, WriteTransaction

MAX_GROUP = 512  # commands per transaction; bounds how long one group holds the lock
# Seconds without a commit after which the writer checkpoints (folds the WAL into the .db),
# so that a handle left open (a notebook) still leaves a file that is complete on its own.
IDLE_CHECKPOINT = 1.0


class Command(Protocol):
    """A unit of work: reads and appends through ``tx``; its result goes to the caller."""

    def __call__(self, tx: WriteTransaction) -> Any: ...


@runtime_checkable
class BufferedCommand(Protocol):
    """A command that appends nothing itself when the writer runs it in a group.

    ``decide`` checks everything before it touches the transaction (so a failure leaves no
    trace and needs no savepoint) and then only defers events (``tx.defer``). The writer
    calls ``prefetch`` once for a stretch of queued commands of one class, so that they
    look up what they need in one query, then ``decide`` for each. Called as a plain
    ``Command`` (inside another command), it decides and flushes.
    """

    def __call__(self, tx: WriteTransaction) -> Any: ...

    def decide(self, tx: WriteTransaction) -> Any: ...

    @classmethod
    def prefetch(cls, tx: WriteTransaction, commands: list[Any]) -> None: ...


@functools.cache
def _is_buffered(kind: type) -> bool:
    """Does this class of command meet ``BufferedCommand``? (asked once per class)"""
    return issubclass(kind, BufferedCommand)


Outcome = tuple[Any, BaseException | None]  # (result, error) of one command


class WriteTask(NamedTuple):
    """One queue item: commands of one caller, for one transaction, and the future that
    gets their outcome after COMMIT (``many``: a list of outcomes, else the one result)."""

    commands: list[Command]
    actor: Actor
    future: Future
    many: bool


_STOP = object()


class Writer:
    """One per (process, registry, settings): serializes all of that process's writes."""

    def __init__(self, engine: StorageEngine, timeout: float, synchronous: str) -> None:
        self.engine, self.timeout, self.synchronous = engine, timeout, synchronous
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._pid = -1
        self._lock = threading.Lock()
        # Held while a group runs on the connection, by the writer thread or by run_now.
        self._busy = threading.Lock()
        self._conn: Connection | None = None  # the writer thread's, once connected
        self._queued = 0  # queue items not finished yet (under _lock): run_now never overtakes them
        # Commits so far, and as of the last checkpoint / the last idle check (see _idle).
        self._commits = self._checkpointed = self._seen = 0
        self._known: Known | None = None  # what the last transaction knew (see Known)

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
                self._commit_group(conn, [WriteTask([command], actor, future, False)], begun=True)
                return future
        except BaseException:  # e.g. Ctrl-C right after BEGIN: leave no transaction open
            self.engine.rollback(conn)
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
            self._queue.put(WriteTask(commands, actor, future, many))
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
            conn = self.engine.connect(timeout=self.timeout, synchronous=self.synchronous)
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
                    for task in group:
                        if not task.future.done():
                            task.future.set_exception(exc)
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

    def _checkpoint(self, conn: Connection) -> None:
        """The engine's checkpoint (under ``_busy``); never waits, never raises."""
        commits = self._commits
        if self.engine.checkpoint(conn):
            self._checkpointed = commits

    def checkpoint_at_exit(self) -> None:
        """At interpreter exit (the writer thread is a daemon and never reaches its
        ``finally``): checkpoint if the connection is free and something was committed (the
        engine's checkpoint does nothing inside a transaction)."""
        if self._pid != os.getpid() or self._commits == self._checkpointed:
            return
        if self._busy.acquire(timeout=IDLE_CHECKPOINT):
            try:
                if self._conn is not None:
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
                item.future.set_exception(exc)
                self._finished(1)

    def _commit_group(self, conn: Connection, group: list[WriteTask], begun: bool = False) -> None:
        """Run a group of queue items in one transaction (``begun``: ``store.try_begin_write`` is done)."""
        group = [task for task in group if task.future.set_running_or_notify_cancel()]
        outcomes: list[list[Outcome]] = []  # per queue item, one per command
        alone = len(group) == 1 and len(group[0].commands) == 1  # no one else's work to protect
        # Every command with its caller and where its outcome goes, in queue order.
        flat: list[tuple[Actor, Command, list[Outcome]]] = []
        for task in group:
            task_outcomes: list[Outcome] = []
            outcomes.append(task_outcomes)
            flat.extend((task.actor, command, task_outcomes) for command in task.commands)
        try:
            if not group:
                if begun:
                    self.engine.rollback(conn)
                return
            if not begun:
                store.begin_write(conn)
            tx = WriteTransaction(conn, self._known)
            self._known = None  # (until this transaction commits: a rollback forgets it)
            for i, (actor, command, task_outcomes) in enumerate(flat):
                tx.actor = actor
                kind = type(command)
                if not _is_buffered(kind):
                    task_outcomes.append(_run_in_savepoint(tx, command, alone))
                    continue
                if i == 0 or type(flat[i - 1][1]) is not kind:  # a stretch of this class begins
                    stretch = _same_kind_stretch(flat, i)
                    if len(stretch) > 1:  # one lookup for the stretch, not one per command
                        kind.prefetch(tx, stretch)
                try:
                    task_outcomes.append((command.decide(tx), None))
                except Exception as exc:
                    task_outcomes.append((None, exc))
            self._known = tx.commit()
            self._commits += 1
        except BaseException as exc:  # Ctrl-C on a caller's thread included: never leave a transaction open
            self.engine.rollback(conn)
            for task in group:
                if not task.future.done():
                    task.future.set_exception(exc)
            return
        for hook in tx.after_commit:
            try:
                hook()
            except Exception as exc:  # side effects after the commit must never fail the call
                try:
                    warnings.warn(f"lightml: {exc}", RuntimeWarning, stacklevel=1)
                except Exception:  # warnings turned into errors: the commit still stands
                    pass
        for task, task_outcomes in zip(group, outcomes):
            if task.many:
                task.future.set_result(task_outcomes)
            elif task_outcomes[0][1] is None:
                task.future.set_result(task_outcomes[0][0])
            else:
                task.future.set_exception(task_outcomes[0][1])


def _run_in_savepoint(tx: WriteTransaction, command: Command, alone: bool) -> Outcome:
    if alone:  # an error rolls the whole transaction back: nothing else is in it
        return command(tx), None
    # What earlier commands left in the buffers is theirs, decided and reported as done: if
    # it cannot be appended, the error goes up and fails the whole group, not this command.
    tx.flush()
    try:
        with tx.savepoint():
            return command(tx), None
    except Exception as exc:
        return None, exc


def _same_kind_stretch(flat: list[tuple[Actor, Command, list[Outcome]]], start: int) -> list[Command]:
    """The commands from ``start`` on that are of the same class as the one at ``start``."""
    kind = type(flat[start][1])
    stretch = []
    for _, command, _ in flat[start:]:
        if type(command) is not kind:
            break
        stretch.append(command)
    return stretch


_writers: dict[tuple, tuple[Writer, int]] = {}
_writers_lock = threading.Lock()


def acquire(engine: StorageEngine, timeout: float, synchronous: str) -> Writer:
    """The process's writer for this registry (shared by every handle on it); ``engine``
    names it by its absolute location (``StorageEngine.checked``)."""
    key = (os.getpid(), engine.location, timeout, synchronous)
    with _writers_lock:
        writer, users = _writers.get(key, (None, 0))
        if writer is None:
            writer = Writer(engine, timeout, synchronous)
        _writers[key] = (writer, users + 1)
        return writer


def has_writer(location: str) -> bool:
    """Does a handle of this process hold the registry at ``location`` open for writing?"""
    with _writers_lock:
        return any(key[0] == os.getpid() and key[1] == location for key in _writers)


def release(writer: Writer) -> None:
    key = (os.getpid(), writer.engine.location, writer.timeout, writer.synchronous)
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
