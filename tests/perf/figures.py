"""What a benchmark reports, for ``run_all.py``'s one table: each headline figure with its
ratio to the baseline measured in the same run (where it has one), its target, and whether
it meets it. A benchmark records its figures as it prints them; when ``run_all.py`` runs it,
``LIGHTML_BENCH_FIGURES`` names a file, and ``write()`` appends them there as JSON lines."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass


@dataclass
class Figure:
    bench: str          # the script's short name ("core", "scan", ...)
    name: str           # what was measured
    value: str          # as printed, with its unit
    ratio: str          # against the baseline of the same run ("0.48x of raw executemany"), or ""
    target: str         # as the issue states it, or "" (for reference)
    meets: bool | None  # None: no target


FIGURES: list[Figure] = []


def record(bench: str, name: str, value: str, target: str = "", meets: bool | None = None, ratio: str = "") -> None:
    FIGURES.append(Figure(bench, name, value, ratio, target, meets))


def write() -> None:
    path = os.environ.get("LIGHTML_BENCH_FIGURES")
    if not path:
        return
    with open(path, "a", encoding="utf-8") as out:
        for figure in FIGURES:
            out.write(json.dumps(asdict(figure)) + "\n")
