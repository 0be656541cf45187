"""The statistics: reference p-values, the bootstrap against a brute-force one, adjustments."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from lightml.read import stats
from lightml.errors import InvalidInputError


@pytest.mark.parametrize("only_a, only_b, expected", [
    (312, 487, 6.41916e-10),
    (5, 15, 0.0413895),
    (1, 0, 1.0),
    (0, 0, 1.0),
    (10, 10, 1.0),
])
def test_mcnemar_reference_values(only_a: int, only_b: int, expected: float) -> None:
    assert stats.mcnemar_p_value(only_a, only_b) == pytest.approx(expected, rel=1e-5)
    assert stats.mcnemar_p_value(only_b, only_a) == stats.mcnemar_p_value(only_a, only_b)


def test_mcnemar_small_counts_are_exact_fractions() -> None:
    assert stats.mcnemar_p_value(5, 15) == 5425 / 131072


def test_mcnemar_log_space_agrees_with_exact_integers() -> None:
    # Above the integer limit the log-space path takes over: check it where integers are still cheap.
    for n, k in [(1_001, 450), (3_001, 1_400), (5_000, 2_380), (4_000, 10)]:
        term = total = 1
        for i in range(k):
            term = term * (n - i) // (i + 1)
            total += term
        exact = 2 * total / 2 ** n
        assert 2 * math.exp(stats._log_binomial_half_cdf(k, n)) == pytest.approx(exact, rel=1e-9)


def test_mcnemar_stays_exact_for_a_million_discordant_pairs() -> None:
    p = stats.mcnemar_p_value(499_000, 501_000)
    # Normal approximation with continuity correction: z = (2000 - 1) / sqrt(1e6).
    approx = math.erfc((2_000 - 1) / 1_000 / math.sqrt(2))
    assert p == pytest.approx(approx, abs=2e-4)
    assert stats.mcnemar_p_value(400_000, 600_000) == 0.0  # underflows to 0, no overflow error
    tiny = stats.mcnemar_p_value(1_000, 1_400)
    assert 0 < tiny < 1e-9


def test_mcnemar_winner_only_when_significant() -> None:
    assert stats.mcnemar_test(15, 5) == {"p_value": pytest.approx(0.0413895, rel=1e-5), "significant": True,
                                         "winner": "a"}
    assert stats.mcnemar_test(5, 6) == {"p_value": 1.0, "significant": False, "winner": None}


def test_holm_and_benjamini_hochberg_reference() -> None:
    p = [0.001, 0.008, 0.039, 0.041, 0.042, 0.060, 0.074, 0.205]
    assert stats.holm(p) == pytest.approx([0.008, 0.056] + [0.234] * 6)
    assert stats.benjamini_hochberg(p) == pytest.approx([0.008, 0.032, 0.0672, 0.0672, 0.0672, 0.08, 0.084571, 0.205],
                                                        abs=1e-6)
    shuffled = [p[i] for i in (7, 0, 3, 5, 1, 6, 2, 4)]
    assert stats.holm(shuffled) == pytest.approx([stats.holm(p)[i] for i in (7, 0, 3, 5, 1, 6, 2, 4)])
    assert stats.holm([]) == [] and stats.benjamini_hochberg([]) == []


def _pairs(only_a: int, only_b: int, both: int, neither: int) -> tuple[list[int], list[int]]:
    a = [1] * only_a + [0] * only_b + [1] * both + [0] * neither
    b = [0] * only_a + [1] * only_b + [1] * both + [0] * neither
    return a, b


def test_compare_scores_binary_dict() -> None:
    a, b = _pairs(312, 487, 7234, 1967)
    result = stats.compare_scores(a, b)
    assert result["contingency"] == {"both_correct": 7234, "only_a": 312, "only_b": 487, "both_wrong": 1967,
                                     "n_discordant": 799}
    assert result["mcnemar"]["winner"] == "b" and result["significant"] and result["winner"] == "b"
    assert result["p_value"] == pytest.approx(6.41916e-10, rel=1e-5)
    assert result["n"] == 10_000 and result["binary"] and result["test"] == "mcnemar"
    boot = result["bootstrap"]
    assert boot["delta"] == pytest.approx(result["mean_a"] - result["mean_b"])
    assert boot["ci_lower"] < boot["delta"] < boot["ci_upper"] < 0
    assert (boot["resamples"], boot["seed"], boot["confidence"]) == (10_000, 42, 0.95)
    diff = np.array(a, float) - np.array(b, float)
    assert result["se_delta"] == pytest.approx(diff.std(ddof=1) / math.sqrt(len(diff)))
    assert result["mde"] == pytest.approx(2.8016 * math.sqrt(799 / 10_000 / 10_000))
    # Seeded: the same data gives the same interval; another seed a (slightly) different one.
    assert stats.compare_scores(a, b)["bootstrap"] == boot
    assert stats.compare_scores(a, b, seed=7)["bootstrap"] != boot


def test_no_discordant_pairs_is_not_an_error() -> None:
    result = stats.compare_scores([1, 0, 1, 1], [1, 0, 1, 1])
    assert result["mcnemar"] == {"p_value": 1.0, "significant": False, "winner": None}
    assert result["bootstrap"]["ci_lower"] == result["bootstrap"]["ci_upper"] == 0.0
    assert result["mde"] == 0.0


def test_percentile_interval_can_exclude_zero_when_mcnemar_does_not() -> None:
    # The documented caveat: (0, 5) discordant pairs in n = 100.
    a, b = _pairs(0, 5, 60, 35)
    result = stats.compare_scores(a, b)
    assert result["p_value"] == pytest.approx(0.0625)
    assert not result["significant"] and result["winner"] is None
    assert result["bootstrap"]["ci_upper"] < 0


def test_binary_bootstrap_matches_a_brute_force_index_bootstrap() -> None:
    a, b = _pairs(9, 17, 20, 14)
    fast = stats.bootstrap_binary(stats.contingency_table(a, b), resamples=40_000, seed=1)
    va, vb = np.array(a, float), np.array(b, float)
    idx = np.random.default_rng(2).integers(0, len(a), size=(40_000, len(a)))
    brute = va[idx].mean(axis=1) - vb[idx].mean(axis=1)
    assert fast.mean() == pytest.approx(brute.mean(), abs=0.002)
    assert fast.std() == pytest.approx(brute.std(), rel=0.03)
    for q in (2.5, 25, 50, 75, 97.5):
        assert abs(np.percentile(fast, q) - np.percentile(brute, q)) <= 1 / len(a) + 1e-9


def test_float_scores_use_the_paired_bootstrap() -> None:
    rng = np.random.default_rng(0)
    base = rng.random(400)
    a, b = base + 0.05 + rng.normal(0, 0.02, 400), base
    result = stats.compare_scores(a, b, resamples=2_000)
    assert not result["binary"] and result["test"] == "bootstrap"
    assert result["contingency"] is None and result["mcnemar"] is None
    assert result["significant"] and result["winner"] == "a" and result["p_value"] < 0.01
    assert result["bootstrap"]["ci_lower"] < 0.05 < result["bootstrap"]["ci_upper"]
    same = stats.compare_scores(base, base + rng.normal(0, 1e-3, 400), resamples=2_000)
    assert same["bootstrap"]["ci_lower"] < 0 < same["bootstrap"]["ci_upper"]
    assert not same["significant"] and same["p_value"] > 0.05


def test_float_bootstrap_works_in_bounded_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    a, b = rng.random(500), rng.random(500)
    whole = stats.bootstrap_paired(a, b, resamples=300, seed=5)
    monkeypatch.setattr(stats, "_CHUNK_ELEMENTS", 500 * 7)  # 7 resamples per chunk
    chunked = stats.bootstrap_paired(a, b, resamples=300, seed=5)
    assert len(chunked) == 300
    assert np.percentile(chunked, 50) == pytest.approx(np.percentile(whole, 50), abs=0.02)


def test_paired_verdict_is_the_full_comparisons_verdict() -> None:
    a, b = _pairs(20, 41, 100, 39)
    full = stats.compare_scores(a, b)
    assert stats.paired_verdict(a, b) == {"test": "mcnemar", "p_value": full["p_value"],
                                          "significant": full["significant"], "delta": full["bootstrap"]["delta"]}
    rng = np.random.default_rng(4)
    fa, fb = rng.random(200), rng.random(200)
    full = stats.compare_scores(fa, fb)
    verdict = stats.paired_verdict(fa, fb)
    assert (verdict["p_value"], verdict["significant"]) == (full["p_value"], full["significant"])
    assert verdict["delta"] == pytest.approx(full["bootstrap"]["delta"])


@pytest.mark.parametrize("a, b, message", [
    ([1, 0, 1], [1, 0], "same length: 3 vs 2"),
    ([], [], "empty"),
    ([1, float("nan")], [1, 0], "finite"),
    ([[1, 0]], [[1, 0]], "flat"),
])
def test_bad_vectors(a, b, message) -> None:
    with pytest.raises(InvalidInputError, match=message):
        stats.compare_scores(a, b)


@pytest.mark.parametrize("options, message", [
    ({"resamples": 5}, "resamples"), ({"confidence": 1.5}, "confidence"), ({"confidence": "x"}, "confidence"),
    ({"seed": -1}, "seed must be an integer from 0"), ({"seed": "x"}, "seed"), ({"seed": 1.5}, "seed"),
])
def test_bad_options(options, message) -> None:
    with pytest.raises(InvalidInputError, match=message):  # a LightMLError (and a ValueError)
        stats.compare_scores([1, 0], [0, 1], **options)


def test_numpy_numbers_are_fine_options() -> None:
    plain = stats.compare_scores([1, 0, 1, 1], [0, 0, 1, 0], resamples=200, confidence=0.9, seed=3)
    numpy = stats.compare_scores([1, 0, 1, 1], [0, 0, 1, 0], resamples=np.int64(200), confidence=np.float32(0.9),
                                 seed=np.int64(3))
    assert numpy["bootstrap"]["ci_lower"] == plain["bootstrap"]["ci_lower"]


@pytest.mark.parametrize("text", [
    "[1,0,1]", "[1]", "[0]", "[1.0,0.0,1.0]", "[1, 0, 1]", "[0.5,1,0]", "[10,1,0]", "[1,0,2]", "[2]",
    "[1.0,0.5]", "[11]", "[0.0]", "[1.5]", "[1.0,1.0,2.0]", "[1,1.0]", "[-1,0]",
])
def test_stored_scores_decode_like_json(text: str) -> None:
    # the byte-level fast path for 0/1 lists must agree with json.loads on every input
    decoded = stats.vector_from_json(text)
    assert decoded.dtype == np.float64
    assert decoded.tolist() == [float(x) for x in json.loads(text)]
