"""Naming models (one rule: exact name, RUN/MODEL, MODEL@RUN, --run preferred), names that
are refused (control characters, line separators, bidi controls), globs that must match in
polynomial time, and numbers beyond float or 64-bit range."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lightml import LightMLHandle, compare_models, diff_models
from lightml.errors import AmbiguousNameError, InvalidInputError, NotFoundError
from lightml.read.globs import glob_matches
from lightml.read.resolve import find_model, model_spellings
from lightml.write.validation import check_name, scores_disagreement
from test_cli import assert_user_error, lightml

SFT = "llama-1b-sft"
HUB = "meta-llama/Llama-3.2-1B"


@pytest.fixture
def twice(tmp_path: Path) -> Path:
    """``llama-1b-sft`` re-evaluated: in runs eval-1 and eval-2; base and dpo only in eval-1.
    A hub id as a model name, and a run named like its prefix holding a model named like its rest."""
    db = tmp_path / "twice.db"
    with LightMLHandle(db, "eval-1") as h:
        h.register_model("base", "org/base")
        h.register_model(SFT, "org/sft", parent_name="base")
        h.register_model("dpo", "org/dpo", parent_name=SFT)
        for model, acc in (("base", 0.3), (SFT, 0.4), ("dpo", 0.45)):
            h.log_model_metric(model, "eval", "acc", acc, scores=[1] * int(acc * 100) + [0] * (100 - int(acc * 100)))
    with LightMLHandle(db, "eval-2") as h:
        h.register_model(SFT, "org/sft")
        h.log_model_metric(SFT, "eval", "acc", 0.42, scores=[1] * 42 + [0] * 58)
    with LightMLHandle(db, "hub") as h:
        h.register_model(HUB, HUB)
        h.log_model_metric(HUB, "eval", "acc", 0.5)
    with LightMLHandle(db, "meta-llama") as h:
        h.register_model("Llama-3.2-1B", "org/other")
        h.log_model_metric("Llama-3.2-1B", "eval", "acc", 0.6)
    return db


def _find(db: Path, spelling: str, run: str | None = None):
    conn = sqlite3.connect(db)
    try:
        return find_model(conn, spelling, run)
    finally:
        conn.close()


# -- the rule ---------------------------------------------------------------------------------

def test_run_qualified_spellings_name_one_model(twice: Path) -> None:
    assert _find(twice, f"eval-2/{SFT}")[1:] == (SFT, "eval-2")
    assert _find(twice, f"{SFT}@eval-1")[1:] == (SFT, "eval-1")
    # --run is a preference: it picks its run's model, and a name only elsewhere is still found
    assert _find(twice, SFT, "eval-2")[1:] == (SFT, "eval-2")
    assert _find(twice, "base", "eval-2")[1:] == ("base", "eval-1")
    # a spelled run wins over --run
    assert _find(twice, f"eval-1/{SFT}", "eval-2")[1:] == (SFT, "eval-1")


def test_an_exact_name_always_wins(twice: Path) -> None:
    # "meta-llama/Llama-3.2-1B" is a model's name; the run meta-llama's model needs MODEL@RUN
    assert _find(twice, HUB)[1:] == (HUB, "hub")
    assert _find(twice, "Llama-3.2-1B@meta-llama")[1:] == ("Llama-3.2-1B", "meta-llama")
    assert _find(twice, f"hub/{HUB}")[1:] == (HUB, "hub")  # split at the first "/": run "hub"


def test_an_ambiguous_name_lists_the_spellings_that_work(twice: Path) -> None:
    with pytest.raises(AmbiguousNameError, match=f"'eval-1/{SFT}', 'eval-2/{SFT}'"):
        _find(twice, SFT)
    with pytest.raises(NotFoundError, match="RUN/MODEL or MODEL@RUN"):
        _find(twice, f"eval-3/{SFT}")
    with pytest.raises(NotFoundError, match="run 'eval-3' not found"):
        _find(twice, SFT, "eval-3")


def test_the_suggested_spelling_avoids_one_an_exact_name_takes(tmp_path: Path) -> None:
    db = tmp_path / "taken.db"
    with LightMLHandle(db, "r") as h:
        h.register_model("m", "org/m")
        h.register_model("r/m", "org/rm")  # takes the spelling "r/m" by its exact name
    with LightMLHandle(db, "s") as h:
        h.register_model("m", "org/m2")
    with pytest.raises(AmbiguousNameError, match="'m@r', 's/m'"):
        _find(db, "m")


def test_pickers_offer_spellings_that_name_one_model(twice: Path) -> None:
    conn = sqlite3.connect(twice)
    try:
        offered = model_spellings(conn)
        assert f"eval-1/{SFT}" in offered and f"eval-2/{SFT}" in offered and "base" in offered
        assert [find_model(conn, s).id for s in offered] == sorted(
            {find_model(conn, s).id for s in offered}, key=[find_model(conn, s).id for s in offered].index)
    finally:
        conn.close()


def test_python_api_takes_the_same_spellings(twice: Path) -> None:
    result = compare_models(twice, f"eval-1/{SFT}", f"{SFT}@eval-2")
    assert (result.run_a, result.run_b) == ("eval-1", "eval-2") and result.deltas[0].delta == 0.02
    data = diff_models(twice, ["base", SFT, "dpo"], run_name="eval-2")
    assert data["runs"] == {"base": "eval-1", SFT: "eval-2", "dpo": "eval-1"}
    assert data["rows"][0]["values"] == {"base": 0.3, SFT: 0.42, "dpo": 0.45}
    with pytest.raises(InvalidInputError, match="listed more than once"):
        diff_models(twice, [f"eval-1/{SFT}", f"{SFT}@eval-1"])
    with LightMLHandle(twice) as h:
        stats = h.compare_stats(f"eval-1/{SFT}", f"eval-2/{SFT}", "eval", "acc")
    assert (stats["run_a"], stats["run_b"], stats["mean_b"]) == ("eval-1", "eval-2", 0.42)


def test_diff_of_a_re_evaluated_model_from_the_cli(twice: Path) -> None:
    # the case: a --run that holds only one of the models
    result = lightml("diff", "--db", twice, "--models", "base", SFT, "dpo", "--run", "eval-2", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["runs"][SFT] == "eval-2"
    both = lightml("diff", "--db", twice, "--models", f"eval-1/{SFT}", f"eval-2/{SFT}", "--no-color")
    assert both.returncode == 0, both.stderr and f"eval-1/{SFT}" in both.stdout
    ambiguous = lightml("diff", "--db", twice, "--models", "base", SFT)
    assert_user_error(ambiguous)
    assert f"'eval-1/{SFT}', 'eval-2/{SFT}'" in ambiguous.stderr


@pytest.mark.parametrize("args", [
    ["compare", "--model-a", "base", "--model-b", f"eval-2/{SFT}", "--json"],
    ["stats", "--model-a", f"eval-1/{SFT}", "--model-b", f"{SFT}@eval-2", "--family", "eval", "--metric", "acc",
     "--json"],
    ["info", "--model", f"eval-2/{SFT}", "--json"],
    ["metric-get", "--model", f"{SFT}@eval-2", "--family", "eval", "--metric", "acc"],
    ["history", "--model", f"eval-2/{SFT}", "--family", "eval", "--metric", "acc", "--json"],
    ["history", "--model", f"eval-2/{SFT}", "--json"],
], ids=["compare", "stats", "info", "metric-get", "metric-history", "model-history"])
def test_every_read_command_takes_run_qualified_names(twice: Path, args: list[str]) -> None:
    result = lightml(args[0], "--db", twice, *args[1:])
    assert result.returncode == 0, result.stderr
    if args[0] == "metric-get":
        assert result.stdout == "0.42\n"
    elif args[0] == "info":
        assert json.loads(result.stdout)["run"] == "eval-2"
    elif args[0] == "history" and "--family" in args:
        assert [e["value"] for e in json.loads(result.stdout)] == [0.42]


# -- names that are refused -------------------------------------------------------------------

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


def test_a_c1_name_from_the_cli_is_one_line(tmp_path: Path) -> None:
    with LightMLHandle(tmp_path / "c.db", "r"):
        pass
    result = lightml("model-register", "--db", tmp_path / "c.db", "--run", "r", "--name", "x\x9b31m", "--path", "o/x")
    assert_user_error(result)
    assert "U+009B" in result.stderr


# -- globs ------------------------------------------------------------------------------------

HOSTILE = [("*a" * 40 + "b", "a" * 5000), ("*?" * 60 + "b", "a" * 3000), ("a*" * 50 + "b", "a" * 4000),
           ("*" + "a*" * 200 + "c", "ab" * 2000), ("?*" * 100, "x" * 99)]


def test_hostile_globs_match_in_polynomial_time() -> None:
    # in a subprocess with a wall-clock bound, so that a regression fails instead of hanging
    code = ("from lightml.read.globs import glob_matches\n"
            f"cases = {HOSTILE!r}\n"
            "print([glob_matches(p, t) for p, t in cases])\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=20)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[False, False, False, False, False]"


def test_exists_with_a_hostile_glob_answers(twice: Path) -> None:
    # LIKE ignores case, so "...B" passes the SQL pre-filter and reaches the case-sensitive check
    pattern = "*a" * 30 + "*b"
    with LightMLHandle(twice, "eval-1") as h:
        h.register_model("a" * 200 + "B", "org/a")
    result = subprocess.run([sys.executable, "-m", "lightml", "exists", "--db", str(twice), "--model", pattern],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1 and "no matches" in result.stdout


def _reference(pattern: str, text: str) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, flags=re.DOTALL) is not None


@settings(max_examples=400, deadline=None)
@given(st.text(alphabet="ab*?.\n", max_size=8), st.text(alphabet="ab.\n", max_size=10))
def test_glob_matches_like_the_plain_definition(pattern: str, text: str) -> None:
    assert glob_matches(pattern, text) == _reference(pattern, text)


def test_glob_is_case_sensitive_and_literal_elsewhere() -> None:
    assert glob_matches("Llama-*", "Llama-3") and not glob_matches("llama-*", "Llama-3")
    assert glob_matches("a[1]%_*", "a[1]%_x") and not glob_matches("a[1]", "a1")
    assert glob_matches("*", "") and glob_matches("?", "é") and not glob_matches("?", "")


# -- numbers beyond range ---------------------------------------------------------------------

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


@pytest.mark.parametrize("args, message", [
    (["stats", "--model-a", "base", "--model-b", "dpo", "--family", "eval", "--metric", "acc", "--seed", str(10**400)],
     "seed must be an integer from 0"),
    (["stats", "--model-a", "base", "--model-b", "dpo", "--all", "--resamples", str(10**30)],
     "resamples must be an integer from 100"),
    (["top", "--family", "eval", "--metric", "acc", "--n", str(2**64)], "--n must be between 1 and"),
    (["history", "--model", "base", "--family", "eval", "--metric", "acc", "--step", str(2**64)],
     "step must be between 0 and"),
], ids=["seed", "resamples", "n", "step"])
def test_cli_integers_beyond_range_are_one_line_errors(twice: Path, args: list[str], message: str) -> None:
    result = lightml(args[0], "--db", twice, *args[1:])
    assert_user_error(result)
    assert message in result.stderr


def _as_an_older_tool(db: Path, sql: str, params: tuple) -> None:
    """Write a read table directly, as a tool without the log would have (before the guard on
    the read tables existed: its marker row lets this one statement through)."""
    conn = sqlite3.connect(db)
    try:
        marker = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'lightml_writing'").fetchone()
        if marker:
            conn.execute("INSERT INTO lightml_writing VALUES (1)")
        conn.execute(sql, params)
        if marker:
            conn.execute("DELETE FROM lightml_writing")
        conn.commit()
    finally:
        conn.close()


@pytest.mark.parametrize("stored", ["[" + "9" * 400 + ",1]", "[1e999,0]", "[1e308,1e308]"],
                         ids=["huge-int", "overflowing-float", "sum-overflows"])
def test_stored_scores_beyond_range_are_a_clear_error(twice: Path, stored: str) -> None:
    _as_an_older_tool(twice, "UPDATE detailed_scores SET scores = ? WHERE metric_id = (SELECT m.id FROM metrics m "
                             "JOIN model o ON o.id = m.model_id JOIN run r ON r.id = o.run_id "
                             "WHERE o.model_name = 'dpo' AND r.run_name = 'eval-1')", (stored,))
    stats = lightml("stats", "--db", twice, "--model-a", "base", "--model-b", "dpo", "--family", "eval",
                    "--metric", "acc")
    assert_user_error(stats)
    assert "eval/acc" in stats.stderr or "too large" in stats.stderr
    compare = lightml("compare", "--db", twice, "--model-a", "base", "--model-b", "dpo", "--no-color")
    assert compare.returncode == 0, compare.stderr
    assert "not tested:" in compare.stdout


# -- a value and its scores -------------------------------------------------------------------

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


def test_stats_says_it_used_the_scores_when_the_value_differs(tmp_path: Path) -> None:
    db = tmp_path / "q.db"
    with LightMLHandle(db, "r") as h:
        h.register_model("a", "org/a")
        h.register_model("b", "org/b")
        h.log_model_metric("a", "eval", "acc", 0.3113, scores=[1, 0, 1, 0, 0] * 20)  # mean 0.4
        h.log_model_metric("b", "eval", "acc", 0.5, scores=[1, 0] * 50)
    args = ["stats", "--db", db, "--model-a", "a", "--model-b", "b", "--family", "eval", "--metric", "acc"]
    data = json.loads(lightml(*args, "--json").stdout)
    assert data["uses"] == "scores" and (data["stored_value_a"], data["stored_value_b"]) == (0.3113, 0.5)
    assert data["value_notes"] == ["the stored value of a is 0.3113 but the mean of its scores is 0.4000: "
                                   "this test uses the scores"]
    assert "Note: the stored value of a is 0.3113 but the mean of its scores is 0.4000" in lightml(*args).stdout
    every = json.loads(lightml("stats", "--db", db, "--model-a", "a", "--model-b", "b", "--all", "--json").stdout)
    assert len(every[0]["value_notes"]) == 1
