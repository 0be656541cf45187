"""Every benchmark in its quick form, then one table of their headline figures: each with its
ratio to the baseline measured in the same run, its target, and whether it meets it.

    python tests/perf/run_all.py             # quick forms (about 10 minutes)
    python tests/perf/run_all.py --full      # full forms (about an hour)
    python tests/perf/run_all.py core scan   # only these

Each benchmark runs in its own process, its output kept in a log file (the path is printed)
and its figures (``figures.py``) collected into the table. Nothing is asserted: a benchmark
that fails says so in the table, and the others still run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
BENCHES = ["core", "scan", "analysis", "export", "settings", "dashboard", "restore", "postgres"]


def run(bench: str, full: bool, folder: Path) -> tuple[list[dict], str, float]:
    """Run one benchmark; its figures, the path of its log, its wall time."""
    figures_file, log_file = folder / f"{bench}.jsonl", folder / f"{bench}.log"
    command = [sys.executable, str(HERE / f"bench_{bench}.py")] + ([] if full else ["--quick"])
    started = time.perf_counter()
    with log_file.open("w") as log:
        done = subprocess.run(command, stdout=log, stderr=subprocess.STDOUT,
                              env={**os.environ, "LIGHTML_BENCH_FIGURES": str(figures_file)})
    took = time.perf_counter() - started
    found = [json.loads(line) for line in figures_file.read_text().splitlines()] if figures_file.exists() else []
    if done.returncode != 0:
        found.append({"bench": bench, "name": f"(exited with code {done.returncode}: see its log)", "value": "",
                      "ratio": "", "target": "", "meets": False})
    return found, str(log_file), took


def table(rows: list[dict]) -> str:
    header = ["benchmark", "figure", "value", "ratio (same run)", "target", "verdict"]
    cells = [[r["bench"], r["name"], r["value"], r["ratio"], r["target"],
              "-" if r["meets"] is None else ("meets" if r["meets"] else "BELOW")] for r in rows]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in cells]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benches", nargs="*", metavar="BENCH", help=f"which (default: all of {', '.join(BENCHES)})")
    parser.add_argument("--full", action="store_true", help="the full forms instead of the quick ones")
    args = parser.parse_args()
    unknown = [b for b in args.benches if b not in BENCHES]
    if unknown:
        parser.error(f"no benchmark {', '.join(unknown)}: choose from {', '.join(BENCHES)}")
    folder = Path(tempfile.mkdtemp(prefix="lightml-run-all-"))
    rows: list[dict] = []
    for bench in args.benches or BENCHES:
        print(f"running bench_{bench}.py{'' if args.full else ' --quick'} ...", flush=True)
        found, log, took = run(bench, args.full, folder)
        print(f"  {len(found)} figures in {took:.0f} s (log: {log})", flush=True)
        rows += found
    print()
    print(table(rows))
    below = sum(1 for r in rows if r["meets"] is False)
    print(f"\n{len(rows)} figures, {below} below target; logs in {folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
