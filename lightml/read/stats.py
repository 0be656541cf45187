"""Paired significance tests on per-sample scores (numpy only).

Two models scored on the same documents give paired vectors. For 0/1 scores the verdict
is the exact McNemar test (a two-sided binomial test on the discordant pairs); for other
scores it is the paired percentile bootstrap. Every function here is pure: vectors in,
plain Python numbers out.
"""

from __future__ import annotations

import math
import numbers
from typing import Any, Sequence

import numpy as np

from lightml.errors import InvalidInputError
from lightml.read.uncertainty import MDE_Z  # z(1 - alpha/2) + z(power), alpha 0.05 two-sided, power 0.8
from lightml.write.validation import describe_number

DEFAULT_RESAMPLES = 10_000
DEFAULT_CONFIDENCE = 0.95
DEFAULT_SEED = 42
# The bootstrap keeps 8 bytes per resample (a few times that while drawing): 1,000,000
# resamples is tens of MB and seconds of work; more would only exhaust memory.
MAX_RESAMPLES = 1_000_000
MAX_SEED = 2**64 - 1  # numpy takes larger seeds, but a seed is a 64-bit number everywhere else
ALPHA = 0.05
# Up to this many discordant pairs the McNemar p-value is computed with integers
# (correctly rounded); above it, in log space.
_EXACT_INTEGER_LIMIT = 1_000
# Float bootstrap: at most this many resampled values in memory at once.
_CHUNK_ELEMENTS = 2_000_000


def vector_from_json(text: str) -> np.ndarray:
    """A stored score list (JSON array text) as a float vector.

    0/1 scores, the common case, are stored as ``[1,0,1,...]`` (or ``[1.0,0.0,...]``):
    tokens of one width between commas, read straight from the bytes in microseconds.
    Anything else goes through ``json.loads`` (10 ms per 100,000 numbers).
    """
    raw = np.frombuffer(text.encode("ascii", "replace"), dtype=np.uint8)
    bracketed = len(raw) >= 3 and raw[0] == ord("[") and raw[-1] == ord("]")
    for width, tokens in ((1, (b"0", b"1")), (3, (b"0.0", b"1.0"))):
        inner = raw[1:-1]
        stride = width + 1
        if not bracketed or (len(inner) + 1) % stride:
            continue
        cells = np.concatenate((inner, [ord(",")])).reshape(-1, stride)
        if not (cells[:, -1] == ord(",")).all():
            continue
        zero, one = (np.frombuffer(t, dtype=np.uint8) for t in tokens)
        is_one = (cells[:, :width] == one).all(axis=1)
        if (is_one | (cells[:, :width] == zero).all(axis=1)).all():
            return is_one.astype(np.float64)
    from lightml.log import codec

    return np.asarray(codec.loads(text), dtype=np.float64)


