"""Compare two models metric by metric: ``compare_models`` and ``lightml compare``.

Deltas are B - A. Where both models have per-sample scores for a metric, the row also
carries the paired test's p-value (exact McNemar for 0/1 scores, bootstrap otherwise), so
the table says which changes are real.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from pydantic import BaseModel

from lightml import resolve, significance, store
from lightml.ansi import GREEN, RED, paint
from lightml.direction import lower_is_better
from lightml.errors import NotFoundError


class MetricDelta(BaseModel):
    family: str
    metric_name: str
    value_a: float | None
    value_b: float | None
    delta: float | None = None        # B - A, rounded to 4 places
    pct_change: float | None = None   # delta / |A| * 100, None when A is 0 or missing
    lower_is_better: bool = False
    p_value: float | None = None      # paired test on per-sample scores, when both have them
    significant: bool | None = None
    test: str | None = None           # "mcnemar" or "bootstrap"
    note: str | None = None           # why scores exist but could not be tested

    @property
    def direction(self) -> int | None:
        """+1 improved, -1 regressed, 0 unchanged (by the metric's direction); None missing.

        From the exact values, like ``pct_change``: 0.00004 -> 0.00005 is a change even
        though the rounded ``delta`` shows 0.0000."""
        if self.value_a is None or self.value_b is None:
            return None
        if self.value_b == self.value_a:
            return 0
        better = self.value_b < self.value_a if self.lower_is_better else self.value_b > self.value_a
        return 1 if better else -1


class CompareResult(BaseModel):
    model_a: str
    model_b: str
    run_name: str | None = None
    run_a: str | None = None
    run_b: str | None = None
    deltas: list[MetricDelta]

    @property
    def improved(self) -> list[MetricDelta]:
        return [d for d in self.deltas if d.direction == 1]

    @property
    def regressed(self) -> list[MetricDelta]:
        return [d for d in self.deltas if d.direction == -1]

    @property
    def unchanged(self) -> list[MetricDelta]:
        return [d for d in self.deltas if d.direction == 0]

    @property
    def missing(self) -> list[MetricDelta]:
        return [d for d in self.deltas if d.delta is None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "model_a": self.model_a,
            "model_b": self.model_b,
            "run": self.run_name,
            "run_a": self.run_a,
            "run_b": self.run_b,
            "summary": {
                "improved": len(self.improved),
                "regressed": len(self.regressed),
                "unchanged": len(self.unchanged),
                "missing": len(self.missing),
            },
            "deltas": [
                {
                    "family": d.family, "metric": d.metric_name, "value_a": d.value_a, "value_b": d.value_b,
                    "delta": d.delta, "pct_change": d.pct_change, "lower_is_better": d.lower_is_better,
                    "p_value": d.p_value, "significant": d.significant, "test": d.test, "note": d.note,
                }
                for d in self.deltas
            ],
        }

    def to_text(self, *, color: bool = True) -> str:
        return format_compare(self, color=color)


def compare_models(db: str | os.PathLike, model_a: str, model_b: str, run_name: str | None = None,
                   family: str | None = None, *, run_a: str | None = None, run_b: str | None = None) -> CompareResult:
    """Compare two models' model-level metrics (the union of both, sorted by family and name).

    ``run_name`` looks both models up in that run; ``run_a`` / ``run_b`` override it per
    model (the same model name in two runs). Without any, a name must be in one run only.
    """
    conn = store.open_registry_readonly(db)
    try:
        return compare_in(conn, model_a, model_b, run_name, family, run_a=run_a, run_b=run_b)
    finally:
        conn.close()


def model_in_run(conn: sqlite3.Connection, model_name: str, run_name: str | None) -> tuple[int, str | None]:
    """(model id, its run's name): in ``run_name`` when given, else the name's only run."""
    if run_name is None:
        mid = resolve.model_id_any_run(conn, model_name)
    else:
        rid = resolve.run_id(conn, run_name)
        if rid is None:
            raise NotFoundError(f"run {run_name!r} not found")
        mid = resolve.model_id(conn, model_name, rid, run_name)
    row = conn.execute("SELECT r.run_name FROM model m LEFT JOIN run r ON r.id = m.run_id WHERE m.id = ?",
                       (mid,)).fetchone()
    return mid, row[0]


def model_values(conn: sqlite3.Connection, model_id: int, family: str | None) -> dict[tuple[str, str], float]:
    sql = "SELECT family, metric_name, value FROM metrics WHERE model_id = ?"
    params: list[Any] = [model_id]
    if family is not None:
        sql += " AND family = ?"
        params.append(family)
    return {(f, m): v for f, m, v in conn.execute(sql, params)}


def compare_in(conn: sqlite3.Connection, model_a: str, model_b: str, run_name: str | None = None,
               family: str | None = None, *, run_a: str | None = None, run_b: str | None = None) -> CompareResult:
    """``compare_models`` on an open connection (the dashboard shares its own)."""
    id_a, found_run_a = model_in_run(conn, model_a, run_a if run_a is not None else run_name)
    id_b, found_run_b = model_in_run(conn, model_b, run_b if run_b is not None else run_name)
    values_a, values_b = model_values(conn, id_a, family), model_values(conn, id_b, family)
    verdicts = significance.verdicts_by_id(conn, id_a, id_b, model_a, model_b, family)
    deltas = []
    for key in sorted(values_a.keys() | values_b.keys()):
        a, b = values_a.get(key), values_b.get(key)
        delta = pct = None
        if a is not None and b is not None:
            delta = round(b - a, 4)
            # from the exact difference: 0.00004 -> 0.00005 is +25%, not +0% from a rounded 0.0
            pct = round((b - a) / abs(a) * 100, 2) if a != 0 else None
        verdict = verdicts.get(key, {})
        deltas.append(MetricDelta(
            family=key[0], metric_name=key[1], value_a=a, value_b=b, delta=delta, pct_change=pct,
            lower_is_better=lower_is_better(key[1]), p_value=verdict.get("p_value"),
            significant=verdict.get("significant"), test=verdict.get("test"), note=verdict.get("error"),
        ))
    return CompareResult(model_a=model_a, model_b=model_b, run_name=run_name, run_a=found_run_a,
                         run_b=found_run_b, deltas=deltas)


def _number(value: float | None, decimals: int, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def _format_p(p: float | None, significant: bool | None) -> str:
    if p is None:
        return ""
    text = "<0.0001" if p < 0.0001 else f"{p:.4f}"
    return text + (" *" if significant else "  ")


def format_compare(result: CompareResult, *, color: bool = True) -> str:
    """LightML 1.2's compare table; a p column is added when some metric could be tested.

    Values print with 2 decimals as in 1.2, or 4 when a row's values are below 10 in
    size (accuracies in [0, 1] would otherwise round to nothing).
    """
    fam_w = max([18] + [len(d.family) for d in result.deltas])
    met_w = max([14] + [len(d.metric_name) for d in result.deltas])
    with_p = any(d.p_value is not None for d in result.deltas)
    header = f"  {'Family':<{fam_w}} {'Metric':<{met_w}} {'A':>10} {'B':>10} {'Δ':>10} {'%':>8}"
    if with_p:
        header += f" {'p':>9}"
    rule = "  " + "─" * (len(header) - 2)
    lines = ["", f"  Compare: {result.model_a}  vs  {result.model_b}"]
    if result.run_name:
        lines.append(f"  Run: {result.run_name}")
    elif result.run_a != result.run_b:
        lines.append(f"  Runs: {result.run_a}  vs  {result.run_b}")
    lines += [rule, header, rule]
    for d in result.deltas:
        present = [abs(v) for v in (d.value_a, d.value_b) if v is not None]
        decimals = 4 if present and max(present) < 10 else 2
        pct = "—" if d.pct_change is None else f"{d.pct_change:+.1f}%"
        delta = f"{_number(d.delta, decimals, signed=True):>10}"
        colour = {1: GREEN, -1: RED}.get(d.direction)
        line = (f"  {d.family:<{fam_w}} {d.metric_name:<{met_w}} {_number(d.value_a, decimals):>10} "
                f"{_number(d.value_b, decimals):>10} {paint(delta, colour, color)} {pct:>8}")
        if with_p:
            line += f" {_format_p(d.p_value, d.significant):>9}"
        lines.append(line.rstrip())
    lines.append(rule)
    lines.append(f"  ✅ {len(result.improved)} improved  ❌ {len(result.regressed)} regressed  "
                 f"➖ {len(result.unchanged)} unchanged  ❓ {len(result.missing)} missing")
    if with_p:
        lines.append("  p: paired test on per-sample scores (McNemar for 0/1 scores, bootstrap otherwise); "
                     "* p < 0.05")
    untested = [d for d in result.deltas if d.note]
    for d in untested:
        lines.append(f"  not tested: {d.note}")
    lines.append("")
    return "\n".join(lines)
