"""The store under the conditions a researcher's machine really sees: several eval processes
logging into one file at once, threads sharing handles, an interrupt inside a write, a
process killed in the middle of a bulk log, a write lock held by someone else, and a script
that never closes its handle. (Over 400 lines: each scenario's child process is written out
beside its test.)"""

from __future__ import annotations

import json
import multiprocessing
import os
import queue
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
import traceback
from collections import Counter
from pathlib import Path

import pytest

from lightml import METRIC_INSERTED, METRIC_SKIPPED, METRIC_UPDATED, LightMLHandle
from lightml.errors import RegistryLockedError
from lightml.log.replay import verify
from lightml.write import builders


pytestmark = pytest.mark.slow


RUN = "eval-run"
MODEL = "org/model-7b"
N_WRITERS = 4
N_CALLS = 500
N_SHARED = 200
CHILD_DEADLINE = 120  # hang guard for a whole multi-process scenario, far above its normal runtime


# -- helpers ---------------------------------------------------------------------------------


def events_of(db: Path, event_type: str) -> list[dict]:
    conn = sqlite3.connect(db)
    try:
        return [json.loads(p) for (p,) in conn.execute(
            "SELECT payload FROM events WHERE type = ? ORDER BY seq", (event_type,))]
    finally:
        conn.close()


def writer_value(writer: int, i: int) -> float:
    return writer * 1000 + i + 0.125


def forced_value(i: int) -> float:
    return 2.0 + i / 4


