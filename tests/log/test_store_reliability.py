"""Reliability on every storage engine, and what only a server shows: eight writer processes
(sync, async, bulk, and two re-logging the same keys with and without ``force``) on one
registry; a writer killed with SIGKILL in the middle of a 300,000-metric ``log_metrics``; and
(PostgreSQL only) a server restarted while writers write."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections import Counter

import pytest

from lightml import LightMLHandle, verify
from lightml.errors import RegistryUnavailableError
from lightml.log import store

pytestmark = pytest.mark.slow

N_LOGS = 300
DEADLINE = 240  # hang guard for a multi-process scenario, far above its normal runtime


@pytest.fixture
def registry(any_engine_db: str) -> str:
    """A registry with run ``r`` and models ``m0`` .. ``m7`` on the engine under test."""
    db = any_engine_db
    with LightMLHandle(db, "r") as h:
        for k in range(8):
            h.register_model(f"m{k}", f"org/m{k}")
    return db


def _rows(db: str, sql: str, params=()) -> list[tuple]:
    conn = store.connect_readonly(db)
    try:
        return [tuple(r) for r in conn.execute(sql, params).fetchall()]
    finally:
        conn.close()


def _metric_values(db: str) -> dict[tuple[str, str, str], float]:
    rows = _rows(db, "SELECT mo.model_name, me.family, me.metric_name, me.value FROM metrics me "
                     "JOIN model mo ON mo.id = me.model_id")
    counts = Counter((m, f, n) for m, f, n, _ in rows)
    assert max(counts.values(), default=1) == 1, "a metric is stored twice"
    return {(m, f, n): v for m, f, n, v in rows}


# -- the eight writers ------------------------------------------------------------------------

# Each writer process: (kind, model). Two re-log the same keys of m6: one without force (the
# first value wins, the others are skipped), one with force (each call overwrites).
WRITERS = [("sync", "m0"), ("sync", "m1"), ("async", "m2"), ("async", "m3"), ("bulk", "m4"), ("bulk", "m5"),
           ("same-keys", "m6"), ("same-keys-force", "m6")]


def _write(db: str, kind: str, model: str, start) -> None:
    import asyncio

    from lightml import AsyncLightMLHandle

    start.wait()
    if kind == "async":
        async def main() -> None:
            async with AsyncLightMLHandle(db, "r") as h:
                await asyncio.gather(*(h.log_model_metric(model, "f", f"k{i}", i + 0.5) for i in range(N_LOGS)))
        asyncio.run(main())
        return
    with LightMLHandle(db, "r") as h:
        for i in range(N_LOGS):
            if kind == "sync":
                h.log_model_metric(model, "f", f"k{i}", i + 0.5)
            elif kind == "bulk":
                if i % 30 == 0:
                    h.log_metrics(model, {f"b{i}": {f"k{j}": i + j / 100 for j in range(30)}})
            elif kind == "same-keys":
                h.log_model_metric(model, "shared", f"k{i % 10}", 1.0)
            else:
                h.log_model_metric(model, "shared", f"k{i % 10}", 2.0 + i, force=True)


def test_eight_writer_processes_log_every_expected_value_exactly_once(registry):
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Event()
    procs = [ctx.Process(target=_write, args=(registry, kind, model, start)) for kind, model in WRITERS]
    for p in procs:
        p.start()
    start.set()
    deadline = time.monotonic() + DEADLINE
    for p in procs:
        p.join(max(1, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
    assert [p.exitcode for p in procs] == [0] * len(procs)

    values = _metric_values(registry)
    for model in ("m0", "m1", "m2", "m3"):
        assert {k: v for k, v in values.items() if k[0] == model} == {
            (model, "f", f"k{i}"): i + 0.5 for i in range(N_LOGS)}
    for model in ("m4", "m5"):
        assert {k: v for k, v in values.items() if k[0] == model} == {
            (model, f"b{i}", f"k{j}"): i + j / 100 for i in range(0, N_LOGS, 30) for j in range(30)}
    # The forced writer writes each key last (the plain one is skipped once a key exists), so
    # its last value of each key is the one that stands.
    shared = {k[2]: v for k, v in values.items() if k[0] == "m6"}
    assert shared == {f"k{i % 10}": 2.0 + i for i in range(N_LOGS)}

    # Every event exactly once: one inserted value per key of m0..m5, and m6's history
    # holds its values in the order of the log.
    inserted = Counter()
    for (payload,) in _rows(registry, "SELECT payload FROM events WHERE type = 'metric_inserted'"):
        for m in json.loads(payload)["metrics"]:
            inserted[m["metric_id"]] += 1
    assert set(inserted.values()) == {1} and len(inserted) == len(values)
    assert verify(registry).ok


# -- a writer killed in the middle of a bulk log ----------------------------------------------

_BULK_CHILD = textwrap.dedent("""
    import sys
    from lightml import LightMLHandle
    db = sys.argv[1]
    with LightMLHandle(db, "r") as h:
        print("ready", flush=True)
        h.log_metrics("m7", {f"fam{f}": {f"met{j}": f + j / 1000 for j in range(300)} for f in range(1000)})
        print("done", flush=True)
""")


def test_a_writer_killed_during_a_300000_metric_bulk_log_leaves_all_or_nothing(registry, tmp_path):
    child = tmp_path / "bulk_child.py"
    child.write_text(_BULK_CHILD)
    events_before = _rows(registry, "SELECT count(*) FROM events")[0][0]
    proc = subprocess.Popen([sys.executable, str(child), registry], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    try:
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(1.0)  # the values are being validated, decided or written by now
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL, "the bulk log finished before it could be killed"

    stored = {k for k in _metric_values(registry) if k[0] == "m7"}
    assert len(stored) in (0, 300_000)  # all of it, or nothing
    if not stored:
        assert _rows(registry, "SELECT count(*) FROM events")[0][0] == events_before
    assert verify(registry).ok
    with LightMLHandle(registry, "r") as h:  # and the registry takes the next writer at once
        assert h.log_model_metric("m7", "after", "acc", 0.5) == 1


# -- PostgreSQL: the server restarted under the writers --------------------------------------


def test_postgresql_restarted_while_writing_loses_nothing_and_the_next_call_reconnects(postgres_server, postgres_url):
    if postgres_server.unsupported("restart"):
        pytest.skip(postgres_server.unsupported("restart"))
    with LightMLHandle(postgres_url, "r") as h:
        h.register_model("m", "org/m")
        assert h.log_model_metric("m", "f", "before", 0.1) == 1
        postgres_server.restart()
        outcomes = []
        for i in range(3):  # the first call may meet the dead connection: a clear error, or it reconnects
            try:
                outcomes.append(h.log_model_metric("m", "f", f"after{i}", i + 0.5))
            except RegistryUnavailableError as exc:
                assert "connection" in str(exc) and "not committed" in str(exc)
                outcomes.append("unavailable")
        assert outcomes[-1] == 1 and outcomes.count("unavailable") <= 1
        assert h.model_history("m")  # reads reconnect too
    values = _metric_values(postgres_url)
    expected = {("m", "f", "before"): 0.1, **{("m", "f", f"after{i}"): i + 0.5
                                               for i, o in enumerate(outcomes) if o == 1}}
    assert values == expected  # nothing half-applied: failed calls left no trace
    assert verify(postgres_url).ok
