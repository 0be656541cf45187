"""Compare two models metric by metric: ``compare_models`` and ``lightml compare``.

Deltas are B - A. Where both models have per-sample scores for a metric, the row also
carries the paired test's p-value (exact McNemar for 0/1 scores, bootstrap otherwise), so
the table says which changes are real.
"""

from __future__ import annotations

import os
import sqlite3
from typing import Any

from pydantic import BaseModel, Field, model_validator

from lightml.read import repeats, resolve, settings, significance
from lightml.read.natural import natural_pair
from lightml.read.direction import is_uncertainty, lower_is_better
from lightml.read.sql import reading
from lightml.read.uncertainty import stderr_name, usable_stderr
from lightml.report.ansi import GREEN, RED, paint


class MetricDelta(BaseModel):
    """One metric of the comparison. As in LightML 1.2, ``delta`` and ``pct_change`` are
    computed on construction from the two values when not given, so code that builds
    ``MetricDelta(family=..., metric_name=..., value_a=..., value_b=...)`` gets them."""

    family: str
    metric_name: str
    value_a: float | None
    value_b: float | None
    delta: float | None = None        # B - A, rounded to 4 places
    pct_change: float | None = None   # (B - A) / |A| * 100, None when A is 0 or missing
    lower_is_better: bool | None = None  # None: from the metric's name (lightml.read.direction)
    uncertainty: bool | None = None   # a stderr-like metric: shown, never counted; None: from the name
    p_value: float | None = None      # paired test on per-sample scores, when both have them
    significant: bool | None = None
    test: str | None = None           # "mcnemar" or "bootstrap"
    note: str | None = None           # why scores exist but could not be tested
    stderr_a: float | None = None     # lm-eval's <metric>_stderr of each side, where logged
    stderr_b: float | None = None
    settings_differ: list[str] = Field(default_factory=list)  # decisive settings keys that differ (read.settings)
    repeats_a: dict[str, Any] | None = None  # over repeats, where logged: {"mean", "half_width", "n", "confidence"}
    repeats_b: dict[str, Any] | None = None

    @model_validator(mode="after")
    def _fill_in(self) -> "MetricDelta":
        if self.lower_is_better is None:
            self.lower_is_better = lower_is_better(self.metric_name)
        if self.uncertainty is None:
            self.uncertainty = is_uncertainty(self.metric_name)
        a, b = self.value_a, self.value_b
        if a is not None and b is not None:
            if self.delta is None:
                self.delta = round(b - a, 4)
            if self.pct_change is None and a != 0:
                # from the exact difference: 0.00004 -> 0.00005 is +25%, not +0% from a rounded 0.0
                self.pct_change = round((b - a) / abs(a) * 100, 2)
        return self

    @property
    def direction(self) -> int | None:
        """+1 improved, -1 regressed, 0 unchanged (by the metric's direction); None when a
        value is missing or the metric is an uncertainty (a stderr is not a score).

        From the exact values, like ``pct_change``: 0.00004 -> 0.00005 is a change even
        though the rounded ``delta`` shows 0.0000."""
        if self.value_a is None or self.value_b is None or self.uncertainty:
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
    deltas: list[MetricDelta] = Field(default_factory=list)

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

    @property
    def uncertainties(self) -> list[MetricDelta]:
        """Stderr-like rows with both values: shown, in none of the counts above."""
        return [d for d in self.deltas if d.uncertainty and d.delta is not None]

    def to_dict(self) -> dict[str, Any]:
        """LightML 1.2's keys (model_a, model_b, run, summary, deltas with family, metric,
        value_a, value_b, delta, pct_change), plus ours."""
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
                "uncertainty_not_counted": len(self.uncertainties),
            },
            "deltas": [
                {
                    "family": d.family, "metric": d.metric_name, "value_a": d.value_a, "value_b": d.value_b,
                    "delta": d.delta, "pct_change": d.pct_change, "lower_is_better": d.lower_is_better,
                    "uncertainty": d.uncertainty, "p_value": d.p_value, "significant": d.significant,
                    "test": d.test, "note": d.note, "stderr_a": d.stderr_a, "stderr_b": d.stderr_b,
                    "settings_differ": d.settings_differ, "repeats_a": d.repeats_a, "repeats_b": d.repeats_b,
                }
                for d in self.deltas
            ],
        }

    def to_text(self, *, color: bool = True) -> str:
        return format_compare(self, color=color)


