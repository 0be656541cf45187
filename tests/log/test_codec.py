"""The fast JSON decoder (orjson) and its slow twin (the standard library) read the JSON
LightML writes alike — its integers within 64 bits, no NaN — and for text orjson refuses,
json.loads gives its answer or its error."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given, settings, strategies as st

from lightml.log import codec

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**63), max_value=2**63 - 1),
                    st.floats(allow_nan=False, allow_infinity=False), st.text())
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(), inner, max_size=5),
                      max_leaves=30)


def same(a, b) -> bool:
    """Equal, and of the same types all the way down (1 and 1.0, or 0.0 and -0.0, are not the same)."""
    if isinstance(a, float) and isinstance(b, float):
        return a == b and math.copysign(1, a) == math.copysign(1, b)
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


@settings(max_examples=300, deadline=None)
@given(values, st.sampled_from([(",", ":"), (", ", ": ")]), st.booleans())
def test_the_fast_decoder_reads_what_lightml_writes_as_the_standard_library_reads_it(value, separators,
                                                                                      ascii_only) -> None:
    text = json.dumps(value, separators=separators, ensure_ascii=ascii_only)
    assert same(codec.loads(text), json.loads(text))
    assert same(codec.loads(text.encode()), json.loads(text))


@pytest.mark.parametrize("text", [
    "[NaN, Infinity, -Infinity]",  # (lm-eval's samples may hold them: json.dumps writes them)
    '"\\ud800"',  # a lone surrogate
    "[1e400, -1e400]",
    '{"a": 1, "a": 2}',
    "[0.1, 1e-05, 2.5e-07, 5e-324, 1.7976931348623157e308, -0.0]",
])
def test_text_the_fast_decoder_refuses_is_read_by_the_standard_library(text: str) -> None:
    # (and floats of every spelling the standard library writes read back the same)
    assert repr(codec.loads(text)) == repr(json.loads(text))


@pytest.mark.parametrize("text", ["{bad", "[1,]", "", "[1] [2]", b"\xff\xfe"])
def test_bad_text_gets_the_standard_librarys_error(text) -> None:
    with pytest.raises(ValueError) as standard:
        json.loads(text)
    with pytest.raises(ValueError) as fast:
        codec.loads(text)
    assert type(fast.value) is type(standard.value) and str(fast.value) == str(standard.value)


def test_nesting_too_deep_is_a_recursion_error_as_before() -> None:
    with pytest.raises(RecursionError):
        codec.loads("[" * 100_000 + "]" * 100_000)
