"""PostgreSQL write/replay benchmarks for LightML, each printed against a raw psycopg baseline.

Run on demand (not part of the test suite):

    python tests/perf/bench_postgres.py           # full sizes (about 15 minutes)
    python tests/perf/bench_postgres.py --quick   # smaller sizes (under 2 minutes)

It starts its own throwaway PostgreSQL (``tests/postgres_server.py``: initdb in a temporary
folder, 127.0.0.1, PostgreSQL's durable defaults: fsync on, ``synchronous_commit=on``) and
stops it at the end, also after an error or Ctrl-C; with ``LIGHTML_TEST_POSTGRES`` set it uses
that server instead and only creates and drops its own databases there. Every measurement
run gets a fresh database, dropped afterwards.

Nothing is asserted: a shared 2-core machine is noisy. Each figure is the median of 3 runs
(fewer where one run takes minutes or spawns 8 interpreters: the header says how many),
printed with its target and, where the issue asks for one, with its ratio to a baseline
measured in the same run on the same server. Each measure also prints one "bound:" line
saying where its time went, from what was measured during it: the SQL statements LightML
sent (counted and timed by wrapping psycopg's ClientCursor, which LightML uses), the
commits, the server's WAL fsyncs (pg_stat_wal), client and server CPU time (/proc), and the
server's round trip and one-row commit latency, measured again right after each measure (the
disk of a shared machine changes speed within minutes). mlflow, when importable, is measured
on the same server (it is not a LightML dependency: install it yourself to compare).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import multiprocessing
import os
import platform
import queue
import signal
import statistics
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tests/, for postgres_server

import bench_core  # noqa: E402  (the SQLite benchmark: same payloads, same helpers)
import figures  # noqa: E402  (tests/perf/figures.py)
from bench_core import (  # noqa: E402
    FAMILIES, PER_FAMILY, bulk_payload, fmt_rate, median_of, runs_text, section, source_state)
from postgres_server import server_for_tests  # noqa: E402

REPEATS = 3
WRITERS = 8  # processes writing at once


@dataclass
class Sizes:
    bulk_calls: int          # log_metrics calls per run, each 1,000 families x 10 metrics
    sync_calls: int          # log_model_metric calls per run (each one durable commit)
    async_tasks: int         # concurrent coroutines
    async_per_task: int      # log_model_metric awaits per coroutine
    proc_bulk_calls: int     # per writer process: log_metrics calls of 100 families x 10 ...
    proc_singles: int        # ... then this many log_model_metric calls
    proc_repeats: int        # runs of the 8-process measure (each spawns 8 interpreters)
    replay_events: int       # events in the replay registry
    replay_repeats: int      # replay runs (each rebuilds every read table)
    mlflow_calls: int        # mlflow log_metric calls per run
    mlflow_batches: int      # mlflow log_batch calls (1,000 metrics each) per run


FULL = Sizes(bulk_calls=5, sync_calls=2_000, async_tasks=100, async_per_task=200, proc_bulk_calls=10,
             proc_singles=100, proc_repeats=3, replay_events=1_000_000, replay_repeats=2,
             mlflow_calls=1_000, mlflow_batches=10)
QUICK = Sizes(bulk_calls=2, sync_calls=300, async_tasks=100, async_per_task=20, proc_bulk_calls=3,
              proc_singles=30, proc_repeats=1, replay_events=100_000, replay_repeats=1,
              mlflow_calls=200, mlflow_batches=3)

PROC_FAMILIES = 100  # families per log_metrics call of a writer process (x PER_FAMILY metrics)


@dataclass
class Row:
    measure: str
    value: float | None      # None: the measure failed or was skipped (see note)
    unit: str
    target: str
    meets: bool | None
    baseline: float | None = None
    baseline_name: str = ""
    note: str = ""

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline if self.value and self.baseline else None


SUMMARY: list[Row] = []
# Figures other sections compare with (mlflow's ratios): measure -> value.
FIGURES: dict[str, float] = {}


# -- the server and its databases -------------------------------------------------------------


@contextlib.contextmanager
def fresh_database(server: Any, hint: str) -> Iterator[str]:
    """A new empty database on ``server`` (its URL), dropped afterwards whatever happens."""
    url = server.create_database(f"bench_{hint}")
    try:
        yield url
    finally:
        server.drop_database(url)


def admin(server: Any):
    import psycopg

    return psycopg.connect(server.url("postgres"), autocommit=True)


def settle(server: Any, url: str, timeout: float = 10.0) -> None:
    """Wait until no session is connected to ``url``'s database: a backend reports its
    statistics (pg_stat_wal) when it exits, so WAL counts read after this include its work."""
    dbname = url.rsplit("/", 1)[1].split("?")[0]
    deadline = time.monotonic() + timeout
    with admin(server) as conn:
        while time.monotonic() < deadline:
            (n,), = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (dbname,)).fetchall()
            if n == 0:
                return
            time.sleep(0.02)


def wal_syncs(server: Any) -> int:
    """The server's WAL fsyncs so far (whole cluster)."""
    with admin(server) as conn:
        return int(conn.execute("SELECT wal_sync FROM pg_stat_wal").fetchone()[0])


def server_cpu(server: Any) -> float | None:
    """CPU seconds used by the server so far: the postmaster, its live children, and the
    children it has reaped (cutime/cstime); None for a server we did not start."""
    root = getattr(server, "pid", None)
    if not root:
        return None
    # /proc is not read atomically: a backend reaped between reading the postmaster and
    # reading the backend would be lost. Two equal scans in a row saw no such exit.
    previous = _server_ticks(root)
    for _ in range(20):
        current = _server_ticks(root)
        if current.keys() == previous.keys() and current[root][1] == previous[root][1]:
            break
        previous = current
    return sum(own + reaped for own, reaped in current.values()) / os.sysconf("SC_CLK_TCK")