def compare_models(db: str | os.PathLike, model_a: str, model_b: str, run_name: str | None = None,
                   family: str | None = None, *, run_a: str | None = None, run_b: str | None = None,
                   strict: bool = False) -> CompareResult:
    """Compare two models' model-level metrics (the union of both, sorted by family and name).

    Models are named by ``resolve.find_model``'s rule (``RUN/MODEL`` or ``MODEL@RUN`` per
    model; ``run_name`` is the run preferred for both, ``run_a`` / ``run_b`` per model).
    A row whose two values were produced with settings that differ in a decisive key
    (``lightml.read.settings.DECISIVE_KEYS``) lists them in ``settings_differ``; ``strict``
    refuses such a comparison (InvalidInputError).
    """
    with reading(db) as conn:
        return compare_in(conn, model_a, model_b, run_name, family, run_a=run_a, run_b=run_b, strict=strict)


def model_values(conn: sqlite3.Connection, model_id: int, family: str | None) -> dict[tuple[str, str], float]:
    sql = "SELECT family, metric_name, value FROM metrics WHERE model_id = ?"
    params: list[Any] = [model_id]
    if family is not None:
        sql += " AND family = ?"
        params.append(family)
    return {(f, m): v for f, m, v in conn.execute(sql, params)}


def compare_in(conn: sqlite3.Connection, model_a: str, model_b: str, run_name: str | None = None,
               family: str | None = None, *, run_a: str | None = None, run_b: str | None = None,
               strict: bool = False) -> CompareResult:
    """``compare_models`` on an open connection (the dashboard shares its own)."""
    ref_a = resolve.find_model(conn, model_a, run_a if run_a is not None else run_name)
    ref_b = resolve.find_model(conn, model_b, run_b if run_b is not None else run_name)
    values_a, values_b = model_values(conn, ref_a.id, family), model_values(conn, ref_b.id, family)
    verdicts = significance.verdicts_by_id(conn, ref_a.id, ref_b.id, ref_a.model_name, ref_b.model_name, family)
    spreads_a = repeats.spreads_by_name(conn, ref_a.id, family)
    spreads_b = repeats.spreads_by_name(conn, ref_b.id, family)
    found = settings.settings_by_model(conn, [ref_a.id, ref_b.id], family)
    settings_a, settings_b = found.get(ref_a.id, {}), found.get(ref_b.id, {})
    differing = settings.DifferingKeys()
    deltas = []
    for key in sorted(values_a.keys() | values_b.keys(), key=natural_pair):
        verdict = verdicts.get(key, {})
        stderr_key = (key[0], stderr_name(key[1]))
        deltas.append(MetricDelta(
            family=key[0], metric_name=key[1], value_a=values_a.get(key), value_b=values_b.get(key),
            p_value=verdict.get("p_value"), significant=verdict.get("significant"), test=verdict.get("test"),
            note=verdict.get("error"), stderr_a=usable_stderr(values_a.get(stderr_key)),
            stderr_b=usable_stderr(values_b.get(stderr_key)),
            settings_differ=differing([settings_a.get(key), settings_b.get(key)]),
            repeats_a=_spread_dict(spreads_a.get(key)), repeats_b=_spread_dict(spreads_b.get(key)),
        ))
    settings.refuse_if_strict(strict, [(f"{d.family}/{d.metric_name}", d.settings_differ)
                                       for d in deltas if d.settings_differ])
    return CompareResult(model_a=ref_a.model_name, model_b=ref_b.model_name, run_name=run_name,
                         run_a=ref_a.run_name, run_b=ref_b.run_name, deltas=deltas)


def _spread_dict(found: "repeats.Spread | None") -> dict[str, Any] | None:
    return None if found is None else found.to_dict()