def as_vectors(scores_a: Sequence[float], scores_b: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(scores_a, dtype=np.float64)
    b = np.asarray(scores_b, dtype=np.float64)
    if a.ndim != 1 or b.ndim != 1:
        raise InvalidInputError("scores must be flat lists of numbers")
    if len(a) != len(b):
        raise InvalidInputError(f"Score vectors must have same length: {len(a)} vs {len(b)}")
    if len(a) == 0:
        raise InvalidInputError("score vectors are empty")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise InvalidInputError("scores must be finite numbers")
    # Sums of up to n differences (means, bootstrap resamples) must stay finite: each score
    # within float max / 2n keeps every such sum in range.
    limit = np.finfo(np.float64).max / (2 * len(a))
    if max(float(np.abs(a).max()), float(np.abs(b).max())) > limit:
        raise InvalidInputError(f"scores are too large to average over {len(a)} samples "
                                f"(each must be within ±{limit:.3g})")
    return a, b


def is_binary(a: np.ndarray, b: np.ndarray) -> bool:
    """Are both vectors made of 0s and 1s only (correct / wrong)?"""
    return bool(np.all((a == 0) | (a == 1)) and np.all((b == 0) | (b == 1)))


def contingency_table(scores_a: Sequence[float], scores_b: Sequence[float]) -> dict[str, int]:
    """Counts of the four (A, B) outcomes of 0/1 scores."""
    a, b = as_vectors(scores_a, scores_b)
    if not is_binary(a, b):
        raise InvalidInputError("a contingency table needs 0/1 scores")
    return _contingency(a, b)


def _contingency(a: np.ndarray, b: np.ndarray) -> dict[str, int]:
    a_ok, b_ok = a == 1, b == 1
    only_a = int(np.count_nonzero(a_ok & ~b_ok))
    only_b = int(np.count_nonzero(~a_ok & b_ok))
    both_correct = int(np.count_nonzero(a_ok & b_ok))
    return {
        "both_correct": both_correct,
        "only_a": only_a,
        "only_b": only_b,
        "both_wrong": len(a) - both_correct - only_a - only_b,
        "n_discordant": only_a + only_b,
    }


def mcnemar_p_value(only_a: int, only_b: int) -> float:
    """Exact two-sided McNemar p-value: 2 * P(X <= min(only_a, only_b)), X ~ Binomial(n, 1/2),
    n = only_a + only_b, capped at 1. No discordant pairs gives 1."""
    if only_a < 0 or only_b < 0:
        raise InvalidInputError("discordant counts must be non-negative")
    n, k = only_a + only_b, min(only_a, only_b)
    if n == 0 or 2 * k >= n:
        return 1.0
    if n <= _EXACT_INTEGER_LIMIT:
        # int / int true division is correctly rounded: (5, 15) gives exactly 5425/131072.
        term = total = 1  # C(n, 0); C(n, i + 1) = C(n, i) * (n - i) / (i + 1), exactly
        for i in range(k):
            term = term * (n - i) // (i + 1)
            total += term
        return min(1.0, 2 * total / 2 ** n)
    return min(1.0, 2.0 * math.exp(_log_binomial_half_cdf(k, n)))


def _log_binomial_half_cdf(k: int, n: int) -> float:
    """log P(X <= k) for X ~ Binomial(n, 1/2), k < n / 2, in O(sqrt(n)) numpy work.

    Terms below k shrink at least like a Gaussian of sd sqrt(n)/2, so those more than
    20 sd below k add less than e^-200 relative and are left out. log C(n, i) is
    lgamma at the window's first term, then a cumulative sum of log((n - i + 1) / i).
    """
    start = max(0, k - 10 * math.isqrt(n) - 10)
    log_first = math.lgamma(n + 1) - math.lgamma(start + 1) - math.lgamma(n - start + 1)
    i = np.arange(start + 1, k + 1, dtype=np.float64)
    log_terms = np.concatenate(([log_first], log_first + np.cumsum(np.log((n - i + 1) / i))))
    peak = log_terms.max()
    return float(peak + math.log(np.exp(log_terms - peak).sum()) - n * math.log(2))


def mcnemar_test(only_a: int, only_b: int) -> dict[str, Any]:
    p = mcnemar_p_value(only_a, only_b)
    significant = p < ALPHA
    winner = ("a" if only_a > only_b else "b") if significant else None
    return {"p_value": p, "significant": significant, "winner": winner}


def bootstrap_binary(contingency: dict[str, int], *, resamples: int = DEFAULT_RESAMPLES,
                     seed: int = DEFAULT_SEED) -> np.ndarray:
    """Resampled deltas (A - B) of 0/1 scores.

    Drawing n pairs with replacement only matters through how many land in each of the
    four contingency cells, which is one multinomial draw: O(resamples), whatever n is.
    """
    cells = np.array([contingency["both_correct"], contingency["only_a"],
                      contingency["only_b"], contingency["both_wrong"]], dtype=np.float64)
    n = int(cells.sum())
    counts = np.random.default_rng(seed).multinomial(n, cells / n, size=resamples)
    return (counts[:, 1] - counts[:, 2]) / n


def bootstrap_paired(a: np.ndarray, b: np.ndarray, *, resamples: int = DEFAULT_RESAMPLES,
                     seed: int = DEFAULT_SEED) -> np.ndarray:
    """Resampled deltas (A - B) of any scores: paired indices drawn in chunks, so memory
    stays bounded (never an n x resamples matrix)."""
    diff = a - b
    n = len(diff)
    rng = np.random.default_rng(seed)
    per_chunk = max(1, _CHUNK_ELEMENTS // n)
    deltas = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, per_chunk):
        rows = min(per_chunk, resamples - start)
        deltas[start:start + rows] = diff[rng.integers(0, n, size=(rows, n))].mean(axis=1)
    return deltas


def percentile_interval(deltas: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1.0 - confidence) / 2.0 * 100.0
    lower, upper = np.percentile(deltas, [tail, 100.0 - tail])
    return float(lower), float(upper)


def bootstrap_p_value(deltas: np.ndarray) -> float:
    """Two-sided percentile-bootstrap p-value: twice the share of resampled deltas on the
    far side of 0 (with the +1 correction, so it is never 0). Agrees with the interval:
    the 95% interval excludes 0 about when this is below 0.05."""
    r = len(deltas)
    below = (np.count_nonzero(deltas <= 0) + 1) / (r + 1)
    above = (np.count_nonzero(deltas >= 0) + 1) / (r + 1)
    return float(min(1.0, 2.0 * min(below, above)))


def min_detectable_effect(sd_diff: float, n: int) -> float:
    """Smallest true difference (A - B, in score units) this many paired samples detect with
    power 0.8 at alpha 0.05. For 0/1 scores sd_diff^2 ~= the discordant share, so this is
    2.8016 * sqrt(p_discordant / n)."""
    return MDE_Z * sd_diff / math.sqrt(n)


def check_options(resamples: Any = DEFAULT_RESAMPLES, confidence: Any = DEFAULT_CONFIDENCE,
                  seed: Any = DEFAULT_SEED) -> None:
    """The bootstrap options, checked (numpy integers and floats are fine, booleans are not)."""
    if (isinstance(resamples, bool) or not isinstance(resamples, numbers.Integral)
            or not 100 <= resamples <= MAX_RESAMPLES):
        raise InvalidInputError(f"resamples must be an integer from 100 to {MAX_RESAMPLES:,}, got {describe_number(resamples)}")
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real) or not 0.5 <= confidence < 1:
        raise InvalidInputError(f"confidence must be in [0.5, 1), got {confidence!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or not 0 <= seed <= MAX_SEED:
        raise InvalidInputError(f"seed must be an integer from 0 to 2**64 - 1, got {describe_number(seed)}")



def compare_scores(scores_a: Sequence[float], scores_b: Sequence[float], *, resamples: int = DEFAULT_RESAMPLES,
                   confidence: float = DEFAULT_CONFIDENCE, seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """The full paired comparison of two score vectors (see the README for every key)."""
    check_options(resamples, confidence, seed)
    resamples, confidence, seed = int(resamples), float(confidence), int(seed)
    a, b = as_vectors(scores_a, scores_b)
    n = len(a)
    binary = is_binary(a, b)
    mean_a, mean_b = float(a.mean()), float(b.mean())
    if binary:
        table = _contingency(a, b)
        mcnemar = mcnemar_test(table["only_a"], table["only_b"])
        deltas = bootstrap_binary(table, resamples=resamples, seed=seed)
        # The differences are +1 (only A), -1 (only B) or 0: their sd from the counts.
        delta = (table["only_a"] - table["only_b"]) / n
        second_moment = table["n_discordant"] / n
        sd_diff = math.sqrt(max(0.0, second_moment - delta * delta) * n / (n - 1)) if n > 1 else 0.0
        mde = min_detectable_effect(math.sqrt(second_moment), n)
    else:
        table, mcnemar = None, None
        deltas = bootstrap_paired(a, b, resamples=resamples, seed=seed)
        delta = mean_a - mean_b
        sd_diff = float(np.std(a - b, ddof=1)) if n > 1 else 0.0
        mde = min_detectable_effect(sd_diff, n)
    lower, upper = percentile_interval(deltas, confidence)
    if binary:
        p_value, significant, winner = mcnemar["p_value"], mcnemar["significant"], mcnemar["winner"]
    else:
        p_value = bootstrap_p_value(deltas)
        significant = lower > 0 or upper < 0
        winner = ("a" if delta > 0 else "b") if significant else None
    return {
        "n": n,
        "binary": binary,
        "mean_a": mean_a,
        "mean_b": mean_b,
        "contingency": table,
        "mcnemar": mcnemar,
        "bootstrap": {
            "delta": delta,
            "ci_lower": lower,
            "ci_upper": upper,
            "confidence": confidence,
            "resamples": resamples,
            "seed": seed,
        },
        "se_delta": sd_diff / math.sqrt(n),
        "mde": mde,
        "test": "mcnemar" if binary else "bootstrap",
        "p_value": p_value,
        "significant": significant,
        "winner": winner,
    }


def paired_verdict(scores_a: Sequence[float], scores_b: Sequence[float], *, resamples: int = DEFAULT_RESAMPLES,
                   seed: int = DEFAULT_SEED) -> dict[str, Any]:
    """Just the verdict of ``compare_scores`` (same test, same p-value), without the
    interval: McNemar alone for 0/1 scores, which costs microseconds."""
    a, b = as_vectors(scores_a, scores_b)
    if is_binary(a, b):
        table = _contingency(a, b)
        test = mcnemar_test(table["only_a"], table["only_b"])
        return {"test": "mcnemar", "p_value": test["p_value"], "significant": test["significant"],
                "delta": (table["only_a"] - table["only_b"]) / len(a)}
    deltas = bootstrap_paired(a, b, resamples=resamples, seed=seed)
    lower, upper = percentile_interval(deltas, DEFAULT_CONFIDENCE)
    return {"test": "bootstrap", "p_value": bootstrap_p_value(deltas), "significant": lower > 0 or upper < 0,
            "delta": float(a.mean() - b.mean())}


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm step-down adjusted p-values (family-wise error), in the input order."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * p[order])
    adjusted = np.empty(m)
    adjusted[order] = np.maximum.accumulate(scaled)
    return adjusted.tolist()


def benjamini_hochberg(p_values: Sequence[float]) -> list[float]:
    """Benjamini-Hochberg adjusted p-values (false discovery rate), in the input order."""
    p = np.asarray(p_values, dtype=np.float64)
    m = len(p)
    if m == 0:
        return []
    order = np.argsort(p, kind="stable")
    scaled = np.minimum(1.0, p[order] * m / np.arange(1, m + 1))
    adjusted = np.empty(m)
    adjusted[order] = np.minimum.accumulate(scaled[::-1])[::-1]
    return adjusted.tolist()
