"""Checks on user input, run before anything is written. Each raises InvalidInputError."""

from __future__ import annotations

import json
import math
import numbers
import os
import re
from pathlib import Path
from typing import Any

from lightml.errors import InvalidInputError


_INF = float("inf")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # half of a UTF-16 pair: no text SQLite can store
_CLEAN_NAME = re.compile(r"(?=.*\S)[^\x00-\x1f\x7f\ud800-\udfff]+\Z", re.DOTALL)


def check_name(value: Any, what: str) -> str:
    """A name (model, run, family, metric): a non-blank string without control characters."""
    if type(value) is str and _CLEAN_NAME.match(value):  # the common case, in one regex
        return value
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidInputError(f"{what} must not be empty or whitespace")
    if _CONTROL.search(value):
        raise InvalidInputError(f"{what} must not contain control characters (newline, tab, NUL): {value!r}")
    if _SURROGATE.search(value):
        raise InvalidInputError(f"{what} is not valid Unicode text (it holds a lone surrogate): {value!r}")
    return value


def check_value(value: Any, what: str = "metric value") -> float:
    """A finite real number. SQLite would silently store NaN as NULL, so NaN and inf are refused."""
    if type(value) is float or type(value) is int:  # the common case, without ABC checks
        if value == value and value not in (_INF, -_INF):
            return float(value)
        raise InvalidInputError(f"{what} must be finite, got {value}")
    if isinstance(value, bool) or isinstance(value, (str, bytes)):
        raise InvalidInputError(f"{what} must be a number, got {type(value).__name__} {value!r}")
    if not isinstance(value, numbers.Real):
        item = getattr(value, "item", None)  # numpy 0-d arrays, torch scalars
        if callable(item):
            try:
                inner = item()
            except Exception:
                inner = value
            if inner is not value:
                return check_value(inner, what)
        raise InvalidInputError(f"{what} must be a number, got {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        raise InvalidInputError(f"{what} is too large for a float: {value}") from None
    if not math.isfinite(number):
        raise InvalidInputError(f"{what} must be finite, got {number}")
    return number


def check_scores(scores: Any) -> tuple[str, int]:
    """Per-sample scores -> (JSON text, n_samples). A non-empty 1-D sequence of finite numbers."""
    if hasattr(scores, "tolist") and not isinstance(scores, (list, tuple)):
        scores = scores.tolist()  # numpy arrays
    if not isinstance(scores, (list, tuple)):
        raise InvalidInputError(f"scores must be a list of numbers, got {type(scores).__name__}")
    if not scores:
        raise InvalidInputError("scores must not be empty (pass scores=None for a metric without per-sample scores)")
    clean: list[int | float] = []
    for i, score in enumerate(scores):
        if isinstance(score, bool) or getattr(getattr(score, "dtype", None), "kind", None) == "b":
            clean.append(int(score))  # Python or numpy booleans: correct / wrong
            continue
        if isinstance(score, numbers.Integral):
            clean.append(int(score))
            continue
        try:
            clean.append(check_value(score, f"scores[{i}]"))
        except InvalidInputError as exc:
            raise InvalidInputError(f"{exc} (scores must be finite numbers)") from None
    return json.dumps(clean, separators=(",", ":")), len(clean)


def check_doc_keys(doc_ids: Any, n_scores: int) -> str:
    """Document ids (or hashes) for per-sample scores -> JSON text: one per score, all distinct."""
    if hasattr(doc_ids, "tolist") and not isinstance(doc_ids, (list, tuple)):
        doc_ids = doc_ids.tolist()
    if not isinstance(doc_ids, (list, tuple)):
        raise InvalidInputError(f"doc_ids must be a list of ids, got {type(doc_ids).__name__}")
    if len(doc_ids) != n_scores:
        raise InvalidInputError(f"doc_ids has {len(doc_ids)} entries for {n_scores} scores; give one per score")
    for i, key in enumerate(doc_ids):
        if isinstance(key, bool) or not isinstance(key, (str, numbers.Integral)):
            raise InvalidInputError(f"doc_ids[{i}] must be a string or an integer, got {key!r}")
    keys = [k if isinstance(k, str) else int(k) for k in doc_ids]
    if len(set(keys)) != len(keys):
        raise InvalidInputError("doc_ids must be distinct (one score per document)")
    return json.dumps(keys, separators=(",", ":"), ensure_ascii=False)


def check_step(step: Any) -> int:
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        if isinstance(step, float) and step.is_integer():
            step = int(step)
        else:
            raise InvalidInputError(f"step must be a non-negative integer, got {step!r}")
    if step < 0:
        raise InvalidInputError(f"step must be a non-negative integer, got {step}")
    return int(step)


def check_id(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InvalidInputError(f"{what} must be a positive integer id, got {value!r}")
    return int(value)


def normalize_path(path: Any, what: str = "path") -> str:
    """Local paths become absolute; a relative path that does not exist is a hub id, kept as given."""
    if isinstance(path, os.PathLike):
        path = os.fspath(path)
    if not isinstance(path, str) or not path.strip():
        raise InvalidInputError(f"{what} must be a non-empty string or path")
    if "\x00" in path:
        raise InvalidInputError(f"{what} must not contain NUL characters")
    expanded = Path(path).expanduser()
    if expanded.is_absolute() or expanded.exists():
        return os.path.abspath(expanded)
    return path
