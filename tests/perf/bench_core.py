"""Core write/replay/startup benchmarks for LightML, each printed against a raw baseline.

Run on demand (not part of the test suite):

    python tests/perf/bench_core.py           # full run (about 4-6 minutes)
    python tests/perf/bench_core.py --quick   # smaller sizes (under a minute)

Nothing is asserted: shared machines are noisy. Every figure is the median of 3 runs
(startup times: of 5), printed with its target and with its ratio to a baseline measured
in the same run, so a slow disk or CPU moves both sides. All files live in temporary
folders that are removed at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

REPEATS = 3
STARTUP_REPEATS = 5


@dataclass
class Sizes:
    bulk_calls: int          # log_metrics calls per run, each 1,000 families x 10 metrics
    sync_calls: int          # log_model_metric calls per run (each one durable commit)
    async_tasks: int         # concurrent coroutines
    async_per_task: int      # log_model_metric awaits per coroutine
    replay_events: int       # events in the replay registry


FULL = Sizes(bulk_calls=5, sync_calls=2_000, async_tasks=100, async_per_task=200, replay_events=1_000_000)
QUICK = Sizes(bulk_calls=2, sync_calls=300, async_tasks=100, async_per_task=20, replay_events=100_000)


@dataclass
class Row:
    measure: str
    value: float
    unit: str
    target: str
    meets: bool | None
    baseline: float | None = None
    baseline_unit: str = ""

    @property
    def ratio(self) -> float | None:
        if not self.baseline:
            return None
        # Times: baseline / value (lower is better); rates: value / baseline.
        return self.baseline / self.value if self.unit == "s" else self.value / self.baseline


SUMMARY: list[Row] = []


# -- helpers --------------------------------------------------------------------------------


def median_of(n: int, run: Callable[[], float]) -> tuple[float, list[float]]:
    values = []
    for _ in range(n):
        gc.collect()
        values.append(run())
    return statistics.median(values), values


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def runs_text(values: list[float], digits: int = 0) -> str:
    return "[" + ", ".join(f"{v:,.{digits}f}" for v in values) + "]"


def section(title: str) -> None:
    print(f"\n== {title}", flush=True)


class TempDirs:
    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="lightml-bench-"))
        self._n = 0

    def new(self) -> Path:
        self._n += 1
        path = self.root / f"d{self._n}"
        path.mkdir()
        return path

    def cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def raw_connect(path: Path, synchronous: str, unique_index: bool = False) -> sqlite3.Connection:
    """A plain SQLite file with a ``metrics`` table of LightML's columns; with ``unique_index``,
    the unique index any deduplicating registry keeps (LightML's ``metrics_model_key``)."""
    conn = sqlite3.connect(str(path), isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute(f"PRAGMA synchronous = {synchronous}")
    conn.execute(
        "CREATE TABLE metrics (id INTEGER PRIMARY KEY, model_id INTEGER, checkpoint_id INTEGER, "
        "family TEXT NOT NULL, metric_name TEXT NOT NULL, value REAL)"
    )
    if unique_index:
        conn.execute("CREATE UNIQUE INDEX metrics_model_key ON metrics(model_id, family, metric_name) "
                     "WHERE model_id IS NOT NULL")
    return conn


# -- 1. bulk log_metrics --------------------------------------------------------------------


FAMILIES, PER_FAMILY = 1_000, 10


def bulk_payload(call: int) -> dict[str, dict[str, float]]:
    """1,000 families x 10 metrics whose keys are new for every call."""
    return {
        f"c{call}_task_{f:04d}": {f"metric_{m}": (f * PER_FAMILY + m) / 10_000 for m in range(PER_FAMILY)}
        for f in range(FAMILIES)
    }


def bench_bulk(tmp: TempDirs, sizes: Sizes) -> None:
    from lightml import LightMLHandle

    section(f"1. log_metrics bulk: {sizes.bulk_calls} calls x {FAMILIES:,} families x {PER_FAMILY} metrics, one model")
    payloads = [bulk_payload(c) for c in range(sizes.bulk_calls)]
    n_metrics = sizes.bulk_calls * FAMILIES * PER_FAMILY

    def lib_run() -> float:
        db = tmp.new() / "bulk.db"
        with LightMLHandle(db, "bench") as h:
            h.register_model("org/model", "org/model")
            t0 = time.perf_counter()
            for payload in payloads:
                result = h.log_metrics("org/model", payload)
                assert result["inserted"] == FAMILIES * PER_FAMILY, result
            elapsed = time.perf_counter() - t0
        return n_metrics / elapsed

    rows = [
        (i + 1, 1, None, family, name, value)
        for i, (family, name, value) in enumerate(
            (family, name, value)
            for payload in payloads for family, values in payload.items() for name, value in values.items()
        )
    ]

    def raw_run(unique_index: bool) -> float:
        conn = raw_connect(tmp.new() / "raw.db", "FULL", unique_index)
        t0 = time.perf_counter()
        conn.execute("BEGIN")
        conn.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?)", rows)
        conn.execute("COMMIT")
        elapsed = time.perf_counter() - t0
        conn.close()
        return n_metrics / elapsed

    lib, lib_runs = median_of(REPEATS, lib_run)
    raw, raw_runs = median_of(REPEATS, lambda: raw_run(True))
    plain, plain_runs = median_of(REPEATS, lambda: raw_run(False))
    ratio = lib / raw
    print(f"  lightml log_metrics : {fmt_rate(lib)} metrics/s   runs {runs_text(lib_runs)}")
    print(f"  raw executemany     : {fmt_rate(raw)} metrics/s   runs {runs_text(raw_runs)}  "
          "(a table with the same unique index, one commit)")
    print(f"  (reference) no index: {fmt_rate(plain)} metrics/s   runs {runs_text(plain_runs)}  -> lib {lib / plain:.2f}x of it")
    print(f"  ratio lib/raw       : {ratio:.2f}x   target >= 0.45x and >= 150,000 metrics/s")
    SUMMARY.append(Row("1 log_metrics bulk", lib, "metrics/s", ">=150,000/s & >=0.45x",
                       lib >= 150_000 and ratio >= 0.45, raw, "executemany+index"))


# -- 2. sync log_model_metric ---------------------------------------------------------------


def fsync_latency(tmp: TempDirs, n: int = 200) -> float:
    path = tmp.new() / "fsync.bin"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    times = []
    try:
        for _ in range(n):
            os.write(fd, b"\0" * 4096)
            t0 = time.perf_counter()
            os.fsync(fd)
            times.append(time.perf_counter() - t0)
    finally:
        os.close(fd)
    return statistics.median(times)


def bench_sync(tmp: TempDirs, sizes: Sizes) -> float:
    from lightml import LightMLHandle

    n = sizes.sync_calls
    section(f"2. sync log_model_metric: {n:,} calls, one durable commit each")

    def lib_run(synchronous: str) -> float:
        db = tmp.new() / "sync.db"
        with LightMLHandle(db, "bench", synchronous=synchronous) as h:
            h.register_model("org/model", "org/model")
            t0 = time.perf_counter()
            for i in range(n):
                h.log_model_metric("org/model", "task", f"metric_{i}", i / n)
            elapsed = time.perf_counter() - t0
        return n / elapsed

    def raw_run(synchronous: str) -> float:
        conn = raw_connect(tmp.new() / "raw.db", synchronous)
        t0 = time.perf_counter()
        for i in range(n):  # autocommit: every INSERT is its own transaction
            conn.execute("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?)", (i + 1, 1, None, "task", f"metric_{i}", i / n))
        elapsed = time.perf_counter() - t0
        conn.close()
        return n / elapsed

    fsync_s = fsync_latency(tmp)
    results = {}
    for synchronous in ("FULL", "NORMAL"):
        lib, lib_runs = median_of(REPEATS, lambda: lib_run(synchronous))
        raw, raw_runs = median_of(REPEATS, lambda: raw_run(synchronous))
        results[synchronous] = (lib, raw)
        print(f"  synchronous={synchronous:<6} lightml {fmt_rate(lib):>7} calls/s  runs {runs_text(lib_runs)}")
        print(f"  synchronous={synchronous:<6} raw     {fmt_rate(raw):>7} commits/s runs {runs_text(raw_runs)}"
              f"  -> ratio {lib / raw:.2f}x")
    lib_full, raw_full = results["FULL"]
    print(f"  bound: FULL = one WAL fsync per commit; this disk's fsync median {fsync_s * 1e3:.2f} ms "
          f"(ceiling ~{1 / fsync_s:,.0f} commits/s); raw FULL reaches {raw_full * fsync_s:.0%} of it, "
          f"lightml {lib_full * fsync_s:.0%}. NORMAL has no fsync per commit: CPU bound (SQL statements, page writes, Python).")
    print("  target >= 0.55x of raw FULL")
    SUMMARY.append(Row("2 sync FULL", lib_full, "calls/s", ">=0.55x", lib_full / raw_full >= 0.55, raw_full,
                       "raw commit/row"))
    lib_normal, raw_normal = results["NORMAL"]
    SUMMARY.append(Row("2 sync NORMAL", lib_normal, "calls/s", "(info)", None, raw_normal, "raw commit/row"))
    return lib_full


# -- 3. async concurrent log_model_metric ---------------------------------------------------


class CommitCounter:
    """Counts the writer's transactions by wrapping Writer._commit_group (observation only)."""

    def __init__(self) -> None:
        from lightml.log import writer

        self._writer_cls = writer.Writer
        self._original = writer.Writer._commit_group
        self.commits = 0
        self.commands = 0

    def __enter__(self) -> "CommitCounter":
        original, counter = self._original, self

        def counting(writer_self, conn, group):
            counter.commits += 1
            counter.commands += sum(len(task.commands) for task in group)  # writer.WriteTask
            return original(writer_self, conn, group)

        self._writer_cls._commit_group = counting
        return self

    def __exit__(self, *exc: object) -> None:
        self._writer_cls._commit_group = self._original


def bench_async(tmp: TempDirs, sizes: Sizes, sync_full: float) -> None:
    """``sync_full``: the sync handle's FULL rate measured in this run (the async target is a ratio to it)."""
    from lightml import AsyncLightMLHandle

    tasks, per_task = sizes.async_tasks, sizes.async_per_task
    total = tasks * per_task
    section(f"3. async: {tasks} coroutines x {per_task} log_model_metric on one AsyncLightMLHandle")

    async def run_once(db: Path, synchronous: str, counter: "CommitCounter") -> tuple[float, int, int]:
        async with AsyncLightMLHandle(db, "bench", synchronous=synchronous) as h:
            await h.register_model("org/model", "org/model")

            async def worker(k: int) -> None:
                for i in range(per_task):
                    await h.log_model_metric("org/model", f"task_{k}", f"metric_{i}", i / per_task)

            commits0, commands0 = counter.commits, counter.commands
            t0 = time.perf_counter()
            await asyncio.gather(*(worker(k) for k in range(tasks)))
            elapsed = time.perf_counter() - t0
            commits, commands = counter.commits - commits0, counter.commands - commands0
        return total / elapsed, commits, commands

    def count_events(db: Path) -> int:
        conn = sqlite3.connect(db)
        try:
            return conn.execute("SELECT count(*) FROM events WHERE type = 'metric_inserted'").fetchone()[0]
        finally:
            conn.close()

    for synchronous in ("FULL", "NORMAL"):
        stats = []

        def one() -> float:
            db = tmp.new() / "async.db"
            with CommitCounter() as counter:
                rate, commits, commands = asyncio.run(run_once(db, synchronous, counter))
            stats.append((count_events(db), commits, commands))
            return rate

        rate, runs = median_of(REPEATS, one)
        events, commits, commands = sorted(stats, key=lambda s: s[1])[len(stats) // 2]
        print(f"  synchronous={synchronous:<6} {fmt_rate(rate)} metrics/s  runs {runs_text(runs)}")
        print(f"    metrics {total:,} -> events {events:,} (events/metrics {events / total:.2f}); "
              f"transactions ~{commits:,} (commands per commit {commands / max(commits, 1):.1f}; "
              f"counted by wrapping Writer._commit_group, during the gather only)")
        if synchronous == "FULL":
            print(f"    {rate / sync_full:.1f}x the sync handle's FULL rate of this run ({fmt_rate(sync_full)} calls/s)")
            SUMMARY.append(Row("3 async FULL", rate, "metrics/s", ">=10x sync FULL", rate / sync_full >= 10, sync_full,
                               "sync FULL"))
        else:
            SUMMARY.append(Row("3 async NORMAL", rate, "metrics/s", ">=30,000/s", rate >= 30_000))
    print("  targets: FULL >= 10x the sync FULL rate of the same run; NORMAL >= 30,000 metrics/s")


# -- 4. replay and verify -------------------------------------------------------------------


def build_replay_registry(db: Path | str, n_events: int, n_models: int = 10, *, synchronous: str = "OFF",
                          batch: int = 2_000) -> float:
    """A registry whose log holds ~n_events metric_inserted events, one metric each (what
    n_events single log_model_metric calls write), appended with the library's own
    WriteTransaction.emit in big transactions. ``db``: a file, or a PostgreSQL URL
    (bench_postgres, with ``synchronous="NORMAL"``: set-up, not measured)."""
    from lightml.log import events as ev
    from lightml.log import store
    from lightml.log.engine import engine_of
    from lightml.runner import Registry
    from lightml.log.transaction import Actor, WriteTransaction
    from lightml.write import builders

    t0 = time.perf_counter()
    reg = Registry(db, "bench")
    try:
        model_ids = [reg.submit(builders.register_model(reg.scope, f"org/model-{k}", f"org/model-{k}")).result()
                     for k in range(n_models)]
    finally:
        reg.close()
    setup_events = 1 + n_models
    to_write = n_events - setup_events

    conn = store.connect(db, synchronous=synchronous)
    actor = Actor.current("api")
    per_tx = 100_000
    try:
        written = 0
        while written < to_write:
            store.begin_write(conn)  # marked as LightML's own, as the writer does
            tx = WriteTransaction(conn)
            tx.actor = actor
            tx_end = min(written + per_tx, to_write)
            while written < tx_end:
                items = []
                for i in range(written, min(written + batch, tx_end)):
                    j = i // n_models
                    items.append((ev.METRIC_INSERTED, {
                        "model_id": model_ids[i % n_models], "checkpoint_id": None, "step": None,
                        "metrics": [{"metric_id": i + 1, "family": f"task_{j // 100:05d}",  # a fresh registry
                                     "metric_name": f"metric_{j % 100:02d}", "value": (i % 997) / 997}],
                    }))
                tx.emit(items)
                written += len(items)
            store.commit_write(conn)
        engine_of(conn).checkpoint(conn)  # (SQLite: the WAL folded into the file)
    finally:
        conn.close()
    return time.perf_counter() - t0


def bench_replay(tmp: TempDirs, sizes: Sizes) -> None:
    from lightml.log.replay import replay, verify

    n = sizes.replay_events
    section(f"4. replay of {n:,} events (in place) and verify")
    db = tmp.new() / "replay.db"
    build_s = build_replay_registry(db, n)
    conn = sqlite3.connect(db)
    n_events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
    conn.close()
    print(f"  built {n_events:,} events in {build_s:.1f} s ({db.stat().st_size / 2**20:,.0f} MiB)")

    def replay_run() -> float:
        t0 = time.perf_counter()
        result = replay(db)
        elapsed = time.perf_counter() - t0
        assert result.events_applied == n_events, result
        return n_events / elapsed

    verdicts = []

    def verify_run() -> float:
        t0 = time.perf_counter()
        result = verify(db)
        elapsed = time.perf_counter() - t0
        verdicts.append(result.ok)
        return n_events / elapsed

    rate, runs = median_of(REPEATS, replay_run)
    vrate, vruns = median_of(REPEATS, verify_run)
    print(f"  replay : {fmt_rate(rate)} events/s ({n_events / rate:.1f} s)  runs {runs_text(runs)}")
    print(f"  verify : {fmt_rate(vrate)} events/s ({n_events / vrate:.1f} s)  runs {runs_text(vruns)}   ok={all(verdicts)}")

    # Baseline: the raw floor of the same work, json.loads of every payload plus one
    # executemany of the metric rows into a fresh table, in one transaction.
    src = sqlite3.connect(db)

    def raw_run() -> float:
        import json

        out = raw_connect(tmp.new() / "raw.db", "FULL")
        t0 = time.perf_counter()
        out.execute("BEGIN")
        rows = []
        for (payload,) in src.execute("SELECT payload FROM events WHERE type = 'metric_inserted' ORDER BY seq"):
            p = json.loads(payload)
            for m in p["metrics"]:
                rows.append((m["metric_id"], p["model_id"], None, m["family"], m["metric_name"], m["value"]))
        out.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?)", rows)
        out.execute("COMMIT")
        elapsed = time.perf_counter() - t0
        out.close()
        return n_events / elapsed

    raw, raw_runs = median_of(REPEATS, raw_run)
    src.close()
    print(f"  raw floor (json.loads + executemany into a plain table): {fmt_rate(raw)} events/s  runs {runs_text(raw_runs)}"
          f"  -> replay ratio {rate / raw:.2f}x (target >= 0.75x), verify {vrate / raw:.2f}x (target >= 0.5x)")
    SUMMARY.append(Row("4 replay", rate, "events/s", ">=0.75x", rate / raw >= 0.75, raw, "json+executemany"))
    SUMMARY.append(Row("4 verify", vrate, "events/s", ">=0.5x", vrate / raw >= 0.5, raw, "json+executemany"))


# -- 5. startup -----------------------------------------------------------------------------


def wall(cmd: list[str], cwd: Path) -> float:
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def bench_startup(tmp: TempDirs) -> None:
    section(f"5. startup wall time (median of {STARTUP_REPEATS} subprocess runs)")
    py = sys.executable
    cli = shutil.which("lightml", path=str(Path(py).parent)) or shutil.which("lightml")
    cwd = tmp.new()
    commands = {
        "python -c pass": [py, "-c", "pass"],
        "python -c 'import lightml'": [py, "-c", "import lightml"],
        "lightml --help": [cli, "--help"] if cli else [py, "-m", "lightml", "--help"],
        "(info) from lightml import LightMLHandle": [py, "-c", "from lightml import LightMLHandle"],
    }
    for cmd in commands.values():  # warm the OS file cache and .pyc files
        wall(cmd, cwd)
    medians = {}
    for label, cmd in commands.items():
        medians[label], runs = median_of(STARTUP_REPEATS, lambda: wall(cmd, cwd))
        medians[label + "_runs"] = runs
    base = medians["python -c pass"]
    print(f"  {'python -c pass':<42} raw {base:.3f} s  (baseline)")
    for label in list(commands)[1:]:
        raw = medians[label]
        net = raw - base
        limit = 0.15 if label == "lightml --help" else 0.1
        target = "" if label.startswith("(info)") else f"  target <= {limit} s"
        print(f"  {label:<42} raw {raw:.3f} s  net {net:+.3f} s{target}")
        if not label.startswith("(info)"):
            SUMMARY.append(Row("5 " + label.replace("python -c 'import lightml'", "import lightml"), raw, "s",
                               f"<={limit} s", raw <= limit, base, "python -c pass"))


# -- main -----------------------------------------------------------------------------------


def source_state() -> str:
    """Which code was measured: the git commit of the checkout, and whether it had local edits."""
    repo = Path(__file__).resolve().parents[2]
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=repo, capture_output=True,
                              text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "lightml", "projections"], cwd=repo,
                               capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "source: unknown"
    if not head:
        return "source: not a git checkout"
    return f"source: {head}" + (f" + local edits ({len(dirty.splitlines())} files)" if dirty else "")


