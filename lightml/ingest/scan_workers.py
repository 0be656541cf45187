"""Scan workers: model folders' samples files read in other processes, so that a first scan
is not bound by one core parsing JSON.

Each worker is ``python -m lightml.ingest.scan_workers``: a fresh interpreter that imports
LightML and nothing of the caller's (no ``__main__`` of a user's script is imported or run,
as a ``multiprocessing`` spawn or forkserver child would), and that never touches the
registry. It reads tasks from its stdin and writes answers to its stdout, each a pickle
behind its length: a task is the arguments of ``scan_folder.read_folder``, its answer the
``FolderRead`` or the exception it raised. Folder k goes to worker k mod n, and the answers
are taken in folder order, so the single writer applies them in the order one process would.
A thread per worker reads its answers as they come (a worker blocked writing an answer
nobody reads would stop reading its tasks, and the two processes would wait on each other),
and the caller keeps only a few tasks per worker in flight (``IN_FLIGHT``), so memory holds a
few folders' answers, not the tree's. A worker that fails (killed, out of memory) fails no
import: its folders are read in this process instead.
"""

from __future__ import annotations

import pickle
import queue
import struct
import subprocess
import sys
import threading
from typing import IO, Any

_LENGTH = struct.Struct("!Q")
IN_FLIGHT = 2  # tasks per worker given ahead of the answer taken


class _Gone:
    """What a reader thread queues when its worker's answers end: the reason."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


class WorkerGone(Exception):
    """A worker died or answered nonsense: its folders are read in the scanning process."""


def _send(stream: IO[bytes], value: Any) -> None:
    data = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(_LENGTH.pack(len(data)))
    stream.write(data)
    stream.flush()


def _receive(stream: IO[bytes]) -> Any:
    head = stream.read(_LENGTH.size)
    if len(head) < _LENGTH.size:
        raise EOFError("the stream ended")
    (size,) = _LENGTH.unpack(head)
    data = stream.read(size)
    if len(data) < size:
        raise EOFError("the stream ended inside an answer")
    return pickle.loads(data)


class WorkerPool:
    """``n`` worker processes; ``submit`` task k, then ``answer`` k, in the order submitted."""

    def __init__(self, n: int) -> None:
        self._workers = [subprocess.Popen(
            [sys.executable, "-c", "from lightml.ingest.scan_workers import serve; serve()"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE) for _ in range(n)]
        self._answers: list[queue.Queue] = [queue.Queue() for _ in range(n)]
        for worker, answers in zip(self._workers, self._answers):
            threading.Thread(target=_read_answers, args=(worker.stdout, answers), daemon=True).start()
        self._submitted = 0
        self._answered = 0

    @property
    def size(self) -> int:
        return len(self._workers)

    def submit(self, *task: Any) -> int:
        """Give task ``k`` (the arguments of ``read_folder``) to worker k mod n; returns k."""
        k = self._submitted
        self._submitted += 1
        worker = self._workers[k % len(self._workers)]
        try:
            _send(worker.stdin, task)
        except (OSError, ValueError):  # a broken pipe: the worker is gone
            pass  # (its answer fails, and the task is read here)
        return k

    def answer(self, k: int) -> Any:
        """Task k's answer (tasks are answered in the order submitted): a FolderRead, or the
        exception read_folder raised. WorkerGone if the worker failed."""
        if k != self._answered:
            raise RuntimeError(f"answers are taken in order: {self._answered} before {k}")
        self._answered += 1
        value = self._answers[k % len(self._workers)].get()
        if isinstance(value, _Gone):
            self._answers[k % len(self._workers)].put(value)  # (its later tasks are gone too)
            raise WorkerGone(value.reason)
        return value

    def close(self) -> None:
        for worker in self._workers:
            try:
                worker.stdin.close()
            except OSError:
                pass
        for worker in self._workers:
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()
                worker.wait()
            worker.stdout.close()

    def __enter__(self) -> WorkerPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _read_answers(stream: IO[bytes], answers: queue.Queue) -> None:
    """A reader thread: every answer of one worker into its queue, then why they ended."""
    while True:
        try:
            _, value = _receive(stream)
        except (EOFError, OSError, pickle.UnpicklingError, ValueError) as exc:
            answers.put(_Gone(str(exc) or type(exc).__name__))
            return
        answers.put(value)


def serve() -> None:
    """A worker's loop: read a task, answer it, until stdin ends."""
    import signal

    from lightml.ingest.scan_folder import read_folder

    # Ctrl-C reaches the whole process group: the scan decides (it stops, closes our stdin,
    # and we end after the task at hand), not a traceback from every worker.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    tasks, answers = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # (nothing printed may land in the answers)
    while True:
        try:
            task = _receive(tasks)
        except EOFError:
            return
        try:
            answer: tuple[str, Any] = ("ok", read_folder(*task))
        except Exception as exc:  # (the scan decides what an error means, as for one read here)
            answer = ("error", exc)
        _send(answers, answer)
