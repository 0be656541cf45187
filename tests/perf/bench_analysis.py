"""Analysis benchmarks: compare_stats against a plain numpy index bootstrap, flips, and `lightml diff`.

Run on demand (not part of the test suite):

    python tests/perf/bench_analysis.py           # full sizes (about a minute and a half)
    python tests/perf/bench_analysis.py --quick   # smaller registry for the diff

Nothing is asserted. Each figure is a median, printed with its target and, for
compare_stats and flips, its ratio to a baseline measured in the same run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sqlite3
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import figures  # tests/perf/figures.py
from lightml.read import stats
from lightml.handle import LightMLHandle
from lightml.ingest.scan import scan_and_import

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
    figures.record("analysis", f"compare_stats, n = {N_SAMPLES:,}, {RESAMPLES:,} resamples", f"{fast * 1000:.2f} ms",
                   "<= 20 ms and >= 100x", fast <= 0.020 and baseline / fast >= 100,
                   f"{baseline / fast:,.0f}x faster than a plain numpy bootstrap")
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


FLIPPED = 0.12  # of the documents, where B's answer differs from A's in the flips benchmark


def doc_hash(doc_id: int) -> str:
    return hashlib.sha256(str(doc_id).encode()).hexdigest()


def flip_pair() -> tuple[np.ndarray, np.ndarray]:
    a = binary_scores(3, 0.70)
    changed = np.random.default_rng(5).random(N_SAMPLES) < FLIPPED
    return a, np.where(changed, 1 - a, a)


def write_samples_folder(folder: Path, correct: np.ndarray) -> None:
    """An lm-eval output folder of one generation task with N_SAMPLES documents, its samples
    file in lm-eval's shape (a prompt, a target and a response of a few hundred bytes)."""
    folder.mkdir(parents=True)
    stamp = "2026-01-01T00-00-00.000000"
    with open(folder / f"samples_gen_{stamp}.jsonl", "w", encoding="utf-8") as out:
        for doc_id, score in enumerate(correct.tolist()):
            answer = str(doc_id * 7)
            out.write(json.dumps({
                "doc_id": doc_id, "doc": {"question": f"What is {doc_id} times 7?", "answer": answer},
                "target": answer, "arguments": {"gen_args_0": {"arg_0": f"Question: What is {doc_id} times 7?\n"
                                                               "Answer:", "arg_1": {"until": ["\n"]}}},
                "resps": [[answer if score else "no idea"]], "filtered_resps": [answer if score else "no idea"],
                "filter": "none", "metrics": ["exact_match"], "doc_hash": doc_hash(doc_id), "prompt_hash": "p",
                "target_hash": "t", "exact_match": float(score)}) + "\n")
    (folder / f"results_{stamp}.json").write_text(json.dumps({
        "results": {"gen": {"alias": "gen", "exact_match,none": float(correct.mean())}}, "n-shot": {"gen": 0},
        "n-samples": {"gen": {"original": N_SAMPLES, "effective": N_SAMPLES}},
        "config": {"model_args": f"pretrained={folder.name}"}}), encoding="utf-8")


def bench_flips(tmp: Path) -> None:
    print(f"\n== flips: two models x {N_SAMPLES:,} documents with keys (0/1 scores), samples files scanned; "
          f"B is A with {FLIPPED:.0%} of its answers changed (two checkpoints of one model agree on most)")
    results = tmp / "flips-results"
    scores_a, scores_b = flip_pair()
    write_samples_folder(results / "a", scores_a)
    write_samples_folder(results / "b", scores_b)
    db = tmp / "flips.db"
    with LightMLHandle(db, "bench"):
        pass
    scan_and_import(db, "bench", results)

    def floor() -> None:  # what any flip list must do: read both vectors and keys, decode them
        with sqlite3.connect(db) as conn:
            for (scores, keys) in conn.execute(
                    "SELECT d.scores, k.doc_keys FROM detailed_scores d JOIN score_docs k USING (metric_id) "
                    "ORDER BY metric_id LIMIT 2"):  # (a's and b's)
                json.loads(scores)
                json.loads(keys)

    with LightMLHandle(db, "bench") as h:
        n_flips = len(h.flips("a", "b", "gen", "exact_match"))  # (also warms the page cache)
        # limit=0: every document paired and counted, no flip listed (no texts read)
        counted, counted_runs = median_time(lambda: h.flips("a", "b", "gen", "exact_match", limit=0), 11)
        first_100, first_100_runs = median_time(lambda: h.flips("a", "b", "gen", "exact_match", limit=100), 11)
        every_flip, _ = median_time(lambda: h.flips("a", "b", "gen", "exact_match"), 5)
        first = h.flips("a", "b", "gen", "exact_match", limit=1)[0]
        # The same scores and keys logged through the API (no samples files known): every flip.
        keys = [f"{i}:{doc_hash(i)[:16]}" for i in range(N_SAMPLES)]
        for name, scores in (("a-api", scores_a), ("b-api", scores_b)):
            h.register_model(name, f"org/{name}")
            h.log_model_metric(name, "gen", "exact_match", float(scores.mean()), scores=scores, doc_ids=keys)
        no_texts, no_texts_runs = median_time(lambda: h.flips("a-api", "b-api", "gen", "exact_match"), 11)
    base, _ = median_time(floor, 11)
    print(f"  {n_flips:,} of {N_SAMPLES:,} documents flipped")
    print(f"  flips, every flip, no samples files known   : {no_texts * 1000:.1f} ms median of 11 "
          f"(min {min(no_texts_runs) * 1000:.1f})   target <= 50 ms")
    print(f"  flips, paired and counted only (limit=0)    : {counted * 1000:.1f} ms median of 11 "
          f"(min {min(counted_runs) * 1000:.1f})")
    print(f"  flips, the first 100 with texts from files  : {first_100 * 1000:.1f} ms median of 11 "
          f"(min {min(first_100_runs) * 1000:.1f})   target <= 200 ms")
    print(f"  flips, all {n_flips:,} with texts              : {every_flip * 1000:.0f} ms median of 5")
    print(f"  baseline, read both score vectors and key lists and json.loads them: {base * 1000:.1f} ms "
          f"median of 11 -> every flip without texts {no_texts / base:.2f}x of it")
    figures.record("analysis", f"flips, {n_flips:,} flips, no texts", f"{no_texts * 1000:.1f} ms", "<= 50 ms",
                   no_texts <= 0.050, f"{no_texts / base:.2f}x of reading and decoding both vectors")
    figures.record("analysis", "flips, the first 100 with texts", f"{first_100 * 1000:.1f} ms", "<= 200 ms",
                   first_100 <= 0.200)
    print(f"  first flip: {first['doc']}: prompt {first['prompt']!r}, a {first['response_a']!r}, "
          f"b {first['response_b']!r}")


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
    figures.record("analysis", f"lightml diff, 10 models x {metrics} metrics, whole command", f"{command:.3f} s",
                   "<= 0.5 s", command <= 0.5, f"+{command - bare:.3f} s over python -c pass")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a registry of 200 models instead of 2,000")
    args = parser.parse_args()
    print(f"LightML analysis benchmark ({'quick' if args.quick else 'full'}): Python {platform.python_version()}, "
          f"numpy {np.__version__}, {os.cpu_count()} CPUs")
    tmp = Path(tempfile.mkdtemp(prefix="lightml-bench-"))
    try:
        bench_compare_stats(tmp)
        bench_flips(tmp)
        bench_diff(tmp, 200 if args.quick else 2_000)
        figures.write()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
