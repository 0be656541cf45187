"""Scan benchmark: lm-eval result folders with per-sample files, then the re-scan.

Run on demand (not part of the test suite):

    python tests/perf/bench_scan.py           # 200 model folders x 60 tasks x 4 metrics, 1,000 docs per task
    python tests/perf/bench_scan.py --quick   # 20 model folders

Targets: the first scan (with the default workers: one per core) in <= 0.5x the time of the
baseline; re-scan of the unchanged tree <= 0.5 s. Printed too: the first scan with one process
(``workers=1``). Nothing is asserted. The samples lines have lm-eval's shape (doc, arguments, resps, hashes, values) with
short texts. To keep the disk small, the model folders hold hard links to one folder's files
(each is still opened, hashed and parsed on its own). Baseline in the same run: json.loads
of every samples line, with nothing else.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from pathlib import Path

import figures  # tests/perf/figures.py
from lightml.ingest.scan import scan_and_import

TASKS = 60
DOCS = 1_000
STAMP = "2026-11-01T12-00-00.000000"


def write_model_folder(folder: Path) -> None:
    rng = random.Random(0)
    folder.mkdir(parents=True)
    results = {"results": {}, "n-shot": {}, "n-samples": {}, "config": {"model": "hf", "model_args": "pretrained=x"},
               "lm_eval_version": "0.4.13"}
    for t in range(TASKS):
        task = f"task_{t:02d}"
        acc = [float(rng.random() < 0.6) for _ in range(DOCS)]
        acc_norm = [float(rng.random() < 0.62) for _ in range(DOCS)]
        results["results"][task] = {
            "alias": task, "acc,none": sum(acc) / DOCS, "acc_stderr,none": 0.015,
            "acc_norm,none": sum(acc_norm) / DOCS, "acc_norm_stderr,none": 0.015}
        results["n-shot"][task] = 0
        results["n-samples"][task] = {"original": DOCS, "effective": DOCS}
        with (folder / f"samples_{task}_{STAMP}.jsonl").open("w") as f:
            for d in range(DOCS):
                doc = {"question": f"Question {d} of {task}?", "choices": ["a", "b", "c", "d"], "gold": d % 4}
                f.write(json.dumps({
                    "doc_id": d, "doc": doc, "target": str(d % 4),
                    "arguments": {f"gen_args_{i}": {"arg_0": f"Question {d}?", "arg_1": f" {c}"}
                                  for i, c in enumerate("abcd")},
                    "resps": [[[str(-rng.random()), "False"]] for _ in range(4)],
                    "filtered_resps": [[str(-rng.random()), "False"] for _ in range(4)],
                    "filter": "none", "metrics": ["acc", "acc_norm"],
                    "doc_hash": hashlib.sha256(f"{task}{d}".encode()).hexdigest(),
                    "prompt_hash": hashlib.sha256(f"p{task}{d}".encode()).hexdigest(),
                    "target_hash": hashlib.sha256(str(d % 4).encode()).hexdigest(),
                    "acc": acc[d], "acc_norm": acc_norm[d],
                }) + "\n")
    (folder / f"results_{STAMP}.json").write_text(json.dumps(results))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="20 model folders instead of 200")
    n_models = 20 if parser.parse_args().quick else 200
    print(f"LightML scan benchmark: Python {platform.python_version()}, {os.cpu_count()} CPUs")
    tmp = Path(tempfile.mkdtemp(prefix="lightml-bench-"))
    try:
        template = tmp / "template"
        write_model_folder(template)
        tree = tmp / "tree"
        for m in range(n_models):
            folder = tree / f"org__model-{m:03d}"
            folder.mkdir(parents=True)
            for file in template.iterdir():
                os.link(file, folder / file.name)
        size = sum(f.stat().st_size for f in template.iterdir()) * n_models
        metrics = n_models * TASKS * 4
        print(f"\n== {n_models} model folders x {TASKS} tasks x 4 metrics = {metrics:,} metrics, "
              f"{n_models * TASKS * DOCS:,} samples lines ({size / 1e9:.2f} GB to read)")

        start = time.perf_counter()
        for folder in tree.iterdir():
            for file in folder.glob("samples_*.jsonl"):
                with file.open() as f:
                    for line in f:
                        json.loads(line)
        baseline = time.perf_counter() - start

        start = time.perf_counter()
        alone = scan_and_import(tmp / "alone.db", "bench", tree, workers=1)
        single = time.perf_counter() - start
        db = tmp / "reg.db"
        start = time.perf_counter()
        stats = scan_and_import(db, "bench", tree)
        first = time.perf_counter() - start
        start = time.perf_counter()
        again = scan_and_import(db, "bench", tree)
        rescan = time.perf_counter() - start
        assert stats.metrics_logged == metrics == alone.metrics_logged and again.metrics_logged == 0, \
            (stats.skips[:3], again.to_dict())
        print(f"  baseline, json.loads of every samples line alone: {baseline:.1f} s")
        print(f"  first scan, {os.cpu_count()} workers (the default): {first:.1f} s, {stats.metrics_logged / first:,.0f} "
              f"metrics/s ({stats.scores_imported:,} metrics with 1,000 scores each): {first / baseline:.2f}x the "
              f"baseline   target <= 0.5x")
        print(f"  first scan, one process (workers=1): {single:.1f} s: {single / baseline:.2f}x the baseline")
        print(f"  re-scan of the unchanged tree: {rescan:.3f} s ({again.files_unchanged:,} files skipped)   "
              f"target <= 0.5 s")
        figures.record("scan", f"first scan, {n_models} folders, {os.cpu_count()} workers", f"{first:.1f} s",
                       "<= 0.5x", first / baseline <= 0.5, f"{first / baseline:.2f}x of json.loads of every line")
        figures.record("scan", "first scan, one process", f"{single:.1f} s", "", None,
                       f"{single / baseline:.2f}x of json.loads of every line")
        figures.record("scan", "re-scan of the unchanged tree", f"{rescan:.3f} s", "<= 0.5 s", rescan <= 0.5)
        figures.write()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