def _server_ticks(root: int) -> dict[int, tuple[int, int]]:
    """pid -> (own CPU ticks, ticks of reaped children) of ``root`` and its children."""
    ticks = {root: (0, 0)}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="ascii", errors="replace") as f:
                stat = f.read()
        except OSError:  # exited meanwhile
            continue
        fields = stat[stat.rindex(")") + 2:].split()  # fields from the 3rd (state) on
        pid, ppid = int(entry.name), int(fields[1])
        if pid == root or ppid == root:
            reaped = int(fields[13]) + int(fields[14]) if pid == root else 0  # cutime, cstime
            ticks[pid] = (int(fields[11]) + int(fields[12]), reaped)  # utime, stime
    return ticks


@dataclass
class Latency:
    round_trip: float  # seconds, SELECT 1
    commit: float      # seconds, one-row INSERT in its own (durable) transaction


def measure_latency(server: Any, n: int = 300) -> Latency:
    """The server's floor for one statement and for one durable commit over this connection."""
    import psycopg

    with fresh_database(server, "latency") as url, psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (id BIGINT PRIMARY KEY, v DOUBLE PRECISION)")
        trips, commits = [], []
        for i in range(n):
            t0 = time.perf_counter()
            conn.execute("SELECT 1").fetchone()
            trips.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            conn.execute("INSERT INTO t VALUES (%s, %s)", (i, i / n))  # autocommit: a commit each
            commits.append(time.perf_counter() - t0)
    return Latency(statistics.median(trips), statistics.median(commits))


# -- what a measured window spent -------------------------------------------------------------


class StatementCounter:
    """Counts and times the SQL statements LightML sends, by wrapping psycopg's
    ClientCursor.execute and executemany (LightML binds values on the client with it; the
    baselines use plain cursors and are not counted). Observation only.

    An ``execute`` is one round trip; it may carry several statements (LightML sends the
    writes it held back with the next statement that is answered: "INSERT ...; COMMIT"),
    counted each, and labelled by the last one. A COPY (many rows) is one call."""

    def __init__(self) -> None:
        self.totals = Tally()
        self._lock = threading.Lock()
        self._saved: dict[str, Any] = {}

    def _add(self, query: Any, seconds: float, rows: int) -> None:
        text = " ".join(query.split()) if isinstance(query, str) else type(query).__name__
        parts = text.split("; ")
        last = parts[-1]
        if " VALUES " in last:  # (composed values: one label for all of them)
            last = last[:last.index(" VALUES ")] + " VALUES ..."
        label = last if len(parts) == 1 else f"{last} (with the held writes before it)"
        if "pg_advisory_xact_lock" in text:
            label = text  # (BEGIN; SELECT pg_...lock: which lock is in the label)
        with self._lock:
            self.totals.add(label, seconds, max(rows, len(parts)))

    def __enter__(self) -> "StatementCounter":
        import psycopg

        cls, counter = psycopg.ClientCursor, self
        execute, executemany, copy = cls.execute, cls.executemany, cls.copy
        self._saved = {name: cls.__dict__.get(name) for name in ("execute", "executemany", "copy")}

        def counted_execute(cur, query, params=None, **kwargs):
            t0 = time.perf_counter()
            try:
                return execute(cur, query, params, **kwargs)
            finally:
                counter._add(query, time.perf_counter() - t0, 1)

        def counted_executemany(cur, query, params_seq, **kwargs):
            params_seq = list(params_seq)
            t0 = time.perf_counter()
            try:
                return executemany(cur, query, params_seq, **kwargs)
            finally:
                counter._add(query, time.perf_counter() - t0, len(params_seq))

        @contextlib.contextmanager
        def counted_copy(cur, statement, *args, **kwargs):
            t0 = time.perf_counter()
            try:
                with copy(cur, statement, *args, **kwargs) as rows:
                    yield rows
            finally:
                counter._add(statement, time.perf_counter() - t0, 1)

        cls.execute, cls.executemany, cls.copy = counted_execute, counted_executemany, counted_copy
        return self

    def __exit__(self, *exc: object) -> None:
        import psycopg

        for name, original in self._saved.items():
            if original is None:
                delattr(psycopg.ClientCursor, name)
            else:
                setattr(psycopg.ClientCursor, name, original)

    def snapshot(self) -> "Tally":
        with self._lock:
            return self.totals.copy()


@dataclass
class Tally:
    """Statements sent: psycopg calls (~ round trips), statements (rows of an executemany
    count one each), commits, seconds inside the calls, of which waiting for the decide
    lock; and per statement text, [calls, seconds]."""

    calls: int = 0
    statements: int = 0
    commits: int = 0
    seconds: float = 0.0
    lock_seconds: float = 0.0
    by_text: dict[str, list] = field(default_factory=dict)

    def add(self, text: str, seconds: float, rows: int) -> None:
        self.calls += 1
        self.statements += rows
        self.seconds += seconds
        if text.upper().startswith("COMMIT"):  # (a COMMIT with the writes held before it)
            self.commits += 1
        elif "pg_advisory_xact_lock" in text:  # the decide lock: waiting for other writers
            self.lock_seconds += seconds
        entry = self.by_text.setdefault(text, [0, 0.0])
        entry[0] += 1
        entry[1] += seconds

    def copy(self) -> "Tally":
        return Tally(self.calls, self.statements, self.commits, self.seconds, self.lock_seconds,
                     {k: list(v) for k, v in self.by_text.items()})

    def __sub__(self, earlier: "Tally") -> "Tally":
        by_text = {}
        for text, (n, sec) in self.by_text.items():
            n0, sec0 = earlier.by_text.get(text, (0, 0.0))
            if n > n0:
                by_text[text] = [n - n0, sec - sec0]
        return Tally(self.calls - earlier.calls, self.statements - earlier.statements, self.commits - earlier.commits,
                     self.seconds - earlier.seconds, self.lock_seconds - earlier.lock_seconds, by_text)

    def __add__(self, other: "Tally") -> "Tally":
        by_text = {k: list(v) for k, v in self.by_text.items()}
        for text, (n, sec) in other.by_text.items():
            entry = by_text.setdefault(text, [0, 0.0])
            entry[0] += n
            entry[1] += sec
        return Tally(self.calls + other.calls, self.statements + other.statements, self.commits + other.commits,
                     self.seconds + other.seconds, self.lock_seconds + other.lock_seconds, by_text)