def child_env() -> dict[str, str]:
    """The test process's import path, so a child finds the same (editable) lightml."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


# -- concurrency: workers run in spawned processes (must be importable top-level functions) ----


def _worker(role: str, db: str, barrier, results) -> None:
    try:
        handle = LightMLHandle(db, RUN)
        barrier.wait(timeout=60)
        outcomes: dict[str, str] = {}
        if role.startswith("writer"):
            w = int(role[len("writer"):])
            for i in range(N_CALLS):
                outcomes[f"w{w}/k{i}"] = handle.log_model_metric(MODEL, f"w{w}", f"k{i}", writer_value(w, i))
        elif role == "relog":
            # Races writer 0 on its keys (same values), and re-logs the pre-existing shared keys.
            for i in range(max(N_CALLS, N_SHARED)):
                if i < N_CALLS:
                    outcomes[f"w0/k{i}"] = handle.log_model_metric(MODEL, "w0", f"k{i}", writer_value(0, i))
                if i < N_SHARED:
                    outcomes[f"shared/s{i}"] = handle.log_model_metric(MODEL, "shared", f"s{i}", -1.0)
        elif role == "relog_force":
            # Overwrites the shared keys, and races writer 1 on its keys (same values) with force.
            for i in range(max(N_CALLS, N_SHARED)):
                if i < N_SHARED:
                    outcomes[f"shared/s{i}"] = handle.log_model_metric(
                        MODEL, "shared", f"s{i}", forced_value(i), force=True)
                if i < N_CALLS:
                    outcomes[f"w1/k{i}"] = handle.log_model_metric(
                        MODEL, "w1", f"k{i}", writer_value(1, i), force=True)
        else:
            raise ValueError(role)
        handle.close()
        results.put((role, outcomes, None))
    except BaseException:
        results.put((role, None, traceback.format_exc()))


def test_concurrent_processes_log_every_metric_exactly_once(tmp_path):
    db = tmp_path / "main.db"
    with LightMLHandle(db, RUN) as h:
        h.register_model(MODEL, "hub/model-7b")
        assert h.log_metrics(MODEL, {"shared": {f"s{i}": 0.0 for i in range(N_SHARED)}}) == {
            "inserted": N_SHARED, "updated": 0, "skipped": 0}

    ctx = multiprocessing.get_context("spawn")
    roles = [f"writer{w}" for w in range(N_WRITERS)] + ["relog", "relog_force"]
    barrier = ctx.Barrier(len(roles))
    results = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(role, str(db), barrier, results), name=role) for role in roles]
    for p in procs:
        p.start()
    outcomes: dict[str, dict[str, str]] = {}
    errors = []
    try:
        deadline = time.monotonic() + CHILD_DEADLINE
        for _ in roles:
            try:
                role, got, error = results.get(timeout=max(1.0, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"workers still running after {CHILD_DEADLINE} s: {[p.name for p in procs if p.is_alive()]}")
            if error:
                errors.append(f"{role}:\n{error}")
            else:
                outcomes[role] = got
        for p in procs:
            p.join(timeout=max(1.0, deadline - time.monotonic()))
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
                p.join()
    assert not errors, "\n".join(errors)
    assert [p.exitcode for p in procs] == [0] * len(procs)

    # Outcomes: every writer key was inserted by exactly one process; re-logs of existing keys
    # without force were skipped, with force they were updated.
    for w in range(N_WRITERS):
        mine = outcomes[f"writer{w}"]
        if w not in (0, 1):
            assert set(mine.values()) == {METRIC_INSERTED}
    for i in range(N_CALLS):
        w0 = (outcomes["writer0"][f"w0/k{i}"], outcomes["relog"][f"w0/k{i}"])
        assert sorted(w0) == sorted([METRIC_INSERTED, METRIC_SKIPPED]), (i, w0)
        w1 = (outcomes["writer1"][f"w1/k{i}"], outcomes["relog_force"][f"w1/k{i}"])
        assert w1 in {(METRIC_INSERTED, METRIC_UPDATED), (METRIC_SKIPPED, METRIC_INSERTED)}, (i, w1)
    for i in range(N_SHARED):
        assert outcomes["relog"][f"shared/s{i}"] == METRIC_SKIPPED
        assert outcomes["relog_force"][f"shared/s{i}"] == METRIC_UPDATED

    # Read tables: each expected metric once, with the value its last (forced) writer gave.
    expected = {("shared", f"s{i}"): forced_value(i) for i in range(N_SHARED)}
    for w in range(N_WRITERS):
        expected.update({(f"w{w}", f"k{i}"): writer_value(w, i) for i in range(N_CALLS)})
    conn = sqlite3.connect(db)
    try:
        (model_id,) = conn.execute("SELECT id FROM model WHERE model_name = ?", (MODEL,)).fetchone()
        rows = conn.execute("SELECT family, metric_name, value FROM metrics WHERE model_id = ?",
                            (model_id,)).fetchall()
        assert conn.execute("SELECT count(*) FROM metrics").fetchone()[0] == len(rows)
    finally:
        conn.close()
    keys = Counter((f, m) for f, m, _ in rows)
    assert [k for k, n in keys.items() if n > 1] == []
    assert {(f, m): v for f, m, v in rows} == expected

    # The log: each metric inserted by exactly one event item; each forced re-log of an existing
    # metric is a metric_overwritten item carrying the value it replaced.
    inserted = Counter(
        (m["family"], m["metric_name"]) for e in events_of(db, "metric_inserted") for m in e["metrics"])
    assert [k for k, n in inserted.items() if n != 1] == []
    assert set(inserted) == set(expected)
    overwritten = [m for e in events_of(db, "metric_overwritten") for m in e["metrics"]]
    shared_over = {m["metric_name"]: m for m in overwritten if m["family"] == "shared"}
    assert len(shared_over) == len([m for m in overwritten if m["family"] == "shared"]) == N_SHARED
    for i in range(N_SHARED):
        assert shared_over[f"s{i}"]["previous_value"] == 0.0
        assert shared_over[f"s{i}"]["value"] == forced_value(i)
    n_forced_w1 = sum(1 for v in outcomes["relog_force"].values() if v == METRIC_UPDATED) - N_SHARED
    assert len([m for m in overwritten if m["family"] == "w1"]) == n_forced_w1
    assert {m["family"] for m in overwritten} <= {"shared", "w1"}

    result = verify(db)
    assert result.ok, result.differences
    with LightMLHandle(db, RUN) as h:
        history = h.metric_history(MODEL, "shared", "s3")
    assert [(e["action"], e["value"]) for e in history] == [("inserted", 0.0), ("overwritten", forced_value(3))]


N_FAMILIES, N_PER_FAMILY = 200, 500


CRASH_CHILD = textwrap.dedent("""
    import sys
    from pathlib import Path
    from lightml import LightMLHandle

    db, signals, n_families, n_per_family = sys.argv[1], Path(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
    h = LightMLHandle(db, "crash-run")
    for n in range(1000):
        name = f"model-{n}"
        h.register_model(name, f"hub/{name}")
        big = {f"fam{f}": {f"met{j}": n + f * 0.001 + j * 1e-6 for j in range(n_per_family)}
               for f in range(n_families)}
        (signals / f"started-{n}").touch()
        h.log_metrics(name, big)
        (signals / f"done-{n}").touch()
""")


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"child exited early ({proc.returncode}): {proc.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"child never wrote {path.name}")
        time.sleep(0.005)


def test_threads_sharing_handles_in_one_process_log_every_metric_once(tmp_path):
    """Sync calls run on the caller's thread when the writer is idle and are queued when it
    is not; threads sharing one sync handle, next to an async handle on the same file, must
    still land every metric once and keep each forced overwrite."""
    import asyncio
    import threading

    from lightml import AsyncLightMLHandle

    db = tmp_path / "main.db"
    n_threads, per_thread = 4, 150
    errors: list[BaseException] = []
    with LightMLHandle(db, RUN) as h:
        h.register_model(MODEL, "hub/model-7b")
        h.log_model_metric(MODEL, "shared", "acc", 0.0)
        start = threading.Barrier(n_threads + 1)

        def sync_worker(k: int) -> None:
            try:
                start.wait()
                for i in range(per_thread):
                    assert h.log_model_metric(MODEL, f"thread{k}", f"m{i}", i / per_thread) == METRIC_INSERTED
                    h.log_model_metric(MODEL, "shared", "acc", k + i / 1000, force=True)
            except BaseException as exc:
                errors.append(exc)

        async def async_worker() -> None:
            async with AsyncLightMLHandle(db, RUN) as a:
                start.wait()
                for batch in range(5):
                    outcomes = await asyncio.gather(
                        *(a.log_model_metric(MODEL, "async", f"b{batch}m{i}", 0.5) for i in range(40)))
                    assert outcomes == [METRIC_INSERTED] * 40

        threads = [threading.Thread(target=sync_worker, args=(k,)) for k in range(n_threads)]
        threads.append(threading.Thread(target=lambda: asyncio.run(async_worker())))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(CHILD_DEADLINE)
        assert not any(thread.is_alive() for thread in threads)
        assert h.log_model_metric(MODEL, "shared", "acc", 9.0) == METRIC_SKIPPED  # still usable
    assert errors == []
    inserted = Counter((m["family"], m["metric_name"]) for e in events_of(db, "metric_inserted") for m in e["metrics"])
    assert len(inserted) == 1 + n_threads * per_thread + 5 * 40 and set(inserted.values()) == {1}
    overwrites = [m for e in events_of(db, "metric_overwritten") for m in e["metrics"]]
    assert len(overwrites) == n_threads * per_thread
    conn = sqlite3.connect(db)
    try:
        assert conn.execute("SELECT count(*) FROM metrics").fetchone() == (1 + n_threads * per_thread + 200,)
        assert conn.execute("SELECT count(*) FROM metric_history WHERE action = 'overwritten'").fetchone() == (
            n_threads * per_thread,)
    finally:
        conn.close()
    assert verify(db).ok


def test_interrupt_inside_a_sync_write_rolls_it_back_and_the_handle_goes_on(tmp_path, monkeypatch, dump_tables):
    """A sync call may run on the caller's thread, where Ctrl-C lands: whether it comes
    inside the command or right after BEGIN, nothing of that call stays, no transaction is
    left open, and the next calls (and other processes) can write."""
    from lightml.log import events as ev
    from lightml.log import store

    db = tmp_path / "main.db"
    with LightMLHandle(db, RUN) as h:
        h.register_model(MODEL, "hub/model-7b")  # the writer is up: the next calls run here
        before = dump_tables(db)

        def interrupted(tx):
            tx.emit([(ev.SCHEMA_RULE_ADDED, {"family": "fam", "metric_name": "acc"})])
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            h._core.run(interrupted)
        real_begin = store.try_begin_immediate

        def begin_then_interrupt(conn, timeout):
            real_begin(conn, timeout)
            raise KeyboardInterrupt

        monkeypatch.setattr(store, "try_begin_immediate", begin_then_interrupt)
        with pytest.raises(KeyboardInterrupt):
            h.log_model_metric(MODEL, "fam", "acc", 0.5)
        monkeypatch.undo()
        assert dump_tables(db) == before
        other = sqlite3.connect(db, timeout=0.1, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")  # the lock was given back
            other.execute("ROLLBACK")
        finally:
            other.close()
        assert h.log_model_metric(MODEL, "fam", "acc", 0.5) == METRIC_INSERTED
    assert verify(db).ok


def test_a_sync_call_never_overtakes_work_queued_before_it(tmp_path):
    """A thread that queues a write (as scan does) and then makes a sync call gets them
    committed in that order, even when the writer thread has taken the queued one but not
    started it yet (the window is widened here by a slow lock)."""
    import threading

    db = tmp_path / "main.db"
    with LightMLHandle(db, RUN, synchronous="NORMAL") as h:
        h.register_model(MODEL, "hub/model-7b")
        h.log_model_metric(MODEL, "fam", "x", 0.0)
        core = h._core
        writer = core._writer
        real = writer._busy

        class SlowForTheWriterThread:
            def acquire(self, blocking=True, timeout=-1):
                return real.acquire(blocking, timeout)

            def release(self):
                real.release()

            def __enter__(self):
                if threading.current_thread().name == "lightml-writer":
                    time.sleep(0.05)
                real.acquire()

            def __exit__(self, *exc):
                real.release()

        writer._busy = SlowForTheWriterThread()
        try:
            queued = core.submit(builders.log_model_metric(core.scope, MODEL, "fam", "x", 1.0, force=True))
            time.sleep(0.01)  # the writer thread has it and sleeps before taking the lock
            assert h.log_model_metric(MODEL, "fam", "x", 2.0, force=True) == METRIC_UPDATED
            assert queued.result() == METRIC_UPDATED
        finally:
            writer._busy = real
        assert [row["value"] for row in h.metric_history(MODEL, "fam", "x")] == [0.0, 1.0, 2.0]


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_forked_child_writes_through_an_inherited_handle(tmp_path):
    """A handle used before a fork (its writer thread connected) works in the child: the
    child gets its own writer, connection and lock, and the parent keeps its own."""
    db = tmp_path / "main.db"
    with LightMLHandle(db, RUN) as h:
        h.register_model(MODEL, "hub/model-7b")
        h.log_model_metric(MODEL, "fam", "before_fork", 0.1)
        pid = os.fork()
        if pid == 0:  # the child: never return into pytest
            code = 1
            try:
                code = 0 if h.log_model_metric(MODEL, "fam", "in_child", 0.2) == METRIC_INSERTED else 1
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
        assert h.log_model_metric(MODEL, "fam", "after_fork", 0.3) == METRIC_INSERTED
    conn = sqlite3.connect(db)
    try:
        assert dict(conn.execute("SELECT metric_name, value FROM metrics")) == {
            "before_fork": 0.1, "in_child": 0.2, "after_fork": 0.3}
    finally:
        conn.close()
    assert verify(db).ok


def test_sigkill_during_bulk_log_keeps_database_intact_and_call_atomic(tmp_path):
    db = tmp_path / "main.db"
    signals = tmp_path / "signals"
    signals.mkdir()
    proc = subprocess.Popen(
        [sys.executable, "-c", CRASH_CHILD, str(db), str(signals), str(N_FAMILIES), str(N_PER_FAMILY)],
        env=child_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        # Kill while a call is running: after its start signal, before its done signal.
        killed_during = None
        for n in range(20):
            _wait_for(signals / f"started-{n}", proc, timeout=60)
            time.sleep(0.3)
            if not (signals / f"done-{n}").exists():
                os.kill(proc.pid, signal.SIGKILL)
                killed_during = n
                break
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=30)
        proc.stdout.close()
        proc.stderr.close()
    assert killed_during is not None, "every call finished within 0.3 s: could not kill one mid-call"
    assert proc.returncode == -signal.SIGKILL

    conn = sqlite3.connect(db)
    try:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        counts = dict(conn.execute(
            "SELECT mo.model_name, count(me.id) FROM model mo LEFT JOIN metrics me ON me.model_id = mo.id "
            "GROUP BY mo.id"))
        inserted_events = Counter(
            model_id for (model_id,) in conn.execute(
                "SELECT json_extract(payload, '$.model_id') FROM events WHERE type = 'metric_inserted'"))
        ids = dict(conn.execute("SELECT model_name, id FROM model"))
    finally:
        conn.close()
    full = N_FAMILIES * N_PER_FAMILY
    done = {n for n in range(killed_during + 1) if (signals / f"done-{n}").exists()}
    for name, count in counts.items():
        assert count in (0, full), f"{name}: {count} of {full} metrics survived: the call was not atomic"
        assert inserted_events[ids[name]] == (1 if count else 0)
    for n in done:
        assert counts[f"model-{n}"] == full
    interrupted = f"model-{killed_during}"
    # Its register_model committed before the start signal; its metrics: all or nothing.
    assert interrupted in counts

    result = verify(db)
    assert result.ok, result.differences

    # A new handle resumes the eval loop: re-logging the interrupted call completes it exactly.
    big = {f"fam{f}": {f"met{j}": killed_during + f * 0.001 + j * 1e-6 for j in range(N_PER_FAMILY)}
           for f in range(N_FAMILIES)}
    with LightMLHandle(db, "crash-run") as h:
        outcome = h.log_metrics(interrupted, big)
        if counts[interrupted] == 0:
            assert outcome == {"inserted": full, "updated": 0, "skipped": 0}
        else:
            assert outcome == {"inserted": 0, "updated": 0, "skipped": full}
        assert h.log_model_metric(interrupted, "after-crash", "acc", 0.5) == METRIC_INSERTED
        assert h.get_detailed_scores(interrupted, "after-crash", "acc") is None
        assert len(h.search(interrupted, "fam199")) == N_PER_FAMILY
    result = verify(db)
    assert result.ok, result.differences


def test_held_write_lock_raises_registry_locked_error_and_changes_nothing(tmp_path, dump_tables):
    db = tmp_path / "main.db"
    h = LightMLHandle(db, RUN, timeout=0.5)
    try:
        h.register_model(MODEL, "hub/model-7b")
        h.log_model_metric(MODEL, "f", "before", 1.0)
        before = dump_tables(db)

        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            attempts = [
                lambda: h.log_model_metric(MODEL, "f", "during", 2.0),
                lambda: h.log_model_metric(MODEL, "f", "before", 3.0, force=True),
                lambda: h.log_metrics(MODEL, {"g": {"a": 1.0, "b": 2.0}}),
                lambda: h.register_model("other", "hub/other"),
                lambda: LightMLHandle(db, "another-run", timeout=0.5),
            ]
            for attempt in attempts:
                started = time.monotonic()
                with pytest.raises(RegistryLockedError) as info:
                    attempt()
                elapsed = time.monotonic() - started
                assert isinstance(info.value, TimeoutError)
                assert "locked" in str(info.value)
                assert elapsed < 10, f"waited {elapsed:.1f} s with timeout=0.5"
            # Reads are not blocked by a writer holding the lock (WAL).
            assert h.metric_exists(MODEL, "f", "before")
            assert not h.metric_exists(MODEL, "f", "during")
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()

        assert dump_tables(db) == before
        # Once the lock is released the same handle writes again.
        assert h.log_model_metric(MODEL, "f", "during", 2.0) == METRIC_INSERTED
    finally:
        h.close()
    assert verify(db).ok


LOCK_HOLDER = textwrap.dedent("""
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    conn.execute("INSERT INTO lightml_writing (token) VALUES (1)")  # as LightML's writer marks it
    conn.execute("INSERT INTO registry_schema (family, metric_name) VALUES ('uncommitted', 'x')")
    print("locked", flush=True)
    time.sleep(60)
""")


def test_lock_held_by_another_process_times_out(tmp_path, dump_tables):
    db = tmp_path / "main.db"
    with LightMLHandle(db, RUN) as h:
        h.register_model(MODEL, "hub/model-7b")
    before = dump_tables(db)
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with LightMLHandle(db, timeout=0.5) as h:  # no run: opening writes nothing
            started = time.monotonic()
            with pytest.raises(RegistryLockedError):
                h.add_schema_rule("f", "m")
            assert time.monotonic() - started < 10
    finally:
        holder.kill()
        holder.wait(timeout=30)
        holder.stdout.close()
    assert dump_tables(db) == before
    with LightMLHandle(db, RUN, timeout=0.5) as h:
        assert h.log_model_metric(MODEL, "f", "m", 1.0) == METRIC_INSERTED
    assert verify(db).ok


UNCLOSED_SYNC = textwrap.dedent("""
    import sys, time
    from lightml import LightMLHandle
    h = LightMLHandle(sys.argv[1], "run")
    h.register_model("m", "hub/m")
    cid = h.register_checkpoint("m", 100, "hub/m@100")
    for i in range(200):
        h.log_model_metric("m", "single", f"k{i}", i / 8)
    h.log_metrics("m", {f"bulk{f}": {f"k{i}": f + i / 8 for i in range(50)} for f in range(4)})
    h.log_checkpoint_metric(cid, "ckpt", "acc", 0.75, scores=[1, 0, 1, 1])
    h.log_model_metric("m", "single", "k0", 99.0, force=True)
    print("logged", time.time(), flush=True)
    # no h.close(): the interpreter must still exit promptly, with everything committed
""")


UNCLOSED_ASYNC = textwrap.dedent("""
    import asyncio, sys, time
    from lightml import AsyncLightMLHandle

    async def main():
        h = AsyncLightMLHandle(sys.argv[1], "run")
        await h.register_model("m", "hub/m")
        cid = await h.register_checkpoint("m", 100, "hub/m@100")
        await asyncio.gather(*(h.log_model_metric("m", "single", f"k{i}", i / 8) for i in range(200)))
        await h.log_metrics("m", {f"bulk{f}": {f"k{i}": f + i / 8 for i in range(50)} for f in range(4)})
        await h.log_checkpoint_metric(cid, "ckpt", "acc", 0.75, scores=[1, 0, 1, 1])
        await h.log_model_metric("m", "single", "k0", 99.0, force=True)
        print("logged", time.time(), flush=True)
        return h  # kept alive, never closed

    handle = asyncio.run(main())
""")


@pytest.mark.parametrize("script", [UNCLOSED_SYNC, UNCLOSED_ASYNC], ids=["sync", "async"])
def test_never_closed_handle_exits_promptly_and_loses_nothing(tmp_path, script):
    db = tmp_path / "main.db"
    proc = subprocess.Popen([sys.executable, "-c", script, str(db)], env=child_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
        pytest.fail(f"a process with an unclosed handle did not exit (output so far {out!r})")
    exited = time.time()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    word, logged_at = out.split()
    assert word == "logged"
    assert exited - float(logged_at) < 10, "the process took over 10 s to exit after its last call"

    with LightMLHandle(db, "run") as h:
        single = {r["metric"]: r["value"] for r in h.search("m", "single")}
        assert single == {f"k{i}": (99.0 if i == 0 else i / 8) for i in range(200)}
        for f in range(4):
            bulk = {r["metric"]: r["value"] for r in h.search("m", f"bulk{f}")}
            assert bulk == {f"k{i}": f + i / 8 for i in range(50)}
    conn = sqlite3.connect(db)
    try:
        assert conn.execute(
            "SELECT me.value, d.scores, d.n_samples FROM metrics me JOIN detailed_scores d ON d.metric_id = me.id "
            "WHERE me.family = 'ckpt'").fetchall() == [(0.75, "[1,0,1,1]", 4)]
    finally:
        conn.close()
    assert verify(db).ok
