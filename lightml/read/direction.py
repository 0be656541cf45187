"""Which way is better for a metric: most scores are higher-is-better; losses are not.
And which metrics are not scores at all: standard errors and spreads (``is_uncertainty``).

Used to colour best/worst values and to call a change an improvement or a regression.
The rule is by name, so it needs no configuration and matches lm-eval's metric names.
"""

from __future__ import annotations

import re

# Anywhere in the name: word_perplexity, train_loss, acc_stderr, bits_per_byte ...
_LOWER_IS_BETTER_PARTS = ("loss", "perplexity", "stderr", "bits_per_byte", "brier")
# As a whole word (split on anything not a letter or digit): "ppl", "wer", "ter", "mse" ...
# (ece, mce: expected / maximum calibration error)
_LOWER_IS_BETTER_WORDS = frozenset({"ppl", "bpb", "wer", "cer", "ter", "error", "err", "mae", "mse", "rmse", "nll",
                                    "ece", "mce"})
# Uncertainty of a score, not a score: "stderr" anywhere (lm-eval's acc_stderr, "acc_stderr,none"),
# or one of these as a whole word (acc_se, f1_std, em_stddev, ...).
_UNCERTAINTY_PART = "stderr"
_UNCERTAINTY_WORDS = frozenset({"se", "sem", "std", "stdev", "stddev", "variance"})


def _words(name: str) -> list[str]:
    return re.split(r"[^a-z0-9]+", name.lower())


def lower_is_better(metric_name: str) -> bool:
    name = metric_name.lower()
    if any(part in name for part in _LOWER_IS_BETTER_PARTS):
        return True
    return any(word in _LOWER_IS_BETTER_WORDS for word in _words(name))


def is_uncertainty(metric_name: str) -> bool:
    """Is this metric the uncertainty of a score (a standard error, a standard deviation)?

    Such a metric is shown, but never counted as an improvement or a regression, never
    coloured best or worst, never averaged and never ranked: a smaller stderr is not a
    better model, only a bigger sample.
    """
    if _UNCERTAINTY_PART in metric_name.lower():
        return True
    return any(word in _UNCERTAINTY_WORDS for word in _words(metric_name))
