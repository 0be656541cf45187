"""Student's t distribution and Welch's test, in closed form (``lightml.read.student_t``),
checked against an independent reference: scipy.stats (installed by the dev extra for this
only), to 1e-9 relative. The interval over repeats and the tests over repeats are built on
these functions."""

from __future__ import annotations

import math

import pytest
from scipy import stats as reference

from lightml.read import student_t

DEGREES = [1, 1.5, 2, 3, 4.7, 9, 30, 250, 10_000]


def close(ours: float, theirs: float, tolerance: float = 1e-9) -> bool:
    return math.isclose(ours, theirs, rel_tol=tolerance, abs_tol=1e-300)


@pytest.mark.parametrize("df", DEGREES)
def test_the_two_sided_tail_matches_scipy(df: float) -> None:
    for t in (0.0, 1e-6, 0.3, 1.0, 1.96, 2.5, 4.0, 12.0, 60.0, -2.5):
        assert close(student_t.two_sided_p(t, df), 2 * reference.t.sf(abs(t), df)), (t, df)


@pytest.mark.parametrize("df", DEGREES)
def test_the_quantile_matches_scipy(df: float) -> None:
    for p in (0.5, 0.6, 0.8, 0.9, 0.975, 0.995, 0.9999):
        assert close(student_t.quantile(p, df), reference.t.ppf(p, df)), (p, df)


def test_the_regularized_beta_matches_scipy_on_both_sides_of_its_switch() -> None:
    from scipy.special import betainc

    for a, b in ((0.5, 0.5), (2.0, 0.5), (15.0, 0.5), (3.0, 7.0), (200.0, 0.5)):
        for x in (0.0, 1e-9, 0.01, 0.3, 0.5, 0.9, 0.999999, 1.0):
            assert close(student_t.regularized_beta(a, b, x), float(betainc(a, b, x))), (a, b, x)


def test_the_interval_of_a_mean_matches_scipy() -> None:
    values = [0.634, 0.612, 0.641, 0.655, 0.629]
    mean, half, stderr = student_t.mean_interval(values)
    low, high = reference.t.interval(0.95, len(values) - 1, loc=sum(values) / 5, scale=reference.sem(values))
    assert close(mean - half, low) and close(mean + half, high)
    assert close(stderr, reference.sem(values))
    assert student_t.mean_interval([0.5]) is None  # one value: no spread, no interval


def test_welchs_test_matches_scipy_including_unequal_sizes_and_spreads() -> None:
    a = [0.61, 0.63, 0.64, 0.62, 0.66]
    b = [0.65, 0.69, 0.66, 0.70, 0.71, 0.64, 0.72]
    ours = student_t.welch_test(a, b)
    theirs = reference.ttest_ind(b, a, equal_var=False)
    assert close(ours["t"], theirs.statistic) and close(ours["p_value"], theirs.pvalue)
    assert close(ours["df"], theirs.df)
    assert close(ours["delta"], sum(b) / 7 - sum(a) / 5)


def test_welch_is_untestable_below_two_values_and_exact_without_spread() -> None:
    assert student_t.welch_test([0.5], [0.6, 0.7]) is None
    assert student_t.welch_test([0.5, 0.5], [0.5, 0.5])["p_value"] == 1.0
    assert student_t.welch_test([0.5, 0.5], [0.6, 0.6])["p_value"] == 0.0


def test_a_quantile_outside_its_range_is_refused() -> None:
    with pytest.raises(ValueError, match="0.5 <= p < 1"):
        student_t.quantile(1.0, 3)
