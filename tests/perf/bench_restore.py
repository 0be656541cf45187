"""What restore, the histories and a prune preview cost on a registry with a big log.

Run on demand (not part of the test suite):

    python tests/perf/bench_restore.py            # ~1,000,000 events (build: a few minutes)
    python tests/perf/bench_restore.py --quick    # ~100,000 events
    PYTHONPATH=/tmp/base python tests/perf/bench_restore.py   # the same against another checkout

It uses the public API only (``LightMLHandle``, ``AsyncLightMLHandle``), so it runs on any
LightML 2 checkout. The registry: ``--models`` models in one run, among them the lineage
base <- sft <- (dpo, dpo-beta), each model given its metrics one ``log_model_metric`` at a
time (one event each, written by concurrent coroutines on one async handle: group commit),
and one fresh model without metrics (what prune previews). Then, each the median of
``--repeats`` runs: delete sft and restore it (its children re-linked), the history of one
of its metrics (live and deleted), its model history, and a prune preview.

``--db PATH`` keeps the registry: built there when missing, else reused as it is (so a file
built by one checkout can be opened by another; the first open is then timed separately).
Nothing is asserted: shared machines are noisy.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sqlite3
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import figures  # tests/perf/figures.py

RUN = "bench"
LINEAGE = {"base": None, "sft": "base", "dpo": "sft", "dpo-beta": "sft"}


def model_names(n_models: int) -> list[str]:
    return list(LINEAGE) + [f"org/model-{k:05d}" for k in range(n_models - len(LINEAGE))]


async def _build(db: Path, n_events: int, n_models: int) -> None:
    from lightml import AsyncLightMLHandle

    names = model_names(n_models)
    per_model = max(1, n_events // n_models)
    async with AsyncLightMLHandle(db, RUN, synchronous="NORMAL") as h:
        for name in names:
            await h.register_model(name, f"hub/{name}", parent_name=LINEAGE.get(name))

        async def log_all(name: str, k: int) -> None:
            for j in range(per_model):
                await h.log_model_metric(name, f"task_{j // 100:04d}", f"metric_{j % 100:02d}", ((j + k) % 997) / 997)

        await asyncio.gather(*(log_all(name, k) for k, name in enumerate(names)))
        await h.register_model("fresh", "hub/fresh")  # no metrics yet: a prune preview's question


def build(db: Path, n_events: int, n_models: int) -> float:
    t0 = time.perf_counter()
    asyncio.run(_build(db, n_events, n_models))
    return time.perf_counter() - t0


def median_ms(repeats: int, run: Callable[[], float]) -> tuple[float, list[float]]:
    runs = [run() * 1000 for _ in range(repeats)]
    return statistics.median(runs), runs


def timed(call: Callable[[], object]) -> tuple[float, object]:
    t0 = time.perf_counter()
    result = call()
    return time.perf_counter() - t0, result


def show(what: str, median: float, runs: list[float], note: str = "") -> None:
    runs_text = ", ".join(f"{r:,.1f}" for r in runs)
    print(f"  {what:<42} {median:>10,.1f} ms   runs [{runs_text}]{'   ' + note if note else ''}")
    figures.record("restore", what, f"{median:,.1f} ms")


def bench(db: Path, repeats: int) -> None:
    from lightml import LightMLHandle

    seconds, h = timed(lambda: LightMLHandle(db, RUN))
    print(f"  {'open the handle (first open of this file here)':<42} {seconds * 1000:>10,.1f} ms")
    with h:
        sft_metrics = len(h.search("sft", family="*"))
        family, metric = "task_0000", "metric_00"

        def delete_then_restore() -> float:
            h.delete_model("sft")
            seconds, _ = timed(lambda: h.restore_model("sft"))
            return seconds

        def delete() -> float:
            seconds, _ = timed(lambda: h.delete_model("sft"))
            h.restore_model("sft")
            return seconds

        show("delete_model('sft')", *median_ms(repeats, delete), f"({sft_metrics:,} metrics, 2 children)")
        show("restore_model('sft')", *median_ms(repeats, delete_then_restore), "(children re-linked)")
        show("metric_history (live model)", *median_ms(repeats, lambda: timed(
            lambda: h.metric_history("sft", family, metric))[0]))
        show("model_history('sft')", *median_ms(repeats, lambda: timed(lambda: h.model_history("sft"))[0]))
        show("prune(dry_run=True)", *median_ms(repeats, lambda: timed(lambda: h.prune(dry_run=True))[0]))
        h.delete_model("sft")
        try:
            show("metric_history (deleted model)", *median_ms(repeats, lambda: timed(
                lambda: h.metric_history("sft", family, metric))[0]))
            show("model_history (deleted model)", *median_ms(repeats, lambda: timed(
                lambda: h.model_history("sft"))[0]))
        finally:
            h.restore_model("sft")
        with sqlite3.connect(db) as conn:
            parents = dict(conn.execute("SELECT model_name, parent_id FROM model WHERE model_name IN "
                                        "('dpo', 'dpo-beta')"))
            sft_id = conn.execute("SELECT id FROM model WHERE model_name = 'sft'").fetchone()[0]
        print(f"  (after the restores: dpo and dpo-beta have sft as parent: {set(parents.values()) == {sft_id}})")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="~100,000 events instead of ~1,000,000")
    parser.add_argument("--events", type=int, help="events in the log (default 1,000,000; --quick 100,000)")
    parser.add_argument("--models", type=int, default=1000, help="models in the run (default 1000)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--db", type=Path, help="keep the registry here (built when missing, else reused)")
    args = parser.parse_args()
    n_events = args.events or (100_000 if args.quick else 1_000_000)

    import lightml

    print(f"lightml from {Path(lightml.__file__).parent} | Python {platform.python_version()} | "
          f"SQLite {sqlite3.sqlite_version} | {platform.machine()}")
    with tempfile.TemporaryDirectory(prefix="lightml-bench-restore-") as tmp:
        db = args.db or Path(tmp) / "reg.db"
        if db.exists():
            print(f"== reusing {db}")
        else:
            seconds = build(db, n_events, args.models)
            print(f"== built {db} in {seconds:.1f} s")
        with sqlite3.connect(db) as conn:
            (events,) = conn.execute("SELECT count(*) FROM events").fetchone()
            (models,) = conn.execute("SELECT count(*) FROM model").fetchone()
        size = sum(os.path.getsize(p) for p in (db, Path(f"{db}-wal")) if p.exists())
        print(f"== {events:,} events, {models:,} models, {size / 2**20:,.0f} MiB; median of {args.repeats} runs")
        bench(db, args.repeats)
    figures.write()
    return 0


if __name__ == "__main__":
    sys.exit(main())
