"""Which way is better for a metric: most scores are higher-is-better; losses are not.

Used to colour best/worst values and to call a change an improvement or a regression.
The rule is by name, so it needs no configuration and matches lm-eval's metric names.
"""

from __future__ import annotations

import re

# Anywhere in the name: word_perplexity, train_loss, acc_stderr, bits_per_byte ...
_LOWER_IS_BETTER_PARTS = ("loss", "perplexity", "stderr", "bits_per_byte")
# As a whole word (split on anything not a letter or digit): "ppl", "wer", "ter", "mse" ...
_LOWER_IS_BETTER_WORDS = frozenset({"ppl", "bpb", "wer", "cer", "ter", "error", "err", "mae", "mse", "rmse", "nll"})


def lower_is_better(metric_name: str) -> bool:
    name = metric_name.lower()
    if any(part in name for part in _LOWER_IS_BETTER_PARTS):
        return True
    return any(word in _LOWER_IS_BETTER_WORDS for word in re.split(r"[^a-z0-9]+", name))
