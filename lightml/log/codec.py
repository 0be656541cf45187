"""Decoding the JSON LightML wrote itself — the log's payloads (replay and verify decode every
one), stored per-sample score vectors and document keys — with orjson, the standard library
being its slow twin.

What orjson reads of such text is what ``json.loads`` reads: the same dicts, lists, strings,
ints and correctly rounded floats (a test pins the two together). That holds because LightML
wrote it: its integers are within SQLite's 64 bits (validation refuses others) and it holds no
NaN. orjson would read a larger integer as a float, and refuses NaN: files written by others
(lm-eval's results and samples) are read with ``json.loads``, and so is any text orjson refuses,
which also gives the standard library's error for text that is not JSON.

Only decoding: the log is written by the standard library, because its bytes must stay those
it wrote (orjson spells some floats otherwise, ``0.00001`` where ``json.dumps`` writes
``1e-05``), or replay would no longer be byte-identical. orjson is imported on first use, so
``import lightml`` does not pay for it.
"""

from __future__ import annotations

import json
from typing import Any, Callable

_fast: Callable[[Any], Any] | None = None


def _orjson_loads() -> Callable[[Any], Any]:
    global _fast
    if _fast is None:
        try:
            import orjson
        except ImportError:  # (an install without it: the standard library alone)
            _fast = json.loads
        else:
            _fast = orjson.loads
    return _fast


def loads(text: str | bytes) -> Any:
    """``json.loads(text)`` of JSON LightML wrote, faster; the same error for bad text."""
    try:
        return (_fast or _orjson_loads())(text)
    except (ValueError, TypeError):  # orjson.JSONDecodeError is a ValueError
        return json.loads(text)
