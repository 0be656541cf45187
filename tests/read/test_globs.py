"""The globs of exists and search: the plain definition ('*' any text, '?' one character,
everything else literal, case-sensitive), matched in polynomial time."""

from __future__ import annotations

import re
import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from lightml.read.globs import glob_matches


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
