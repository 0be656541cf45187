"""A score's standard error, as lm-eval logs it beside the score, and what it allows: an
interval, and a test of two independent estimates.

lm-eval reports ``acc`` with ``acc_stderr`` (and ``exact_match,strict-match`` with
``exact_match_stderr,strict-match``); ``scan`` keeps both as metrics of the family. The rule
that links them is here, once: ``stderr_name``.
"""

from __future__ import annotations

import math
from typing import Any

# The standard normal quantile of 0.975: a 95% interval is value +- Z95 * stderr.
Z95 = 1.959963984540054
# z of alpha 0.05 (two-sided) plus z of power 0.8: the minimum detectable effect is MDE_Z * se.
MDE_Z = 2.8016
STDERR_SUFFIX = "_stderr"


def stderr_name(metric_name: str) -> str:
    """The name lm-eval gives the standard error of a metric: ``acc`` -> ``acc_stderr``, the
    filter kept after the comma (``exact_match,strict-match`` -> ``exact_match_stderr,strict-match``)."""
    name, comma, filter_name = metric_name.partition(",")
    return f"{name}{STDERR_SUFFIX}{comma}{filter_name}"


def usable_stderr(value: float | None) -> float | None:
    """A stored stderr fit to compute with (lm-eval writes ``"N/A"`` for some, which scan
    leaves out; a negative or non-finite one is nobody's standard error)."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) and value >= 0 else None


def z_test_p_value(value_a: float, stderr_a: float, value_b: float, stderr_b: float) -> float:
    """Two-sided p-value of the difference of two independent normal estimates (each score
    with its standard error): ``erfc(|a - b| / sqrt(2 (se_a^2 + se_b^2)))``. On the same
    documents the two estimates are positively correlated, so this overstates the spread of
    the difference: a conservative test (a paired test on per-sample scores is sharper)."""
    spread = math.hypot(stderr_a, stderr_b)
    if spread == 0:
        return 1.0 if value_a == value_b else 0.0
    return math.erfc(abs(value_a - value_b) / (spread * math.sqrt(2)))


def interval(value: float, stderr: float) -> tuple[float, float]:
    """The normal 95% interval of a score from its standard error."""
    return value - Z95 * stderr, value + Z95 * stderr


# -- the interval of an average of metrics (diff's AVG row) ----------------------------------

AVERAGE_RESAMPLES = 1000
AVERAGE_SEED = 42
_GATHER_CELLS = 4_000_000  # scores gathered per block of resamples (bounds the memory to ~32 MB)


def average_interval_over_documents(scores: list[list[Any]], resamples: int = AVERAGE_RESAMPLES,
                                    seed: int = AVERAGE_SEED) -> list[tuple[float, float]]:
    """95% percentile intervals of each model's average of per-metric means, by a paired
    bootstrap over documents: ``scores[k][j]`` is model j's score vector of metric k (every
    model scored on the same documents of each metric). Each resample draws each metric's
    documents with replacement, the same draw for every model, and averages the metric means."""
    import numpy as np

    rng = np.random.default_rng(seed)
    models = len(scores[0])
    totals = np.zeros((models, resamples))
    for vectors in scores:
        matrix = np.asarray(vectors, dtype=float)  # models x documents
        n = matrix.shape[1]
        block = max(1, _GATHER_CELLS // (n * models))
        for start in range(0, resamples, block):
            picks = rng.integers(0, n, size=(min(block, resamples - start), n))
            totals[:, start:start + len(picks)] += matrix[:, picks].mean(axis=2)
    means = totals / len(scores)
    low, high = np.percentile(means, [2.5, 97.5], axis=1)
    return list(zip(low.tolist(), high.tolist()))


def average_interval_over_tasks(values: list[list[float]]) -> list[tuple[float, float]] | None:
    """The same over the metrics themselves (``values[k][j]``: model j's value of metric k),
    taken as a sample of tasks: the normal 95% interval of their mean, ``mean +- 1.96 s /
    sqrt(k)`` (``s`` the sample standard deviation across the metrics), how much the average
    depends on which tasks were averaged. In closed form, without numpy (``lightml diff``
    starts in a blink); None with fewer than 2 metrics."""
    count = len(values)
    if count < 2:
        return None
    bounds = []
    for column in zip(*values):
        mean = math.fsum(column) / count
        spread = math.sqrt(math.fsum((v - mean) ** 2 for v in column) / (count - 1))
        half = Z95 * spread / math.sqrt(count)
        bounds.append((mean - half, mean + half))
    return bounds
