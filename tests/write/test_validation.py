"""What a write refuses before anything is written: names with control, separator or bidi
characters, numbers beyond float or 64-bit range; and the rule for a value that disagrees
with its per-sample scores."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pytest

from lightml import LightMLHandle
from lightml.errors import InvalidInputError
from lightml.write.validation import are_doc_keys, check_doc_keys, check_name, scores_disagreement


REFUSED = ["\x85", "\x9b", "\x80", "\x9f", "\u2028", "\u2029", "\u202a", "\u202b", "\u202c", "\u202d", "\u202e",
           "\u2066", "\u2067", "\u2068", "\u2069", "\x00", "\x1b", "\x7f"]


@pytest.mark.parametrize("char", REFUSED, ids=[f"U+{ord(c):04X}" for c in REFUSED])
def test_control_separator_and_bidi_characters_are_refused_before_anything_is_written(
        tmp_path: Path, char: str) -> None:
    db = tmp_path / "names.db"
    with LightMLHandle(db, "r") as h:
        h.register_model("m", "org/m")
        conn = sqlite3.connect(db)
        (before,) = conn.execute("SELECT count(*) FROM events").fetchone()
        for call in (lambda: h.register_model(f"evil{char}name", "org/x"),
                     lambda: h.log_model_metric("m", f"fam{char}", "acc", 0.5),
                     lambda: h.log_model_metric("m", "fam", f"acc{char}", 0.5)):
            with pytest.raises(InvalidInputError, match=f"U\\+{ord(char):04X}"):
                call()
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (before,)
        conn.close()


def test_joiners_marks_and_other_scripts_stay_allowed() -> None:
    for name in ("日本語-7b", "نموذج\u200f", "👩\u200d🔬-model", "Llama-3.2-1B", "a b"):
        assert check_name(name, "model_name") == name


# -- numbers beyond range --------------------------------------------------------------------


@pytest.mark.parametrize("call, match", [
    (lambda h: h.log_model_metric("m", "f", "x", 10**400), "too large for a float"),
    (lambda h: h.log_model_metric("m", "f", "x", np.longdouble("1e4000")), "float range"),
    (lambda h: h.log_model_metric("m", "f", "x", 0.5, scores=[1, 10**400]), "scores\\[1\\]"),
    (lambda h: h.log_model_metric("m", "f", "x", 0.5, scores=np.array([1e4000], dtype=np.longdouble)), "scores"),
    (lambda h: h.register_checkpoint("m", 2**63, "/c"), "step must be between 0 and"),
    (lambda h: h.register_checkpoint("m", 1e300, "/c"), "step must be between 0 and"),
    (lambda h: h.log_checkpoint_metric(2**64, "f", "x", 0.5), "checkpoint_id must be between 1 and"),
    (lambda h: h.register_model("n", "org/n", parent_id=2**64), "parent_id must be between 1 and"),
    (lambda h: h.find_checkpoint("m", 10**30), "step must be between"),
    (lambda h: h.metric_history("m", "f", "x", step=2**63), "step must be between"),
], ids=["value-int", "value-longdouble", "score-int", "score-longdouble", "step", "step-float", "checkpoint-id",
        "parent-id", "find-step", "history-step"])
def test_numbers_beyond_range_are_invalid_input_and_write_nothing(tmp_path: Path, call, match: str) -> None:
    db = tmp_path / "big.db"
    with LightMLHandle(db, "r") as h:
        h.register_model("m", "org/m")
        conn = sqlite3.connect(db)
        (before,) = conn.execute("SELECT count(*) FROM events").fetchone()
        with pytest.raises(InvalidInputError, match=match):
            call(h)
        assert conn.execute("SELECT count(*) FROM events").fetchone() == (before,)
        conn.close()


def test_large_integer_scores_are_stored_as_the_floats_they_are_read_as(tmp_path: Path) -> None:
    with LightMLHandle(tmp_path / "f.db", "r") as h:
        h.register_model("m", "org/m")
        h.log_model_metric("m", "f", "x", 1.0, scores=[2**60, 1])
        assert h.get_detailed_scores("m", "f", "x") == [float(2**60), 1]


# -- a value and its scores ------------------------------------------------------------------


def test_scores_disagreement_rule() -> None:
    scores = [1, 0, 1, 0, 0]  # mean 0.4
    assert scores_disagreement(0.4, scores) is None
    assert scores_disagreement(0.40004, scores) is not None  # given to 5 decimals: 4e-5 off is beyond its rounding
    assert scores_disagreement(0.41, scores) is not None
    assert "0.4000" in scores_disagreement(0.3113, scores)
    assert "percent" in scores_disagreement(40.0, scores)
    assert scores_disagreement(0.0, scores) is not None    # "0" counts as 2 decimals, not as 0.4 rounded
    assert scores_disagreement(0.3333, [1, 0, 0]) is None and scores_disagreement(0.33, [1, 0, 0]) is None
    assert scores_disagreement(0.334, [1, 0, 0]) is not None
    assert scores_disagreement(0.9, [0.5, 0.25]) is None    # not 0/1 scores: their mean need not be the value


@pytest.mark.parametrize("keys", [
    ["q1", "q2", 3], [0, 1, 2], [], ["é", "ü"],
    ["q1", "q1"], [1, 1], [True, 2], [1.0, 2], [None], [["nested"]], [{"a": 1}], ["1", 1],
])
def test_the_read_side_check_of_stored_keys_agrees_with_the_rule_they_are_logged_by(keys) -> None:
    # are_doc_keys (the paired tests' check of keys read back from JSON) is the fast twin of
    # check_doc_keys: it accepts exactly what check_doc_keys would store again unchanged.
    try:
        logged = json.loads(check_doc_keys(keys, len(keys))) == keys
    except InvalidInputError:
        logged = False
    assert are_doc_keys(keys) is logged
