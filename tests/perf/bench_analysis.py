"""Analysis benchmarks: compare_stats against a plain numpy index bootstrap, and `lightml diff`.

Run on demand (not part of the test suite):

    python tests/perf/bench_analysis.py           # full sizes (about a minute and a half)
    python tests/perf/bench_analysis.py --quick   # smaller registry for the diff

Nothing is asserted. Each figure is a median, printed with its target and, for
compare_stats, its ratio to a baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lightml.read import stats
from lightml.handle import LightMLHandle

N_SAMPLES = 100_000
RESAMPLES = 10_000


def median_time(run, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def binary_scores(seed: int, p: float) -> np.ndarray:
    return (np.random.default_rng(seed).random(N_SAMPLES) < p).astype(np.int64)


def plain_index_bootstrap(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    """What a user would write with numpy alone: resample paired indices, take the means.
    Done in blocks of 100 resamples (all 10,000 at once would need 8 GB of indices)."""
    rng = np.random.default_rng(42)
    n = len(a)
    deltas = np.empty(RESAMPLES)
    for start in range(0, RESAMPLES, 100):
        idx = rng.integers(0, n, size=(100, n))
        deltas[start:start + 100] = a[idx].mean(axis=1) - b[idx].mean(axis=1)
    low, high = np.percentile(deltas, [2.5, 97.5])
    return float(low), float(high)


def bench_compare_stats(tmp: Path) -> None:
    print(f"\n== compare_stats: n = {N_SAMPLES:,} binary samples, {RESAMPLES:,} resamples")
    a, b = binary_scores(1, 0.74), binary_scores(2, 0.76)
    stats.compare_scores(a, b)  # warm up numpy
    fast, fast_runs = median_time(lambda: stats.compare_scores(a, b), 21)
    baseline, base_runs = median_time(lambda: plain_index_bootstrap(a, b), 3)
    print(f"  lightml.read.stats.compare_scores (arrays in memory): {fast * 1000:.2f} ms median of 21 "
          f"(min {min(fast_runs) * 1000:.2f}, max {max(fast_runs) * 1000:.2f})   target <= 20 ms")
    print(f"  baseline, plain numpy index bootstrap:          {baseline * 1000:.0f} ms median of 3 "
          f"({', '.join(f'{t:.2f}' for t in base_runs)} s)")
    print(f"  speed-up: {baseline / fast:,.0f}x   target >= 100x")
    result = stats.compare_scores(a, b)
    low, high = plain_index_bootstrap(a, b)
    print(f"  same interval? lightml [{result['bootstrap']['ci_lower']:+.5f}, {result['bootstrap']['ci_upper']:+.5f}]"
          f"  plain [{low:+.5f}, {high:+.5f}]")

    db = tmp / "scores.db"
    with LightMLHandle(db, "bench") as h:
        h.register_model("a", "org/a")
        h.register_model("b", "org/b")
        h.log_model_metric("a", "f", "acc", float(a.mean()), scores=a)
        h.log_model_metric("b", "f", "acc", float(b.mean()), scores=b)
        h.compare_stats("a", "b", "f", "acc")
        end_to_end, runs = median_time(lambda: h.compare_stats("a", "b", "f", "acc"), 11)
    print(f"  handle.compare_stats (reads both score vectors from the registry): {end_to_end * 1000:.2f} ms "
          f"median of 11 (min {min(runs) * 1000:.2f})")


def build_diff_registry(db: Path, n_models: int, metrics_per_model: int) -> float:
    start = time.perf_counter()
    families = [f"family_{k}" for k in range(5)]
    per_family = metrics_per_model // len(families)
    rng = np.random.default_rng(0)
    with LightMLHandle(db, "bench", synchronous="NORMAL") as h:
        for m in range(n_models):
            h.register_model(f"model-{m:04d}", f"org/model-{m:04d}")
            values = rng.random(metrics_per_model).tolist()
            h.log_metrics(f"model-{m:04d}", {
                fam: {f"metric_{j:03d}": values[k * per_family + j] for j in range(per_family)}
                for k, fam in enumerate(families)
            })
    return time.perf_counter() - start


def bench_diff(tmp: Path, n_models: int) -> None:
    metrics = 500
    print(f"\n== lightml diff: 10 models x {metrics} metrics, registry of {n_models:,} models x {metrics} metrics")
    db = tmp / "diff.db"
    built = build_diff_registry(db, n_models, metrics)
    print(f"  (registry built in {built:.1f} s)")
    models = [f"model-{m:04d}" for m in range(0, n_models, n_models // 10)][:10]
    cmd = [sys.executable, "-m", "lightml", "diff", "--db", str(db), "--models", *models, "--no-color"]
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True).stdout
    rows = sum(1 for line in out.splitlines() if line.strip().startswith("family_"))
    command, runs = median_time(lambda: subprocess.run(cmd, capture_output=True, env=env, check=True), 5)
    bare, _ = median_time(lambda: subprocess.run([sys.executable, "-c", "pass"], check=True), 5)
    print(f"  lightml diff, whole command (new process): {command:.3f} s median of 5 "
          f"({', '.join(f'{t:.3f}' for t in runs)})   target <= 0.5 s")
    print(f"  for scale, python -c pass: {bare:.3f} s; rows printed: {rows}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a registry of 200 models instead of 2,000")
    args = parser.parse_args()
    print(f"LightML analysis benchmark ({'quick' if args.quick else 'full'}): Python {platform.python_version()}, "
          f"numpy {np.__version__}, {os.cpu_count()} CPUs")
    tmp = Path(tempfile.mkdtemp(prefix="lightml-bench-"))
    try:
        bench_compare_stats(tmp)
        bench_diff(tmp, 200 if args.quick else 2_000)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