def _spread_text(spread: dict[str, Any] | None) -> str:
    """``±0.0120 (n=5)``: the half-width of the 95% interval over repeats, and their count."""
    if spread is None:
        return ""
    half = spread["half_width"]
    return f"(n={spread['n']})" if half is None else f"±{half:.4f} (n={spread['n']})"


def _number(value: float | None, decimals: int, signed: bool = False) -> str:
    if value is None:
        return "—"
    return f"{value:+.{decimals}f}" if signed else f"{value:.{decimals}f}"


def _stderr_text(stderr: float | None) -> str:
    return "" if stderr is None else f"±{stderr:.4f}"


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
    with_stderr = any(d.stderr_a is not None or d.stderr_b is not None for d in result.deltas)
    header = f"  {'Family':<{fam_w}} {'Metric':<{met_w}} {'A':>10} {'B':>10} {'Δ':>10} {'%':>8}"
    if with_stderr:
        header += f" {'±A':>8} {'±B':>8}"
    with_repeats = any(d.repeats_a or d.repeats_b for d in result.deltas)
    if with_repeats:
        header += f" {'95% A':>15} {'95% B':>15}"
    if with_p:
        header += f" {'p':>9}"
    rule = "  " + "─" * (len(header) - 2)
    lines = ["", f"  Compare: {result.model_a}  vs  {result.model_b}"]
    if result.run_a != result.run_b:  # the same name in two runs, or --run's fallback
        lines.append(f"  Runs: {result.run_a}  vs  {result.run_b}")
    elif result.run_a or result.run_name:
        lines.append(f"  Run: {result.run_a or result.run_name}")
    lines += [rule, header, rule]
    for d in result.deltas:
        present = [abs(v) for v in (d.value_a, d.value_b) if v is not None]
        decimals = 4 if present and max(present) < 10 else 2
        pct = "—" if d.pct_change is None else f"{d.pct_change:+.1f}%"
        delta = f"{_number(d.delta, decimals, signed=True):>10}"
        colour = {1: GREEN, -1: RED}.get(d.direction)
        line = (f"  {d.family:<{fam_w}} {d.metric_name:<{met_w}} {_number(d.value_a, decimals):>10} "
                f"{_number(d.value_b, decimals):>10} {paint(delta, colour, color)} {pct:>8}")
        if with_stderr:
            line += f" {_stderr_text(d.stderr_a):>8} {_stderr_text(d.stderr_b):>8}"
        if with_repeats:
            line += f" {_spread_text(d.repeats_a):>15} {_spread_text(d.repeats_b):>15}"
        if with_p:
            line += f" {_format_p(d.p_value, d.significant):>9}"
        if d.settings_differ:
            line += "  !"
        lines.append(line.rstrip())
    lines.append(rule)
    lines.append(f"  ✅ {len(result.improved)} improved  ❌ {len(result.regressed)} regressed  "
                 f"➖ {len(result.unchanged)} unchanged  ❓ {len(result.missing)} missing")
    if result.uncertainties:
        lines.append(f"  ({len(result.uncertainties)} stderr row(s) shown, not counted: an uncertainty is not a score)")
    if with_stderr:
        lines.append("  ±: the standard error lm-eval logged with the value (<metric>_stderr); "
                     "value ± 1.96 x stderr is its 95% interval")
    if with_repeats:
        lines.append("  95%: the value is the mean of its repeats; ± the half-width of its 95% t interval, "
                     "n the number of repeats")
    if with_p:
        over_repeats = any(d.test in ("welch_t_over_repeats", "paired_t_over_documents") for d in result.deltas)
        lines.append("  p: paired test on per-sample scores (McNemar for 0/1 scores, bootstrap otherwise"
                     + ("; over repeats where both logged them: Welch's t, or paired t over documents" if over_repeats
                        else "") + "); * p < 0.05")
    lines += settings.footnote([(f"{d.family}/{d.metric_name}", d.settings_differ)
                                for d in result.deltas if d.settings_differ])
    untested = [d for d in result.deltas if d.note]
    for d in untested:
        lines.append(f"  not tested: {d.note}")
    lines.append("")
    return "\n".join(lines)