@dataclass
class Spent:
    """What one measured window cost. ``busy`` is the sum of the writers' own wall times (one
    writer: the window's wall time); ``sent`` what the statements were."""

    wall: float
    busy: float
    client_cpu: float
    sent: Tally
    server_cpu: float | None = None
    fsyncs: int | None = None

    def __add__(self, other: "Spent") -> "Spent":  # several writers' shares of one window
        return Spent(max(self.wall, other.wall), self.busy + other.busy, self.client_cpu + other.client_cpu,
                     self.sent + other.sent)


class Window:
    """Measure one timed window in this process: ``with Window(counter) as w: ...`` then
    ``w.spent`` (server CPU and fsyncs are added by the caller, who knows when it settled)."""

    def __init__(self, counter: StatementCounter) -> None:
        self.counter = counter
        self.spent: Spent | None = None

    def __enter__(self) -> "Window":
        self._sent0 = self.counter.snapshot()
        self._cpu0 = time.process_time()
        self._t0 = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        wall = time.perf_counter() - self._t0
        cpu = time.process_time() - self._cpu0
        self.spent = Spent(wall, wall, cpu, self.counter.snapshot() - self._sent0)


def per_unit(x: float) -> str:
    """A count per unit: 15.0, 1.1, 0.010."""
    return f"{x:,.1f}" if x >= 1 or x == 0 else f"{x:.3f}"


def bound_line(spent: Spent, units: int, unit: str, lat: Latency) -> str:
    """One line: where the time of one ``unit`` went, and the largest share named as the bound.

    Time inside psycopg calls is split with the latencies ``lat``: each call costs at least
    a round trip, each commit at least a durable one-row commit; the rest is
    the server executing the statements (and psycopg composing them). Outside the calls it
    is LightML's own Python. When client and server together kept the machine's cores busy,
    that is the bound whatever the split. The statement that took the most time is named."""
    sent = spent.sent
    per = lambda seconds: seconds / units * 1e3  # ms per unit
    trips = sent.calls * lat.round_trip
    fsync = sent.commits * max(lat.commit - lat.round_trip, 0.0)
    lock = sent.lock_seconds
    execution = max(sent.seconds - trips - fsync - lock, 0.0)
    python = max(spent.busy - sent.seconds, 0.0)
    shares = {
        f"round trips ({per_unit(sent.calls / units)} per {unit}, {lat.round_trip * 1e3:.2f} ms each)": trips,
        f"commit waits ({per_unit(sent.commits / units)} commits per {unit}, "
        f"one-row commit {lat.commit * 1e3:.2f} ms)": fsync,
        "waiting for the decide lock (other writers' transactions)": lock,
        f"server execution of the statements ({per_unit(sent.statements / units)} per {unit}) "
        "and psycopg composing them": execution,
        "LightML's Python outside SQL statements": python,
    }
    name = max(shares, key=shares.get)
    cores = os.cpu_count() or 1
    cpu_text = f"CPU client {spent.client_cpu / spent.wall:.0%}"
    if spent.server_cpu is not None:
        cpu_text += f" + server {spent.server_cpu / spent.wall:.0%}"
    cpu_text += f" of one core ({cores} cores)"
    if spent.fsyncs is not None and sent.commits:
        cpu_text += f"; server WAL fsyncs {spent.fsyncs:,} ({spent.fsyncs / sent.commits:.2f} per commit)"
    bound = f"{name}, {shares[name] / spent.busy:.0%} of the time"
    cpu = spent.client_cpu + (spent.server_cpu or 0.0)
    if spent.server_cpu is not None and cpu >= 0.85 * cores * spent.wall:
        bound = (f"the machine's CPU (client + server kept {cpu / spent.wall:.1f} of {cores} cores busy); "
                 f"largest share: {bound}")
    top = ""
    if sent.by_text:
        text, (n, sec) = max(sent.by_text.items(), key=lambda item: item[1][1])
        shown = text if len(text) <= 60 else text[:57] + "..."
        top = f"; slowest statement {per(sec):.2f} ms per {unit} ({per_unit(n / units)} calls): {shown}"
    return (f"  bound: {bound}. Per {unit} {per(spent.busy):.2f} ms: {per(sent.seconds):.2f} ms in psycopg calls "
            f"(lock wait {per(lock):.2f} ms), {per(python):.2f} ms outside them; {cpu_text}{top}")


def finish_spent(server: Any, url: str, spent: Spent, cpu0: float | None, fsyncs0: int) -> Spent:
    """Add the server's share to ``spent`` once every connection to ``url`` is gone (and
    their backends' CPU time is the postmaster's reaped time)."""
    settle(server, url)
    cpu1 = server_cpu(server)
    spent.server_cpu = cpu1 - cpu0 if cpu0 is not None and cpu1 is not None else None
    spent.fsyncs = wal_syncs(server) - fsyncs0
    return spent


