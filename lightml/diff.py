"""Side-by-side values of N models: ``diff_models``, ``format_diff`` and ``lightml diff``.

Kept free of pydantic and numpy so that ``lightml diff`` starts in a blink.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from lightml import resolve, store
from lightml.ansi import GREEN, RED, paint
from lightml.direction import lower_is_better
from lightml.errors import InvalidInputError, NotFoundError


def diff_models(db: str | os.PathLike, model_names: list[str], run_name: str | None = None,
                family: str | None = None) -> dict[str, Any]:
    """The model-level metrics of several models, row per (family, metric).

    Returns ``{"models": [...], "run_name": ..., "rows": [{"family", "metric",
    "values": {model: value or None}}]}``, rows sorted by family then metric. With
    ``run_name`` every model is looked up in that run; without, each name must be in one run.
    """
    conn = store.open_registry_readonly(db)
    try:
        return diff_in(conn, model_names, run_name, family)
    finally:
        conn.close()


def diff_in(conn: sqlite3.Connection, model_names: list[str], run_name: str | None = None,
            family: str | None = None) -> dict[str, Any]:
    if isinstance(model_names, str):  # list("abc") would diff models "a", "b" and "c"
        raise InvalidInputError(f"model_names must be a list of model names, got the string {model_names!r}")
    names = list(model_names)
    if len(names) < 2:
        raise InvalidInputError("Need at least 2 models to diff")
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InvalidInputError(f"model {repeated[0]!r} is listed more than once")
    run = None
    if run_name is not None:
        run = resolve.run_id(conn, run_name)
        if run is None:
            raise NotFoundError(f"run {run_name!r} not found")
    ids = {resolve.model_id(conn, name, run, run_name): name for name in names}
    placeholders = ",".join("?" * len(ids))
    sql = f"SELECT model_id, family, metric_name, value FROM metrics WHERE model_id IN ({placeholders})"
    params: list[Any] = list(ids)
    if family is not None:
        sql += " AND family = ?"
        params.append(family)
    table: dict[tuple[str, str], dict[str, float | None]] = {}
    for model_id, fam, metric, value in conn.execute(sql, params):
        table.setdefault((fam, metric), dict.fromkeys(names))[ids[model_id]] = value
    rows = [{"family": fam, "metric": metric, "values": table[(fam, metric)]} for fam, metric in sorted(table)]
    return {"models": names, "run_name": run_name, "rows": rows}


def _best_and_worst(metric: str, values: list[float | None]) -> tuple[set[int], set[int]]:
    """Column indexes of the best and the worst value of a row (direction-aware). Best is
    marked when values differ; worst only with 3+ values (with two, it is just "the other")."""
    numbers = [(v, i) for i, v in enumerate(values) if v is not None]
    if len(numbers) < 2 or len({v for v, _ in numbers}) == 1:
        return set(), set()
    low, high = min(v for v, _ in numbers), max(v for v, _ in numbers)
    best, worst = (low, high) if lower_is_better(metric) else (high, low)
    best_cols = {i for v, i in numbers if v == best}
    worst_cols = {i for v, i in numbers if v == worst} if len(numbers) >= 3 else set()
    return best_cols, worst_cols


def format_diff(data: dict[str, Any], *, color: bool = True) -> str:
    rows = data["rows"]
    if not rows:
        return "\n  No metrics found for the given models.\n"
    models = data["models"]
    fam_w = max([12] + [len(r["family"]) for r in rows])
    met_w = max([12] + [len(r["metric"]) for r in rows])
    col_w = max([10] + [len(m) for m in models])

    def line(family: str, metric: str, cells: list[str]) -> str:
        return f"  {family:<{fam_w}} {metric:<{met_w}}" + "".join(f"  {c}" for c in cells)

    header = line("Family", "Metric", [f"{m:>{col_w}}" for m in models])
    width = len(header) - 2
    run_info = f"  (run: {data['run_name']})" if data.get("run_name") else ""
    out = ["", f"  lightml diff — {len(models)} models{run_info}", "  " + "═" * width, header, "  " + "─" * width]
    previous_family = None
    complete = []  # rows every model has: the AVG row averages these
    for row in rows:
        if previous_family is not None and row["family"] != previous_family:
            out.append("")
        previous_family = row["family"]
        values = [row["values"][m] for m in models]
        best, worst = _best_and_worst(row["metric"], values)
        cells = []
        for i, value in enumerate(values):
            text = f"{'—' if value is None else f'{value:.4f}':>{col_w}}"
            cells.append(paint(text, GREEN if i in best else RED if i in worst else None, color))
        out.append(line(row["family"], row["metric"], cells))
        if all(v is not None for v in values):
            complete.append(values)
    out.append("  " + "─" * width)
    if complete:
        averages = [sum(col) / len(complete) for col in zip(*complete)]
        out.append(line("AVG", f"({len(complete)} metrics)", [f"{a:>{col_w}.4f}" for a in averages]))
    out.append("")
    return "\n".join(out)
