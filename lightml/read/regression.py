"""The regression gate: is any metric of a candidate significantly worse than the base's?

For a training CI: ``lightml compare --a BASE --b CANDIDATE --fail-on-regression`` exits 1
when ``regression_check`` finds a regression. Every metric both models have per-sample
scores for is tested (``significance.compare_stats_all``: exact McNemar for 0/1 scores,
paired bootstrap otherwise), and the p-values are adjusted with Holm's step-down method,
which bounds the chance of failing a sound candidate (the family-wise error) at ``alpha``
however many metrics are tested. "Worse" follows the metric's direction: a higher loss or
perplexity is worse.
"""

from __future__ import annotations

import math
import sqlite3
from typing import Any

from lightml.errors import InvalidInputError
from lightml.read import significance
from lightml.read.direction import is_uncertainty

DEFAULT_ALPHA = 0.05


def check_alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) \
            or not 0 < alpha < 1:
        raise InvalidInputError(f"alpha must be a number between 0 and 1 (exclusive), got {alpha!r}")
    return float(alpha)


def _worse(item: dict[str, Any]) -> bool:
    """Is the candidate (B) worse than the base (A) on this metric, by its direction?"""
    if item["lower_is_better"]:
        return item["mean_b"] > item["mean_a"]
    return item["mean_b"] < item["mean_a"]


def regression_check(conn: sqlite3.Connection, base: str, candidate: str, family: str | None = None,
                     alpha: float = DEFAULT_ALPHA, run: int | None = None) -> dict[str, Any]:
    """``passed`` is False when some metric of ``candidate`` is worse than ``base``'s with a
    Holm-adjusted p-value below ``alpha``. Also: ``regressed`` and ``improved`` (the tested
    items, ``compare_stats_all``'s shape, significant after the adjustment), ``tested`` (how
    many), ``untested`` (metrics with scores that could not be paired, with their ``error``).

    Nothing to test (no metric with per-sample scores on both sides, in ``family`` if given)
    is an ``InvalidInputError``: a gate that tested nothing must not pass."""
    alpha = check_alpha(alpha)
    items = [item for item in significance.compare_stats_all(conn, base, candidate, family, run)
             if not is_uncertainty(item["metric_name"])]
    tested = [item for item in items if item.get("error") is None]
    if not tested:
        where = f" in family {family!r}" if family is not None else ""
        if items:
            raise InvalidInputError(
                f"nothing to test: none of the {len(items)} metric(s) with per-sample scores on both {base!r} and "
                f"{candidate!r}{where} can be paired (the first: {items[0]['error']})")
        raise InvalidInputError(
            f"nothing to test: {base!r} and {candidate!r} have no metric with per-sample scores in common{where}; "
            "the regression gate needs scores (log them with scores=[...], or scan lm-eval samples)")
    significant = [item for item in tested if item["p_holm"] < alpha]
    regressed = [item for item in significant if _worse(item)]
    return {
        "base": base, "candidate": candidate, "family": family, "alpha": alpha, "correction": "holm",
        "passed": not regressed, "tested": len(tested),
        "regressed": regressed, "improved": [item for item in significant if not _worse(item)],
        "untested": [item for item in items if item.get("error") is not None],
    }


def format_gate(result: dict[str, Any]) -> str:
    """The gate's verdict in a few lines, for the terminal and a CI log."""
    head = (f"  regression gate: {result['base']} (base) -> {result['candidate']} (candidate), "
            f"{result['tested']} metric(s) tested, Holm-adjusted alpha {result['alpha']:g}")
    lines = [head]
    if result["passed"]:
        lines.append(f"  PASS: no metric of {result['candidate']} is significantly worse")
    else:
        lines.append(f"  FAIL: {len(result['regressed'])} metric(s) of {result['candidate']} significantly worse:")
        for item in result["regressed"]:
            lines.append(f"    {item['family']}/{item['metric_name']}: {item['mean_a']:.4f} -> {item['mean_b']:.4f} "
                         f"({item['test']}, p_holm {item['p_holm']:.2g})")
    for item in result["untested"]:
        lines.append(f"  not tested: {item['error']}")
    return "\n".join(lines)