def measured_on_new_registry(server: Any, hint: str, spents: list[Spent],
                             measure: Callable[[str], Spent]) -> Spent:
    """A fresh database holding a registry with one model, org/model (run "bench"), left to
    settle; ``measure(url)`` returns the Spent of its measured window, which gets the
    server's share (``finish_spent``) and is appended to ``spents``."""
    from lightml import LightMLHandle

    with fresh_database(server, hint) as url:
        with LightMLHandle(url, "bench") as h:
            h.register_model("org/model", "org/model")
        settle(server, url)
        fsyncs0, cpu0 = wal_syncs(server), server_cpu(server)
        spent = measure(url)
        spents.append(finish_spent(server, url, spent, cpu0, fsyncs0))
    return spent


def median_spent(spents: list[Spent]) -> Spent:
    """The run of median duration (its costs go with the median figure)."""
    return sorted(spents, key=lambda s: s.wall)[len(spents) // 2]


# -- 1. bulk log_metrics ----------------------------------------------------------------------


# The columns of LightML's metrics table on PostgreSQL, without its references and check.
METRICS_COLUMNS = ('id BIGINT PRIMARY KEY, model_id BIGINT, checkpoint_id BIGINT, family TEXT COLLATE "C" NOT NULL, '
                   'metric_name TEXT COLLATE "C" NOT NULL, value DOUBLE PRECISION')
# The unique index of LightML's metrics table (projections/metrics.py).
METRICS_KEY = "CREATE UNIQUE INDEX {table}_key ON {table} (model_id, family, metric_name) WHERE model_id IS NOT NULL"


def plain_table(conn: Any, table: str, indexed: bool) -> None:
    conn.execute(f"CREATE TABLE {table} ({METRICS_COLUMNS})")
    if indexed:
        conn.execute(METRICS_KEY.format(table=table))


def copy_rows(conn: Any, table: str, rows: Iterator[tuple] | list[tuple]) -> None:
    statement = f"COPY {table} (id, model_id, checkpoint_id, family, metric_name, value) FROM STDIN"
    with conn.cursor().copy(statement) as copy:
        for row in rows:
            copy.write_row(row)


def bench_bulk(server: Any, sizes: Sizes, counter: StatementCounter) -> None:
    import psycopg
    from lightml import LightMLHandle

    section(f"1. log_metrics bulk: {sizes.bulk_calls} calls x {FAMILIES:,} families x {PER_FAMILY} metrics, one model")
    payloads = [bulk_payload(c) for c in range(sizes.bulk_calls)]
    n_metrics = sizes.bulk_calls * FAMILIES * PER_FAMILY
    spents: list[Spent] = []

    def measure(url: str) -> Spent:
        with LightMLHandle(url, "bench") as h:
            with Window(counter) as w:
                for payload in payloads:
                    result = h.log_metrics("org/model", payload)
                    assert result["inserted"] == FAMILIES * PER_FAMILY, result
        return w.spent

    def lib_run() -> float:
        return n_metrics / measured_on_new_registry(server, "bulk", spents, measure).wall

    rows = [(i + 1, 1, None, family, name, value) for i, (family, name, value) in enumerate(
        (family, name, value) for payload in payloads for family, values in payload.items()
        for name, value in values.items())]

    def copy_run(indexed: bool) -> float:
        with fresh_database(server, "copy") as url, psycopg.connect(url, autocommit=True) as conn:
            plain_table(conn, "metrics_copy", indexed)
            t0 = time.perf_counter()
            with conn.transaction():
                copy_rows(conn, "metrics_copy", rows)
            return n_metrics / (time.perf_counter() - t0)

    lib, lib_runs = median_of(REPEATS, lib_run)
    copy_ix, copy_ix_runs = median_of(REPEATS, lambda: copy_run(True))
    copy_plain, copy_plain_runs = median_of(REPEATS, lambda: copy_run(False))
    ratio = lib / copy_ix
    print(f"  lightml log_metrics       : {fmt_rate(lib)} metrics/s   runs {runs_text(lib_runs)}")
    print(f"  psycopg COPY, unique index: {fmt_rate(copy_ix)} metrics/s   runs {runs_text(copy_ix_runs)}"
          "  (plain table, the metrics key (model_id, family, metric_name), one commit)")
    print(f"  psycopg COPY, no index    : {fmt_rate(copy_plain)} metrics/s   runs {runs_text(copy_plain_runs)}"
          "  (reference)")
    print(f"  ratio lib/COPY(index)     : {ratio:.2f}x   (vs COPY without index {lib / copy_plain:.2f}x)"
          "   target >= 0.3x and >= 50,000 metrics/s")
    print(bound_line(median_spent(spents), sizes.bulk_calls, "call", measure_latency(server)))
    FIGURES["bulk"] = lib
    SUMMARY.append(Row("1 log_metrics bulk", lib, "metrics/s", ">=50,000/s & >=0.3x", lib >= 50_000 and ratio >= 0.3,
                       copy_ix, "COPY + index"))


# -- 2. sync log_model_metric -----------------------------------------------------------------


def bench_sync(server: Any, sizes: Sizes, counter: StatementCounter) -> None:
    import psycopg
    from lightml import LightMLHandle

    n = sizes.sync_calls
    section(f"2. sync log_model_metric: {n:,} calls, one durable commit each")
    spents: list[Spent] = []

    def measure(url: str) -> Spent:
        with LightMLHandle(url, "bench") as h:
            with Window(counter) as w:
                for i in range(n):
                    h.log_model_metric("org/model", "task", f"metric_{i}", i / n)
        return w.spent

    def lib_run() -> float:
        return n / measured_on_new_registry(server, "sync", spents, measure).wall

    raw_fsyncs: list[float] = []

    def raw_run() -> float:
        with fresh_database(server, "rawsync") as url:
            with psycopg.connect(url, autocommit=True) as conn:
                plain_table(conn, "metrics_raw", indexed=True)
                settle_fsyncs = wal_syncs(server)
                t0 = time.perf_counter()
                for i in range(n):  # autocommit: every INSERT is its own transaction
                    conn.execute("INSERT INTO metrics_raw VALUES (%s, %s, %s, %s, %s, %s)",
                                 (i + 1, 1, None, "task", f"metric_{i}", i / n))
                elapsed = time.perf_counter() - t0
            settle(server, url)
            raw_fsyncs.append((wal_syncs(server) - settle_fsyncs) / n)
        return n / elapsed

    lib, lib_runs = median_of(REPEATS, lib_run)
    raw, raw_runs = median_of(REPEATS, raw_run)
    print(f"  lightml log_model_metric     : {fmt_rate(lib):>7} calls/s    runs {runs_text(lib_runs)}")
    print(f"  psycopg one-row INSERT+commit: {fmt_rate(raw):>7} commits/s  runs {runs_text(raw_runs)}"
          f"  (WAL fsyncs per commit {statistics.median(raw_fsyncs):.2f})  -> ratio {lib / raw:.2f}x")
    print("  target >= 1,000 calls/s")
    print(bound_line(median_spent(spents), n, "call", measure_latency(server)))
    FIGURES["sync"] = lib
    SUMMARY.append(Row("2 sync log_model_metric", lib, "calls/s", ">=1,000/s", lib >= 1_000, raw, "raw commit/row"))


# -- 3. async concurrent log_model_metric -----------------------------------------------------


def bench_async(server: Any, sizes: Sizes, counter: StatementCounter) -> None:
    from lightml import AsyncLightMLHandle

    tasks, per_task = sizes.async_tasks, sizes.async_per_task
    total = tasks * per_task
    section(f"3. async: {tasks} coroutines x {per_task} log_model_metric on one AsyncLightMLHandle")
    spents: list[Spent] = []

    async def run_once(url: str) -> Spent:
        async with AsyncLightMLHandle(url, "bench") as h:
            await h.model_exists("org/model")  # opened before the clock starts

            async def worker(k: int) -> None:
                for i in range(per_task):
                    await h.log_model_metric("org/model", f"task_{k}", f"metric_{i}", i / per_task)

            with Window(counter) as w:
                await asyncio.gather(*(worker(k) for k in range(tasks)))
        return w.spent

    def one() -> float:
        return total / measured_on_new_registry(server, "async", spents,
                                                lambda url: asyncio.run(run_once(url))).wall

    rate, runs = median_of(REPEATS, one)
    spent = median_spent(spents)
    print(f"  lightml async : {fmt_rate(rate)} metrics/s   runs {runs_text(runs)}   target >= 20,000 metrics/s")
    print(f"  group commit  : {total:,} metrics in {spent.sent.commits:,} transactions "
          f"({total / max(spent.sent.commits, 1):.1f} metrics per commit)")
    print(bound_line(spent, total, "metric", measure_latency(server)))
    SUMMARY.append(Row("3 async 100 coroutines", rate, "metrics/s", ">=20,000/s", rate >= 20_000))


# -- 4. eight writer processes ----------------------------------------------------------------


def proc_payload(k: int, call: int) -> dict[str, dict[str, float]]:
    """100 families x 10 metrics, keys new for every writer and call."""
    return {f"p{k}_c{call}_task_{f:03d}": {f"metric_{m}": (f * PER_FAMILY + m) / 1_000 for m in range(PER_FAMILY)}
            for f in range(PROC_FAMILIES)}


def writer_process(url: str, k: int, bulk_calls: int, singles: int, barrier: Any, results: Any) -> None:
    """One of the writer processes (spawned): its own handle and model, its own keys; waits
    for the others, writes, and reports what its window cost."""
    try:
        from lightml import LightMLHandle

        with StatementCounter() as counter, LightMLHandle(url, f"writer-{k}") as h:
            model = f"org/writer-{k}"
            h.model_exists(model)  # connected before the clock starts
            barrier.wait(timeout=300)
            start = time.monotonic()
            with Window(counter) as w:
                for c in range(bulk_calls):
                    h.log_metrics(model, proc_payload(k, c))
                for i in range(singles):
                    h.log_model_metric(model, "single", f"metric_{i}", i / max(singles, 1))
            end = time.monotonic()
        results.put(("ok", k, start, end, w.spent))
    except BaseException as exc:  # reported to the parent, which prints it
        barrier.abort()
        results.put(("error", k, f"{type(exc).__name__}: {exc}", traceback.format_exc(), None))


def check_nothing_lost(url: str, expected_per_writer: int) -> tuple[bool, str]:
    """Every expected metric is in ``metrics`` and in the log exactly once, and verify passes."""
    import psycopg
    import lightml

    expected = WRITERS * expected_per_writer
    with psycopg.connect(url) as conn:
        (rows, keys), = conn.execute(
            "SELECT count(*), count(DISTINCT (model_id, family, metric_name)) FROM metrics").fetchall()
        per_model = conn.execute("SELECT model_id, count(*) FROM metrics GROUP BY model_id").fetchall()
        (logged, ids, logged_keys), = conn.execute(
            "SELECT count(*), count(DISTINCT m->>'metric_id'), "
            "count(DISTINCT (e.payload::json->>'model_id', m->>'family', m->>'metric_name')) "
            "FROM events e, json_array_elements(e.payload::json->'metrics') m "
            "WHERE e.type = 'metric_inserted'").fetchall()
        (others,), = conn.execute("SELECT count(*) FROM events WHERE type = 'metric_overwritten'").fetchall()
    verified = lightml.verify(url)
    ok = (rows == keys == logged == ids == logged_keys == expected and others == 0 and len(per_model) == WRITERS
          and all(n == expected_per_writer for _, n in per_model) and verified.ok)
    detail = (f"expected {expected:,}: metrics rows {rows:,} (distinct keys {keys:,}, {len(per_model)} models); "
              f"metrics in metric_inserted events {logged:,} (distinct ids {ids:,}, keys {logged_keys:,}); "
              f"overwrite events {others}; verify ok={verified.ok}")
    return ok, detail


def collect_reports(results: Any, procs: list) -> list[tuple]:
    """One report per writer process; a process that died without reporting (killed) is
    reported as an error instead of waiting for it forever."""
    reports: list[tuple] = []
    while len(reports) < len(procs):
        try:
            reports.append(results.get(timeout=1.0))
        except queue.Empty:
            if not any(p.is_alive() for p in procs):
                try:  # a report may have arrived just before the last process exited
                    reports.append(results.get(timeout=1.0))
                except queue.Empty:
                    dead = [p.exitcode for p in procs]
                    reports.append(("error", "?", f"a writer process exited without a report (exit codes {dead})",
                                    "", None))
                    break
    return reports


def bench_processes(server: Any, sizes: Sizes) -> None:
    from lightml import LightMLHandle

    per_writer = sizes.proc_bulk_calls * PROC_FAMILIES * PER_FAMILY + sizes.proc_singles
    total = WRITERS * per_writer
    section(f"4. {WRITERS} writer processes at once (spawn), each its own LightMLHandle and model: "
            f"{sizes.proc_bulk_calls} log_metrics x {PROC_FAMILIES} families x {PER_FAMILY} "
            f"+ {sizes.proc_singles} log_model_metric = {per_writer:,} metrics each")
    ctx = multiprocessing.get_context("spawn")
    spents: list[Spent] = []
    verdicts: list[tuple[bool, str]] = []

    def one() -> float:
        with fresh_database(server, "procs") as url:
            for k in range(WRITERS):  # runs and models made beforehand: only metrics are timed
                with LightMLHandle(url, f"writer-{k}") as h:
                    h.register_model(f"org/writer-{k}", f"org/writer-{k}")
            settle(server, url)
            fsyncs0 = wal_syncs(server)
            barrier, results = ctx.Barrier(WRITERS + 1), ctx.Queue()
            procs = [ctx.Process(target=writer_process, args=(url, k, sizes.proc_bulk_calls, sizes.proc_singles,
                                                              barrier, results), daemon=True)
                     for k in range(WRITERS)]
            try:
                for p in procs:
                    p.start()
                try:
                    barrier.wait(timeout=300)  # every writer connected
                except threading.BrokenBarrierError:
                    pass  # a writer failed before starting: its report says why
                cpu0 = server_cpu(server)
                reports = collect_reports(results, procs)
                for p in procs:
                    p.join(timeout=60)
            finally:
                for p in procs:
                    if p.is_alive():
                        p.terminate()
                        p.join(timeout=10)
            errors = [r for r in reports if r[0] == "error"]
            if errors:
                for _, k, message, tb, _ in errors:
                    print(f"  writer {k} failed: {message}\n{tb}")
                raise RuntimeError(f"{len(errors)} of {WRITERS} writer processes failed: {errors[0][2]}")
            start = min(r[2] for r in reports)
            wall = max(r[3] for r in reports) - start
            spent = sum((r[4] for r in reports[1:]), reports[0][4])  # the writers' costs, added up
            spent.wall = wall
            spents.append(finish_spent(server, url, spent, cpu0, fsyncs0))
            verdicts.append(check_nothing_lost(url, per_writer))
        return total / wall

    rate, runs = median_of(sizes.proc_repeats, one)
    spent = median_spent(spents)
    lost_nothing = all(ok for ok, _ in verdicts)
    print(f"  aggregate : {fmt_rate(rate)} metrics/s   runs {runs_text(runs)}   target >= 10,000 metrics/s")
    for ok, detail in verdicts:
        print(f"  check     : {detail}")
    print(f"  nothing lost: {lost_nothing}")
    print(f"  transactions: {spent.sent.commits:,} commits, server WAL fsyncs {spent.fsyncs:,} "
          f"({spent.fsyncs / max(spent.sent.commits, 1):.2f} per commit: concurrent commits can share one)")
    print(bound_line(spent, total // 1_000, "1,000 metrics", measure_latency(server)))
    SUMMARY.append(Row(f"4 {WRITERS} writer processes", rate, "metrics/s", ">=10,000/s & nothing lost",
                       rate >= 10_000 and lost_nothing, None, "", f"nothing lost: {lost_nothing}"))


# -- 5. replay --------------------------------------------------------------------------------


def build_replay_registry(url: str, n_events: int) -> float:
    """bench_core's replay registry (~n_events single-metric events), on PostgreSQL, built with
    ``synchronous_commit=off`` (set-up, not measured)."""
    return bench_core.build_replay_registry(url, n_events, synchronous="NORMAL", batch=5_000)


def bench_replay(server: Any, sizes: Sizes, counter: StatementCounter) -> None:
    import psycopg
    from lightml.log.replay import replay

    n = sizes.replay_events
    section(f"5. replay of {n:,} events in place")
    with fresh_database(server, "replay") as url:
        build_s = build_replay_registry(url, n)
        with psycopg.connect(url) as conn:
            n_events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
            size = conn.execute("SELECT pg_database_size(current_database())").fetchone()[0]
        print(f"  built {n_events:,} events in {build_s:.1f} s (database {size / 2**20:,.0f} MiB)")
        spents: list[Spent] = []

        def replay_run() -> float:
            settle(server, url)
            fsyncs0, cpu0 = wal_syncs(server), server_cpu(server)
            with Window(counter) as w:
                result = replay(url)
            assert result.events_applied == n_events, result
            spents.append(finish_spent(server, url, w.spent, cpu0, fsyncs0))
            return n_events / w.spent.wall

        rate, runs = median_of(sizes.replay_repeats, replay_run)
        print(f"  replay : {fmt_rate(rate)} events/s ({n_events / rate:.1f} s)  runs {runs_text(runs)}"
              "   target >= 50,000/s (at 1,000,000 events)")

        # Baseline: the raw floor of the same work: read every payload (a server-side cursor,
        # never all rows at once), json.loads it, COPY the metric rows into a plain table with
        # the metrics key, one transaction, in a database of its own.
        def raw_run() -> float:
            with fresh_database(server, "replayraw") as out_url, \
                    psycopg.connect(url) as src, psycopg.connect(out_url, autocommit=True) as out:
                plain_table(out, "metrics_copy", indexed=True)
                t0 = time.perf_counter()
                with src.cursor(name="payloads") as cur, out.transaction():
                    cur.itersize = 20_000
                    cur.execute("SELECT payload FROM events WHERE type = 'metric_inserted' ORDER BY seq")

                    def metric_rows() -> Iterator[tuple]:
                        for (payload,) in cur:
                            p = json.loads(payload)
                            for m in p["metrics"]:
                                yield m["metric_id"], p["model_id"], None, m["family"], m["metric_name"], m["value"]

                    copy_rows(out, "metrics_copy", metric_rows())
                return n_events / (time.perf_counter() - t0)

        raw, raw_runs = median_of(sizes.replay_repeats, raw_run)
    print(f"  raw floor (read payloads, json.loads, COPY into a plain table with the metrics key): "
          f"{fmt_rate(raw)} events/s  runs {runs_text(raw_runs)}  -> replay ratio {rate / raw:.2f}x")
    print(bound_line(median_spent(spents), n_events // 1_000, "1,000 events", measure_latency(server)))
    SUMMARY.append(Row("5 replay", rate, "events/s", ">=50,000/s", rate >= 50_000, raw, "json+COPY"))


# -- 6. mlflow, the peer ----------------------------------------------------------------------


def sqlalchemy_url(url: str) -> str:
    """``url`` with the SQLAlchemy driver that is installed (psycopg2 is SQLAlchemy's default
    for postgresql://; psycopg 3 is what LightML needs anyway)."""
    import importlib.util

    return url if importlib.util.find_spec("psycopg2") else url.replace("postgresql://", "postgresql+psycopg://", 1)


def bench_mlflow(server: Any, sizes: Sizes) -> None:
    section(f"6. mlflow's SQLAlchemy store on the same server: {sizes.mlflow_calls:,} log_metric calls, "
            f"{sizes.mlflow_batches} log_batch calls x 1,000 metrics")
    try:
        import mlflow
        from mlflow.entities import Metric
        from mlflow.tracking import MlflowClient
    except ImportError as exc:
        print(f"  skipped: mlflow is not importable here ({exc}). To compare, install it into this environment "
              "(pip install mlflow; it is not a LightML dependency) and run again.")
        SUMMARY.append(Row("6 mlflow", None, "", "(info)", None, note="skipped"))
        return
    import logging

    for noisy in ("alembic", "mlflow"):  # its schema creation logs every step
        logging.getLogger(noisy).setLevel(logging.WARNING)
    per_call: list[float] = []
    per_batch: list[float] = []
    costs: dict[str, list[tuple[float, float, float | None]]] = {"call": [], "batch": []}

    def timed(kind: str, work: Callable[[], None]) -> float:
        """Run ``work``; its seconds, with its client and server CPU seconds kept in ``costs``."""
        cpu0, server0, t0 = time.process_time(), server_cpu(server), time.perf_counter()
        work()
        wall = time.perf_counter() - t0
        server1 = server_cpu(server)
        costs[kind].append((wall, time.process_time() - cpu0, server1 - server0 if server0 is not None else None))
        return wall

    def one(artifacts: str) -> None:
        with fresh_database(server, "mlflow") as url:
            mlflow.set_tracking_uri(sqlalchemy_url(url))
            client = MlflowClient()
            # (the first call creates mlflow's schema: not timed)
            experiment = client.create_experiment("bench", artifact_location=Path(artifacts).as_uri())
            with mlflow.start_run(experiment_id=experiment) as run:
                n = sizes.mlflow_calls

                def log_each() -> None:
                    for i in range(n):
                        mlflow.log_metric(f"task/metric_{i}", i / n, step=0)

                per_call.append(n / timed("call", log_each))
                stamp = int(time.time() * 1000)
                batches = [[Metric(f"b{b}_task_{f // PER_FAMILY:03d}/metric_{f % PER_FAMILY}", f / 1_000, stamp, 0)
                            for f in range(1_000)] for b in range(sizes.mlflow_batches)]

                def log_batches() -> None:
                    for metrics in batches:
                        client.log_batch(run.info.run_id, metrics=metrics)

                per_batch.append(sizes.mlflow_batches * 1_000 / timed("batch", log_batches))
            _dispose_sqlalchemy_engines()  # before the database is dropped

    with tempfile.TemporaryDirectory(prefix="lightml-bench-mlflow-") as artifacts:
        for _ in range(REPEATS):
            one(artifacts)
    call, batch = statistics.median(per_call), statistics.median(per_batch)
    print(f"  mlflow {mlflow.__version__} log_metric : {fmt_rate(call)} calls/s    runs {runs_text(per_call)}")
    print(f"  mlflow log_batch (1,000) : {fmt_rate(batch)} metrics/s  runs {runs_text(per_batch)}")
    for kind, what in (("call", "log_metric calls"), ("batch", "log_batch calls")):
        wall, client_cpu, server_s = sorted(costs[kind])[len(costs[kind]) // 2]
        client_share, server_share = client_cpu / wall, (server_s or 0.0) / wall
        bound = ("client CPU (mlflow and SQLAlchemy in Python)" if client_share >= 0.5 else
                 "the server's CPU" if server_share >= 0.5 else "waiting on round trips and commits")
        server_text = f" + server {server_share:.0%}" if server_s is not None else ""
        print(f"  bound ({what}): {bound}: CPU client {client_share:.0%}{server_text} of one core during them "
              "(mlflow's statements are not counted: only LightML's cursors are wrapped)")
    for name, ours, theirs in (("sync log_model_metric vs log_metric", FIGURES.get("sync"), call),
                               ("log_metrics vs log_batch", FIGURES.get("bulk"), batch)):
        if ours:
            print(f"  lightml {name}: {ours / theirs:.2f}x")
    SUMMARY.append(Row("6 lightml vs mlflow call", FIGURES.get("sync"), "calls/s", "(info)", None, call,
                       "mlflow log_metric"))
    SUMMARY.append(Row("6 lightml vs mlflow bulk", FIGURES.get("bulk"), "metrics/s", "(info)", None, batch,
                       "mlflow log_batch"))


def _dispose_sqlalchemy_engines() -> None:
    """Close the connection pools of mlflow's SQLAlchemy stores (mlflow caches a store per
    URI and gives no call to close one), so that no session is left on a dropped database."""
    import gc

    from sqlalchemy.engine import Engine

    for obj in gc.get_objects():
        if isinstance(obj, Engine):
            obj.dispose()


# -- main -------------------------------------------------------------------------------------


def run_measure(name: str, bench: Callable[[], None]) -> None:
    """Run one measure; a failure (e.g. a LightML bug) is printed and the next one runs."""
    try:
        bench()
    except Exception as exc:
        print(f"  ERROR in {name}: {type(exc).__name__}: {exc}")
        traceback.print_exc(file=sys.stdout)
        SUMMARY.append(Row(name, None, "", "", False, note=f"ERROR: {type(exc).__name__}"))


def print_summary() -> None:
    section("summary (median of runs; ratio = lightml / the baseline measured in this run)")
    print(f"  {'measure':<26} {'figure':>18} {'baseline':>12} {'':<18} {'ratio':>7}  {'target':<26} meets")
    for r in SUMMARY:
        value = f"{fmt_rate(r.value)} {r.unit}" if r.value is not None else r.note
        base = fmt_rate(r.baseline) if r.baseline else "-"
        ratio = f"{r.ratio:.2f}x" if r.ratio else "-"
        meets = "-" if r.meets is None else ("yes" if r.meets else "NO")
        if r.value is None and r.note.startswith("ERROR"):
            meets = "ERROR"
        extra = f"  ({r.note})" if r.note and r.value is not None else ""
        print(f"  {r.measure:<26} {value:>18} {base:>12} {r.baseline_name:<18} {ratio:>7}  {r.target:<26} "
              f"{meets}{extra}")
        figures.record("postgres", r.measure, value, r.target if r.target not in ("", "(info)") else "",
                       r.meets if r.target not in ("", "(info)") else None,
                       f"{r.ratio:.2f}x of {r.baseline_name}" if r.ratio else "")
    figures.write()


def describe_server(server: Any, lat: Latency) -> None:
    with admin(server) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        settings = {name: conn.execute(f"SHOW {name}").fetchone()[0]
                    for name in ("synchronous_commit", "fsync", "wal_sync_method", "full_page_writes",
                                 "shared_buffers", "commit_delay")}
    where = "throwaway server (initdb)" if getattr(server, "pid", None) else f"existing server {server!r} (shared)"
    print(f"PostgreSQL {version}, {where} on {server.url('postgres').split('@')[1].rsplit('/', 1)[0]}: "
          + ", ".join(f"{k}={v}" for k, v in settings.items()))
    if settings["fsync"] != "on" or settings["synchronous_commit"] != "on":
        print("note: this server is NOT at default durability: commit figures are not comparable")
    if not getattr(server, "pid", None):
        print("note: an existing server: WAL fsync counts are the whole cluster's and server CPU is not measured")
    print(f"server floor (median of 300, one psycopg connection): round trip (SELECT 1) {lat.round_trip * 1e3:.3f} ms, "
          f"one-row INSERT + durable commit {lat.commit * 1e3:.3f} ms (ceiling ~{1 / lat.commit:,.0f} commits/s "
          "per connection)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a fast check (under 2 minutes)")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL
    # SIGTERM unwinds like Ctrl-C, so the server is stopped and its folder removed.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))

    import psycopg

    print(f"LightML PostgreSQL benchmark ({'quick' if args.quick else 'full'}): Python {platform.python_version()}, "
          f"psycopg {psycopg.__version__}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"median of {REPEATS} runs per figure ({WRITERS} writers: {sizes.proc_repeats}, replay: "
          f"{sizes.replay_repeats}); a fresh database per run; {source_state()}")
    started = time.perf_counter()
    with server_for_tests() as server:
        print(f"server started in {time.perf_counter() - started:.1f} s")
        lat = measure_latency(server)
        describe_server(server, lat)
        with StatementCounter() as counter:
            run_measure("1 log_metrics bulk", lambda: bench_bulk(server, sizes, counter))
            run_measure("2 sync log_model_metric", lambda: bench_sync(server, sizes, counter))
            run_measure("3 async 100 coroutines", lambda: bench_async(server, sizes, counter))
            run_measure(f"4 {WRITERS} writer processes", lambda: bench_processes(server, sizes))
            run_measure("5 replay", lambda: bench_replay(server, sizes, counter))
        run_measure("6 mlflow", lambda: bench_mlflow(server, sizes))
        print_summary()
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s (server stopped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
