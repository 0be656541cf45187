"""Excel export benchmark: 2,000 models x 100 metrics in 5 families (target <= 15 s).

Run on demand (not part of the test suite):

    python tests/perf/bench_export.py           # 2,000 models
    python tests/perf/bench_export.py --quick   # 200 models

Nothing is asserted. Printed: the median of 3 exports, and for scale a baseline measured in
the same run, openpyxl writing the same cells with no formatting at all.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import openpyxl

import figures  # tests/perf/figures.py
from lightml.report.export import export_excel
from lightml.handle import LightMLHandle

FAMILIES = 5
METRICS_PER_FAMILY = 20


def build(db: Path, n_models: int) -> None:
    rng = np.random.default_rng(0)
    with LightMLHandle(db, "bench", synchronous="NORMAL") as h:
        for m in range(n_models):
            # lineages of 10: model-0000 <- model-0001 <- ... (every 10th starts a new one)
            parent = f"model-{m - 1:04d}" if m % 10 else None
            h.register_model(f"model-{m:04d}", f"org/model-{m:04d}", parent_name=parent)
            values = rng.random(FAMILIES * METRICS_PER_FAMILY).tolist()
            h.log_metrics(f"model-{m:04d}", {
                f"family_{f}": {f"metric_{j:02d}": values[f * METRICS_PER_FAMILY + j] for j in range(METRICS_PER_FAMILY)}
                for f in range(FAMILIES)
            })


def plain_openpyxl(path: Path, n_models: int) -> None:
    rng = np.random.default_rng(0)
    wb = openpyxl.Workbook()
    wb.active.title = "Overview"
    for f in range(FAMILIES):
        ws = wb.create_sheet(f"family_{f}")
        ws.append(["Model", "Phase", "Run", "Parent"] + [f"metric_{j:02d}" for j in range(METRICS_PER_FAMILY)])
        for m in range(n_models):
            ws.append([f"model-{m:04d}", "F", "bench", None] + rng.random(METRICS_PER_FAMILY).tolist())
    wb.save(path)


def timed(run) -> list[float]:
    times = []
    for _ in range(3):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="200 models instead of 2,000")
    n_models = 200 if parser.parse_args().quick else 2_000
    print(f"LightML export benchmark: Python {platform.python_version()}, openpyxl {openpyxl.__version__}, "
          f"{os.cpu_count()} CPUs")
    tmp = Path(tempfile.mkdtemp(prefix="lightml-bench-"))
    try:
        db = tmp / "reg.db"
        start = time.perf_counter()
        build(db, n_models)
        print(f"\n== {n_models:,} models x {FAMILIES * METRICS_PER_FAMILY} metrics in {FAMILIES} families "
              f"(registry built in {time.perf_counter() - start:.1f} s)")
        export = timed(lambda: export_excel(db, tmp / "report.xlsx"))
        baseline = timed(lambda: plain_openpyxl(tmp / "plain.xlsx", n_models))
        print(f"  export_excel: {statistics.median(export):.2f} s median of 3 "
              f"({', '.join(f'{t:.2f}' for t in export)})   target <= 15 s")
        print(f"  baseline, openpyxl writing the same cells unformatted: {statistics.median(baseline):.2f} s "
              f"({statistics.median(export) / statistics.median(baseline):.2f}x)")
        print(f"  report size: {(tmp / 'report.xlsx').stat().st_size / 1e6:.1f} MB")
        took, plain = statistics.median(export), statistics.median(baseline)
        figures.record("export", f"export_excel, {n_models:,} models x {FAMILIES * METRICS_PER_FAMILY} metrics",
                       f"{took:.2f} s", "<= 15 s", took <= 15, f"{took / plain:.2f}x of plain openpyxl")
        figures.write()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
