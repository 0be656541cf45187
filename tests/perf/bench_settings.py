"""Eval settings benchmark: what recording settings costs in registry size, in `diff` and
compare with the comparability check, and in `scan`.

Run on demand (not part of the test suite):

    python tests/perf/bench_settings.py           # 2,000 models x 500 metrics; 200 scanned folders
    python tests/perf/bench_settings.py --quick   # 200 models; 40 scanned folders

Nothing is asserted. Each figure is printed with its baseline, measured in the same run on a
twin built the same way without settings, and the target:
- registry growth for settings, 2,000 models x 500 metrics: <= 1.10x (the issue's ~10%);
- diff (and compare) of 10 models x 500 metrics with the settings check: <= 1.2x of diff on
  the twin without settings;
- a scan with settings: <= 1.1x of the same scan with settings extraction switched off, on
  results files alone (the part of a scan settings add to) and on bench_scan.py's tree
  (results and samples files, as lm-eval writes them).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import figures  # tests/perf/figures.py
from lightml.handle import LightMLHandle
from lightml.ingest import lm_eval_format
from lightml.ingest.scan import scan_and_import
from lightml.read.compare import compare_in
from lightml.read.diff import diff_in
from lightml.read.sql import reading

FAMILIES, PER_FAMILY = 50, 10  # 500 metrics per model


def model_settings(m: int) -> dict:
    """A set as scan records one results file's shared part: distinct per model (its
    arguments, date and seeds)."""
    return {"harness": "lm-eval", "harness_version": "0.4.13", "model": "hf",
            "model_args": f"pretrained=org/model-{m:04d},dtype=bfloat16,revision=main", "batch_size": "auto",
            "random_seed": 0, "numpy_seed": 1234, "torch_seed": 1234, "fewshot_seed": 1234,
            "date": f"2026-12-03T{m // 60 % 24:02d}:{m % 60:02d}:00Z", "git_hash": "2e8cf1c",
            "transformers_version": "4.57.6", "chat_template_applied": False, "system_instruction_applied": False,
            "bootstrap_iters": 100000, "device": "cuda:0", "num_fewshot": 5}


def build(db: Path, n_models: int, with_settings: bool) -> float:
    start = time.perf_counter()
    with LightMLHandle(db, "bench", synchronous="NORMAL") as h:
        for m in range(n_models):
            name = f"model-{m:04d}"
            h.register_model(name, f"org/{name}")
            metrics = {f"task_{t:02d}": {f"metric_{k}": (m * 7 + t * 13 + k) % 1000 / 1000 for k in range(PER_FAMILY)}
                       for t in range(FAMILIES)}
            h.log_metrics(name, metrics, settings=model_settings(m) if with_settings else None)
    return time.perf_counter() - start


def median_time(run, repeats: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


def bench_size_and_reads(tmp: Path, n_models: int) -> None:
    print(f"\n== {n_models:,} models x {FAMILIES * PER_FAMILY} metrics, one settings set per model "
          "(as scan records a results file's shared part)")
    plain, with_settings = tmp / "plain.db", tmp / "settings.db"
    built_plain = build(plain, n_models, False)
    built_settings = build(with_settings, n_models, True)
    size_plain, size_settings = plain.stat().st_size, with_settings.stat().st_size
    print(f"  built in {built_plain:.1f} s without settings, {built_settings:.1f} s with")
    print(f"  registry size: {size_settings / 1e6:.1f} MB with settings, {size_plain / 1e6:.1f} MB without: "
          f"{size_settings / size_plain:.3f}x   target <= 1.10x")
    figures.record("settings", "registry size with eval settings", f"{size_settings / 1e6:.1f} MB", "<= 1.10x",
                   size_settings / size_plain <= 1.10, f"{size_settings / size_plain:.3f}x of the same without")
    models = [f"model-{m:04d}" for m in range(0, n_models, n_models // 10)][:10]
    # half of the models at another n-shot, so that the check has differences to report
    with LightMLHandle(with_settings, "bench") as h:
        for name in models[::2]:
            h.log_metrics(name, {"task_00": {"metric_0": 0.5}}, force=True, settings={"num_fewshot": 0})
    with LightMLHandle(plain, "bench") as h:
        for name in models[::2]:
            h.log_metrics(name, {"task_00": {"metric_0": 0.5}}, force=True)

    def diff_of(db: Path):
        with reading(db) as conn:
            return diff_in(conn, models, "bench")

    flagged = sum(1 for row in diff_of(with_settings)["rows"] if row["settings_differ"])
    base, _ = median_time(lambda: diff_of(plain), 7)
    checked, _ = median_time(lambda: diff_of(with_settings), 7)
    print(f"  diff of 10 models x 500 metrics, without settings: {base * 1000:.0f} ms median of 7")
    print(f"  diff with the settings check ({flagged} row(s) flagged): {checked * 1000:.0f} ms median of 7: "
          f"{checked / base:.2f}x   target <= 1.2x")
    figures.record("settings", "diff in process with the settings check", f"{checked * 1000:.0f} ms", "<= 1.2x",
                   checked / base <= 1.2, f"{checked / base:.2f}x of the same without settings")

    def command(db: Path) -> float:
        cmd = [sys.executable, "-m", "lightml", "diff", "--db", str(db), "--models", *models, "--no-color"]
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        return median_time(lambda: subprocess.run(cmd, capture_output=True, env=env, check=True), 5)[0]

    base, checked = command(plain), command(with_settings)
    print(f"  lightml diff, whole command: {base:.3f} s without settings, {checked:.3f} s with the check: "
          f"{checked / base:.2f}x (median of 5 each)")
    figures.record("settings", "lightml diff with the settings check, whole command", f"{checked:.3f} s", "<= 1.2x",
                   checked / base <= 1.2, f"{checked / base:.2f}x of the same without settings")

    def compare_all(db: Path):
        with reading(db) as conn:
            for a, b in zip(models, models[1:]):
                compare_in(conn, a, b, "bench")

    base, _ = median_time(lambda: compare_all(plain), 5)
    checked, _ = median_time(lambda: compare_all(with_settings), 5)
    print(f"  compare of 9 pairs of those models, without settings: {base * 1000:.0f} ms median of 5; with the check: "
          f"{checked * 1000:.0f} ms: {checked / base:.2f}x")


def write_results_tree(root: Path, n_models: int, tasks: int) -> None:
    """lm-eval 0.4.13 results files in their full shape (config, versions, hashes, configs)."""
    for m in range(n_models):
        folder = root / f"org__model-{m:03d}"
        folder.mkdir(parents=True)
        names = [f"task_{t:02d}" for t in range(tasks)]
        data = {
            "results": {t: {"alias": t, "acc,none": 0.5 + m / 10_000, "acc_stderr,none": 0.01,
                            "acc_norm,none": 0.6, "acc_norm_stderr,none": 0.01} for t in names},
            "group_subtasks": {t: [] for t in names},
            "configs": {t: {"task": t, "num_fewshot": 5, "output_type": "multiple_choice",
                            "generation_kwargs": {"until": ["\n\n"], "do_sample": False},
                            "metadata": {"version": 1.0}} for t in names},
            "versions": {t: 1.0 for t in names}, "n-shot": {t: 5 for t in names},
            "higher_is_better": {t: {"acc": True, "acc_norm": True} for t in names},
            "n-samples": {t: {"original": 1000, "effective": 1000} for t in names},
            "config": {"model": "hf", "model_args": f"pretrained=org/model-{m:03d},dtype=bfloat16", "batch_size": 8,
                       "batch_sizes": [], "device": "cuda:0", "use_cache": None, "limit": None,
                       "bootstrap_iters": 100000, "gen_kwargs": None, "random_seed": 0, "numpy_seed": 1234,
                       "torch_seed": 1234, "fewshot_seed": 1234, "model_revision": "main",
                       "model_sha": "a" * 40, "model_dtype": "torch.bfloat16"},
            "git_hash": "2e8cf1c", "date": 1796279723.88 + m, "lm_eval_version": "0.4.13",
            "task_hashes": {t: f"{t}{'0' * 58}"[:64] for t in names}, "model_name": f"org/model-{m:03d}",
            "chat_template": None, "chat_template_sha": None, "system_instruction": None,
            "system_instruction_sha": None, "fewshot_as_multiturn": False,
        }
        (folder / "results_2026-12-03T06-35-25.109254.json").write_text(json.dumps(data))


def bench_scan(tmp: Path, n_models: int, tasks: int = 60) -> None:
    print(f"\n== scan of {n_models} lm-eval results files x {tasks} tasks x 4 metrics (no samples files)")
    tree = tmp / "tree"
    write_results_tree(tree, n_models, tasks)
    plain = statistics.median([_scan(tmp, tree, False) for _ in range(3)])
    recorded = statistics.median([_scan(tmp, tree, True) for _ in range(3)])
    print(f"  without settings: {plain:.2f} s median of 3; with settings: {recorded:.2f} s median of 3: "
          f"{recorded / plain:.2f}x   target <= 1.1x")
    figures.record("settings", "scan of results files, settings recorded", f"{recorded:.2f} s", "<= 1.1x",
                   recorded / plain <= 1.1, f"{recorded / plain:.2f}x of the same without")


def bench_scan_with_samples(tmp: Path, n_models: int) -> None:
    """The scan benchmark's tree (tests/perf/bench_scan.py: 60 tasks with 1,000-document
    samples files per folder), with and without settings extraction."""
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_scan import write_model_folder

    print(f"\n== scan of bench_scan's tree, {n_models} folders x 60 tasks with 1,000-document samples files")
    template = tmp / "template"
    write_model_folder(template)
    tree = tmp / "samples-tree"
    for m in range(n_models):
        folder = tree / f"org__model-{m:03d}"
        folder.mkdir(parents=True)
        for file in template.iterdir():
            os.link(file, folder / file.name)
    plain = statistics.median([_scan(tmp, tree, False) for _ in range(3)])
    recorded = statistics.median([_scan(tmp, tree, True) for _ in range(3)])
    print(f"  without settings: {plain:.2f} s median of 3; with settings: {recorded:.2f} s median of 3: "
          f"{recorded / plain:.2f}x   target <= 1.1x")
    figures.record("settings", "scan of bench_scan's tree, settings recorded", f"{recorded:.2f} s", "<= 1.1x",
                   recorded / plain <= 1.1, f"{recorded / plain:.2f}x of the same without")


def _scan(tmp: Path, tree: Path, with_settings: bool) -> float:
    kept = lm_eval_format.run_settings, lm_eval_format.task_settings
    db = tmp / f"scan-{with_settings}-{time.perf_counter_ns()}.db"
    if not with_settings:  # the same scan, with settings extraction switched off
        lm_eval_format.run_settings = lambda data: {}
        lm_eval_format.task_settings = lambda data, task, nshot: {}
    try:
        start = time.perf_counter()
        stats = scan_and_import(db, "bench", tree)
        took = time.perf_counter() - start
        assert stats.metrics_logged > 0 and not stats.errors, stats.to_dict()
        return took
    finally:
        lm_eval_format.run_settings, lm_eval_format.task_settings = kept


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 models and 40 scanned folders")
    args = parser.parse_args()
    print(f"LightML settings benchmark ({'quick' if args.quick else 'full'}): Python {platform.python_version()}, "
          f"{os.cpu_count()} CPUs")
    tmp = Path(tempfile.mkdtemp(prefix="lightml-bench-"))
    try:
        bench_size_and_reads(tmp, 200 if args.quick else 2_000)
        bench_scan(tmp, 40 if args.quick else 200)
        bench_scan_with_samples(tmp, 5 if args.quick else 40)
        figures.write()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
