"""Repeated runs: a metric logged with repeat labels (``repeat="seed=1234"``) keeps each
repeat (``metric_repeats``), its value being their mean. Here: reading them back, the 95%
interval of the mean over repeats that every view shows (``0.634 ± 0.012 (n=5)``), and
the test of two models' means over their repeats.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

from lightml.errors import NotFoundError
from lightml.read import queries, resolve, student_t
from lightml.read.uncertainty import MDE_Z
from projections.metric_repeats import repeat_values, repeats_of

CONFIDENCE = 0.95


def get_repeats(conn, model_name: str, family: str, metric_name: str, step: int | None, run: int | None,
                run_name: str | None) -> list[dict[str, Any]]:
    """[{"repeat", "value"}] of one value, in label order; [] when it was logged without labels."""
    resolve.find_model_by_run_id(conn, model_name, run)  # (a deleted model: not found, as for its value)
    ids = queries.history_metric_ids(conn, model_name, family, metric_name, step, run, run_name)
    if not ids:
        where = f" at step {step}" if step is not None else ""
        raise NotFoundError(f"metric {family}/{metric_name} of model {model_name!r}{where} not found")
    return [{"repeat": label, "value": value} for label, value, *_ in repeats_of(conn, max(ids))]


class Spread(NamedTuple):
    """A mean over repeats with its 95% t interval (``half``: the half-width, None below 2
    repeats) and the count."""

    mean: float
    half: float | None
    n: int

    def text(self, digits: int = 4) -> str:
        """``0.6340 ± 0.0120 (n=5)``; a single repeat: ``0.6340 (n=1)``."""
        if self.half is None:
            return f"{self.mean:.{digits}f} (n={self.n})"
        return f"{self.mean:.{digits}f} ± {self.half:.{digits}f} (n={self.n})"

    def to_dict(self) -> dict[str, Any]:
        return {"mean": self.mean, "half_width": self.half, "n": self.n, "confidence": CONFIDENCE}


def spread(values: list[float]) -> Spread:
    found = student_t.mean_interval(values, CONFIDENCE)
    if found is None:  # (one value, or a spread beyond the float range: no interval)
        return Spread(math.fsum(values) / len(values) if values else float("nan"), None, len(values))
    mean, half, _ = found
    return Spread(mean, half, len(values))


def spreads(conn, metric_ids: list[int]) -> dict[int, Spread]:
    """metric id -> its spread over repeats, for those of the metrics that have repeats."""
    return {metric_id: spread(list(values.values())) for metric_id, values in repeat_values(conn, metric_ids).items()}


def values_of(conn, metric_ids: list[int]) -> dict[int, list[float]]:
    """metric id -> its repeat values (label order), for those that have repeats."""
    return {metric_id: [values[label] for label in sorted(values)]
            for metric_id, values in repeat_values(conn, metric_ids).items()}


# -- the test of two means over repeats ------------------------------------------------------

WELCH = "welch_t_over_repeats"
PAIRED_T = "paired_t_over_documents"
UNTESTABLE = "untestable"


def compare_repeats(values_a: list[float], values_b: list[float], documents: tuple | None,
                    confidence: float = CONFIDENCE) -> dict[str, Any]:
    """The comparison of two means over repeats (A - B), shaped as ``stats.compare_scores``'s
    result (its ``interval`` in place of ``bootstrap``):

    - fewer than 2 repeats on a side: ``test`` "untestable", no p-value, never significant
      (one run says nothing about how much another seed would move it); so, without
      per-sample scores, are repeats that do not vary on either side (nothing to weigh the
      difference against) and values too large for the arithmetic;
    - ``documents`` (both sides' per-document means over their repeats, paired by document):
      Student's paired t test on the per-document differences. The mean over repeats of each
      document carries both the variance between documents and the variance between seeds
      (reduced by the number of repeats), so the spread of the differences holds both: the
      clustered, paired analysis of Miller (2024), "Adding Error Bars to Evals",
      arXiv:2411.00640 (sections 2-4: resampling each question and paired differences);
    - otherwise Welch's t test on the repeat values (seeds of two models do not pair, and
      their spreads need not be equal), with Welch-Satterthwaite degrees of freedom.
    """
    base = {"binary": False, "contingency": None, "mcnemar": None, "bootstrap": None,
            "repeats_a": len(values_a), "repeats_b": len(values_b)}
    mean_a, mean_b = math.fsum(values_a) / len(values_a), math.fsum(values_b) / len(values_b)
    untestable = {**base, "n": len(values_a) + len(values_b), "mean_a": mean_a, "mean_b": mean_b,
                  "interval": None, "se_delta": None, "mde": None, "test": UNTESTABLE, "p_value": None,
                  "significant": False, "winner": None}
    if len(values_a) < 2 or len(values_b) < 2:
        return {**untestable, "reason": f"fewer than 2 repeats on a side ({len(values_a)} and {len(values_b)}): "
                                        "the spread between repeats is unknown"}
    if documents is None and len(set(values_a)) == 1 and len(set(values_b)) == 1:
        # Every repeat the same number on both sides (greedy decoding, a seed that changes nothing):
        # no spread to weigh the difference against, which then says nothing about another run.
        return {**untestable, "reason": "the repeats do not vary on either side (the seed changes nothing), so "
                                        "they say nothing of the spread: log per-sample scores to test over documents"}
    try:
        return _compare_repeats(values_a, values_b, documents, confidence, base)
    except OverflowError:  # (values near the float range: 1e200 and -1e200)
        return {**untestable, "reason": "the values are too large for a t test (beyond the float range)"}


def _compare_repeats(values_a: list[float], values_b: list[float], documents: tuple | None, confidence: float,
                     base: dict[str, Any]) -> dict[str, Any]:
    mean_a, mean_b = math.fsum(values_a) / len(values_a), math.fsum(values_b) / len(values_b)
    if documents is not None and len(documents[0]) < 2:
        documents = None  # (one document says nothing of the spread between documents: over the repeats)
    if documents is not None:
        a, b = documents
        differences = [x - y for x, y in zip(a, b)]
        n = len(differences)
        delta = math.fsum(differences) / n
        sd = math.sqrt(math.fsum((d - delta) ** 2 for d in differences) / (n - 1)) if n > 1 else 0.0
        se, df, test = sd / math.sqrt(n), n - 1, PAIRED_T
        mean_a, mean_b = math.fsum(a) / n, math.fsum(b) / n
    else:
        welch = student_t.welch_test(values_b, values_a)  # (its delta is the second's mean minus the first's: A - B)
        delta, se, df, test, n = welch["delta"], welch["se"], welch["df"], WELCH, len(values_a) + len(values_b)
    if se == 0.0:  # no spread at all: the difference is all there is
        p, half = (1.0 if delta == 0 else 0.0), 0.0
    else:
        p = student_t.two_sided_p(delta / se, df)
        half = student_t.quantile((1.0 + confidence) / 2.0, df) * se
    significant = p < 1.0 - confidence
    return {**base, "n": n, "mean_a": mean_a, "mean_b": mean_b,
            "interval": {"delta": delta, "ci_lower": delta - half, "ci_upper": delta + half, "confidence": confidence,
                         "df": df},
            "se_delta": se, "mde": MDE_Z * se, "test": test, "p_value": p, "significant": significant,
            "winner": ("a" if delta > 0 else "b") if significant else None}


def spreads_by_name(conn, model_id: int, family: str | None = None) -> dict[tuple[str, str], Spread]:
    """(family, metric_name) -> spread over repeats of the model's own metrics that have repeats."""
    by_name = queries.repeated_metrics(conn, model_id, family)
    found = spreads(conn, list(by_name.values()))
    return {key: found[metric_id] for key, metric_id in by_name.items() if metric_id in found}