def print_summary() -> None:
    section("summary (median of runs; ratio = lightml vs the baseline measured in this run)")
    print(f"  {'measure':<22} {'value':>16} {'target':>22} {'baseline':>14} {'ratio':>7}  {'':<17} verdict")
    for r in SUMMARY:
        if r.unit == "s":
            value = f"{r.value:.3f} s"
            base = f"{r.baseline:.3f} s" if r.baseline else "-"
            ratio = f"+{r.value - r.baseline:.3f}s" if r.baseline else "-"
        else:
            value = f"{fmt_rate(r.value)} {r.unit.split('/')[0][:7]}/s"
            base = fmt_rate(r.baseline) if r.baseline else "-"
            ratio = f"{r.ratio:.2f}x" if r.ratio else "-"
        verdict = "-" if r.meets is None else ("meets" if r.meets else "BELOW TARGET")
        print(f"  {r.measure:<22} {value:>16} {r.target:>22} {base:>14} {ratio:>7}  {r.baseline_unit:<17} {verdict}")
    print("  (startup rows: value is raw wall time, 'ratio' column is the net time over python -c pass)")


def record_figures() -> None:
    """The summary's rows, for run_all.py's table."""
    import figures

    for r in SUMMARY:
        if r.unit == "s":
            value, ratio = f"{r.value:.3f} s", (f"+{r.value - r.baseline:.3f} s over {r.baseline_unit}" if r.baseline else "")
        else:
            value = f"{fmt_rate(r.value)} {r.unit}"
            ratio = f"{r.ratio:.2f}x of {r.baseline_unit}" if r.ratio else ""
        figures.record("core", r.measure[2:], value, "" if r.target == "(info)" else r.target, r.meets, ratio)
    figures.write()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a fast check")
    args = parser.parse_args()
    sizes = QUICK if args.quick else FULL

    print(f"LightML core benchmark ({'quick' if args.quick else 'full'}): Python {platform.python_version()}, "
          f"SQLite {sqlite3.sqlite_version}, {os.cpu_count()} CPUs, {platform.platform()}")
    print(f"median of {REPEATS} runs per figure; temp files under {tempfile.gettempdir()}; {source_state()}")
    if os.environ.get("PYTHONDONTWRITEBYTECODE"):
        print("note: PYTHONDONTWRITEBYTECODE is set, so startup times include compiling uncached sources")
    tmp = TempDirs()
    started = time.perf_counter()
    try:
        bench_bulk(tmp, sizes)
        sync_full = bench_sync(tmp, sizes)
        bench_async(tmp, sizes, sync_full)
        bench_replay(tmp, sizes)
        bench_startup(tmp)
        print_summary()
        record_figures()
    finally:
        tmp.cleanup()
    print(f"\ntotal benchmark time {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
