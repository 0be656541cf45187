"""Student's t distribution, in closed form (no scipy at run time): what the interval of a
mean over a few repeats and Welch's test of two such means need.

The two-sided tail of t with ``df`` degrees of freedom is the regularized incomplete beta
function ``I_x(df/2, 1/2)`` at ``x = df / (df + t^2)`` (Abramowitz & Stegun 26.7.1 with
26.5.27); ``I_x`` is evaluated by its continued fraction (A&S 26.5.8) with the modified
Lentz method. The tests check every function here against scipy.stats to 1e-9.
"""

from __future__ import annotations

import math

_TINY = 1e-300
_EPSILON = 1e-15


def _beta_fraction(a: float, b: float, x: float) -> float:
    """The continued fraction of I_x(a, b) (A&S 26.5.8), by modified Lentz; converges fast for
    x < (a + 1) / (a + b + 2), where the caller uses it."""
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > _TINY else _TINY)
    fraction = d
    for m in range(1, 10_000):
        # the even step, then the odd step, of the fraction's coefficients
        for numerator in (m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
                          -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > _TINY else _TINY)
            c = 1.0 + numerator / c
            c = c if abs(c) > _TINY else _TINY
            fraction *= c * d
        if abs(c * d - 1.0) < _EPSILON:
            return fraction
    raise ArithmeticError(f"the incomplete beta fraction did not converge (a={a}, b={b}, x={x})")


def regularized_beta(a: float, b: float, x: float, complement: float | None = None) -> float:
    """I_x(a, b), the regularized incomplete beta function, for a, b > 0 and 0 <= x <= 1.
    ``complement``: 1 - x, when the caller knows it more exactly than the subtraction would
    give it (x close to 1)."""
    y = 1.0 - x if complement is None else complement
    if x <= 0.0:
        return 0.0
    if y <= 0.0:
        return 1.0
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log(y))
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(log_front) * _beta_fraction(a, b, x) / a
    return 1.0 - math.exp(log_front) * _beta_fraction(b, a, y) / b  # (the symmetry I_x(a,b) = 1 - I_1-x(b,a))


def two_sided_p(t: float, df: float) -> float:
    """P(|T| >= |t|) for T with ``df`` degrees of freedom."""
    if math.isnan(t):
        return 1.0
    if math.isinf(t):
        return 0.0
    spread = df + t * t
    return regularized_beta(df / 2.0, 0.5, df / spread, complement=t * t / spread)


def quantile(p: float, df: float) -> float:
    """The t value below which a fraction ``p`` (0.5 <= p < 1) of the distribution lies: the
    half-width factor of a two-sided interval of confidence ``2p - 1``. Found by bisection on
    the tail, which falls monotonically in |t| (60 halvings after doubling: to machine precision)."""
    if not 0.5 <= p < 1.0:
        raise ValueError(f"quantile wants 0.5 <= p < 1, not {p}")
    if p == 0.5:
        return 0.0
    tail = 2.0 * (1.0 - p)
    low, high = 0.0, 1.0
    while two_sided_p(high, df) > tail:
        low, high = high, high * 2.0
    for _ in range(200):
        middle = (low + high) / 2.0
        if middle in (low, high):
            break
        if two_sided_p(middle, df) > tail:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0


def sample_sd(values: list[float], mean: float) -> float:
    """The sample standard deviation, scaled so that values near the float range (1e200) do
    not overflow on the way (inf only when the answer itself is beyond the range)."""
    scale = max(abs(v - mean) for v in values)
    if scale == 0 or not math.isfinite(scale):
        return 0.0 if scale == 0 else math.inf
    return scale * math.sqrt(math.fsum(((v - mean) / scale) ** 2 for v in values) / (len(values) - 1))


def mean_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float, float] | None:
    """(mean, half-width, standard error) of the ``confidence`` t interval of the mean of
    ``values`` (``mean +- t(n-1) s / sqrt(n)``); None with fewer than 2 values, or when the
    spread is beyond the float range."""
    n = len(values)
    if n < 2:
        return None
    mean = math.fsum(values) / n
    sd = sample_sd(values, mean)
    if not math.isfinite(sd) or not math.isfinite(mean):
        return None
    stderr = sd / math.sqrt(n)
    return mean, quantile((1.0 + confidence) / 2.0, n - 1) * stderr, stderr


def welch_test(a: list[float], b: list[float]) -> dict[str, float] | None:
    """Welch's unequal-variance t test of mean(b) - mean(a): {"delta", "se", "t", "df",
    "p_value"}; None when a side has fewer than 2 values (untestable). Both sides constant:
    p 1 when the means agree, 0 when they differ (no spread: the difference is all there is)."""
    if len(a) < 2 or len(b) < 2:
        return None
    mean_a, mean_b = math.fsum(a) / len(a), math.fsum(b) / len(b)
    sd_a, sd_b = sample_sd(a, mean_a), sample_sd(b, mean_b)
    delta = mean_b - mean_a
    scale = max(sd_a, sd_b)  # (the variances scaled by it: values near the float range stay finite)
    if scale == 0.0:
        return {"delta": delta, "se": 0.0, "t": 0.0 if delta == 0 else math.copysign(math.inf, delta),
                "df": float(len(a) + len(b) - 2), "p_value": 1.0 if delta == 0 else 0.0}
    var_a, var_b = (sd_a / scale) ** 2 / len(a), (sd_b / scale) ** 2 / len(b)
    # Welch-Satterthwaite degrees of freedom (the scale cancels out of it)
    df = (var_a + var_b) ** 2 / (var_a ** 2 / (len(a) - 1) + var_b ** 2 / (len(b) - 1))
    se = scale * math.sqrt(var_a + var_b)
    t = delta / se
    return {"delta": delta, "se": se, "t": t, "df": df, "p_value": two_sided_p(t, df)}
