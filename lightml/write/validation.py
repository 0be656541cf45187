"""Checks on user input, run before anything is written. Each raises InvalidInputError."""

from __future__ import annotations

import json
import math
import numbers
import os
import re
from pathlib import Path
from typing import Any, Iterable, Mapping

from lightml.errors import InvalidInputError


_INF = float("inf")
# SQLite's INTEGER is a signed 64-bit number: a larger step or id cannot be stored.
SQLITE_INT_MAX = 2**63 - 1
# Integers up to this size are exact as floats; larger integer scores are stored as floats.
_EXACT_FLOAT_INT = 2**53
# Characters refused in names: C0 and C1 control characters (U+0000-U+001F, U+007F-U+009F:
# U+009B is the 8-bit terminal escape, U+0085 a line break), the Unicode line and paragraph
# separators (U+2028, U+2029) and the bidirectional embeddings, overrides and isolates
# (U+202A-U+202E, U+2066-U+2069), which reorder what a terminal shows ("Trojan Source"),
# and the invisible characters that make two names look the same: the zero-width space
# (U+200B), the word joiner and invisible operators (U+2060-U+2064) and the byte order mark
# (U+FEFF, "\ufeffr" would list as a second run "r"). The zero-width joiner and non-joiner
# (U+200C, U+200D) and the left-to-right / right-to-left marks stay allowed: real names in
# Arabic, Persian or emoji need them, and they do not reorder or break lines.
_REFUSED_BEYOND_C0 = "\\x7f-\\x9f\\u200b\\u2028-\\u202e\\u2060-\\u2064\\u2066-\\u2069\\ufeff"
_REFUSED = "\\x00-\\x1f" + _REFUSED_BEYOND_C0
_CONTROL = re.compile(f"[{_REFUSED}]")
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # half of a UTF-16 pair: no text SQLite can store
_CLEAN_NAME = re.compile(f"(?=.*\\S)[^{_REFUSED}\\ud800-\\udfff]+\\Z", re.DOTALL)
# In notes (free text, several lines) tabs and line breaks are fine; the rest of the above is
# refused: an escape sequence in a note would run in the terminal of whoever reads it.
_REFUSED_IN_NOTES = re.compile(f"[\\x00-\\x08\\x0b\\x0c\\x0e-\\x1f{_REFUSED_BEYOND_C0}\\ud800-\\udfff]")


def check_notes(notes: Any) -> str | None:
    """A model's notes: text (tabs and line breaks allowed) or None; "" means None."""
    if notes is None:
        return None
    if not isinstance(notes, str):
        raise InvalidInputError(f"notes must be text or None, got {type(notes).__name__}")
    bad = _REFUSED_IN_NOTES.search(notes)
    if bad is not None:
        raise InvalidInputError(f"notes must not contain control characters (terminal escapes), bidirectional "
                                f"controls, invisible characters or lone surrogates (found U+{ord(bad.group()):04X})")
    return notes or None


def check_name(value: Any, what: str) -> str:
    """A name (model, run, family, metric): a non-blank string without control characters,
    line separators, bidirectional controls or invisible characters."""
    if type(value) is str and _CLEAN_NAME.match(value):  # the common case, in one regex
        return value
    if not isinstance(value, str):
        raise InvalidInputError(f"{what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidInputError(f"{what} must not be empty or whitespace")
    if _SURROGATE.search(value):
        raise InvalidInputError(f"{what} is not valid Unicode text (it holds a lone surrogate): {value!r}")
    bad = _CONTROL.search(value).group()
    raise InvalidInputError(
        f"{what} must not contain control characters, line separators, bidirectional controls or invisible characters "
        f"(found U+{ord(bad):04X}): {value!r}")


REPEAT_MAX_CHARS = 200


def check_repeat(label: Any) -> str | None:
    """A repeat label (``"seed=1234"``): None, or a name (``check_name``) of at most
    ``REPEAT_MAX_CHARS`` characters."""
    if label is None:
        return None
    if not isinstance(label, str):
        raise InvalidInputError(f"repeat must be a string label such as 'seed=1234', got {type(label).__name__} "
                                f"{label!r}")
    check_name(label, "repeat")
    if len(label) > REPEAT_MAX_CHARS:
        raise InvalidInputError(f"repeat must be at most {REPEAT_MAX_CHARS} characters, got {len(label)}")
    return label


def check_value(value: Any, what: str = "metric value") -> float:
    """A finite real number. SQLite would silently store NaN as NULL, so NaN and inf are refused,
    and so is any number beyond the float range (an int like 10**400, a numpy longdouble)."""
    if type(value) is float:  # the common case, without ABC checks
        if value == value and value not in (_INF, -_INF):
            return value
        raise InvalidInputError(f"{what} must be finite, got {value}")
    if type(value) is int and -SQLITE_INT_MAX <= value <= SQLITE_INT_MAX:
        return float(value)
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
        raise InvalidInputError(f"{what} is too large for a float (beyond ±1.8e308): {describe_number(value)}") from None
    if not math.isfinite(number):  # a numpy longdouble or float128 beyond the float range
        raise InvalidInputError(f"{what} must be a finite number within the float range, got {describe_number(value)}")
    return number


def describe_number(value: Any) -> str:
    """A number for an error message: 10**400 has 401 digits, which no one wants to read."""
    if isinstance(value, numbers.Integral) and not isinstance(value, bool) and abs(int(value)) >= 10**20:
        return f"an integer of about {int(abs(int(value)).bit_length() * 0.30103) + 1} digits"
    return str(value) if isinstance(value, numbers.Integral) else repr(value)


def check_scores(scores: Any) -> tuple[str, int]:
    """Per-sample scores -> (JSON text, n_samples). A non-empty 1-D sequence of finite numbers
    within the float range (an integer beyond 2**53 is stored as the float it is read back as)."""
    if hasattr(scores, "tolist") and not isinstance(scores, (list, tuple)):
        scores = scores.tolist()  # numpy arrays
    if not isinstance(scores, (list, tuple)):
        raise InvalidInputError(f"scores must be a list of numbers, got {type(scores).__name__}")
    if not scores:
        raise InvalidInputError("scores must not be empty (pass scores=None for a metric without per-sample scores)")
    clean: list[int | float] = []
    for i, score in enumerate(scores):
        kind = type(score)  # exact int and float first: the common cases, without ABC checks
        if kind is int and -_EXACT_FLOAT_INT <= score <= _EXACT_FLOAT_INT:
            clean.append(score)
            continue
        if kind is float and score == score and score not in (_INF, -_INF):
            clean.append(score)
            continue
        if isinstance(score, bool) or getattr(getattr(score, "dtype", None), "kind", None) == "b":
            clean.append(int(score))  # Python or numpy booleans: correct / wrong
            continue
        if isinstance(score, numbers.Integral) and -_EXACT_FLOAT_INT <= score <= _EXACT_FLOAT_INT:
            clean.append(int(score))
            continue
        try:
            clean.append(check_value(score, f"scores[{i}]"))
        except InvalidInputError as exc:
            raise InvalidInputError(f"{exc} (scores must be finite numbers)") from None
    return json.dumps(clean, separators=(",", ":")), len(clean)


def scores_disagreement(value: float, scores: list[float]) -> str | None:
    """A one-line warning when 0/1 scores' mean is not the value, up to the value's rounding;
    else None (also for scores that are not all 0 or 1: their mean need not be the value).

    "Rounding": the value counts as given to the decimals it is written with (its shortest
    repr: 0.3113 has 4), and at least 2; it agrees with the mean when they differ by at
    most half a unit of that last decimal (0.3113 agrees with 0.31134, not with 0.3115;
    0.31 agrees with 0.3149). A value that is the mean in percent is still a disagreement
    (the tests use the scores), and the warning says so.
    """
    if not scores or not set(scores) <= {0, 1}:  # set(): C speed on the hot log path (0.0, 1.0, True too)
        return None
    mean = sum(scores) / len(scores)
    if value_matches_mean(value, mean):
        return None
    percent = " (the value looks like the mean in percent)" if value_matches_mean(value, mean * 100) else ""
    return (f"the value {value!r} is not the mean of its {len(scores)} 0/1 scores ({mean:.4f}){percent}; "
            "significance tests use the scores")


def value_matches_mean(value: float, mean: float) -> bool:
    """Are ``value`` and ``mean`` equal up to the rounding of ``value`` (see ``scores_disagreement``)?"""
    mantissa, _, exponent = repr(float(value)).partition("e")
    decimals = max(2, len(mantissa.partition(".")[2]) - int(exponent or 0))
    # half a unit of the last decimal, plus a hair for the float error of the mean itself
    return abs(value - mean) <= 0.5 * 10.0 ** -decimals + 1e-12 * max(1.0, abs(mean))


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


def are_doc_keys(keys: list) -> bool:
    """Would ``check_doc_keys`` accept these keys as they come back from their stored JSON
    (strings and ints only, all distinct)? The read side's twin of it: a check, without
    building the JSON text again (a paired test reads 100,000 keys per side)."""
    if not set(map(type, keys)) <= _KEY_TYPES:  # (a bool's type is bool, not int)
        return False
    return len(set(keys)) == len(keys)


_KEY_TYPES = frozenset({str, int})


def check_int_range(value: Any, what: str, minimum: int, maximum: int = SQLITE_INT_MAX) -> int:
    """An integer in [minimum, maximum] (booleans are not integers here). The default maximum
    is SQLite's: a larger step or id would be a bare OverflowError at the INSERT."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidInputError(f"{what} must be an integer, got {value!r}")
    if not minimum <= value <= maximum:
        shown = describe_number(value)
        raise InvalidInputError(f"{what} must be between {minimum} and {maximum}, got {shown}")
    return int(value)


def check_step(step: Any) -> int:
    if isinstance(step, bool) or not isinstance(step, numbers.Integral):
        if isinstance(step, float) and step.is_integer():
            step = int(step)
        else:
            raise InvalidInputError(f"step must be a non-negative integer, got {step!r}")
    if step < 0:
        raise InvalidInputError(f"step must be a non-negative integer, got {step}")
    return check_int_range(step, "step", 0)


def check_id(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < 1:
        raise InvalidInputError(f"{what} must be a positive integer id, got {value!r}")
    return check_int_range(value, what, 1)


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


# Eval settings (``settings=``): a flat dict of scalars, stored as canonical JSON text once
# per distinct set. The limits keep one set a small row: a long value (a chat template) is
# recorded by its hash, as scan records lm-eval's.
SETTINGS_MAX_KEYS = 500
SETTINGS_MAX_CHARS = 100_000


def check_settings(settings: Any, what: str = "settings") -> str | None:
    """Eval settings -> their canonical JSON text (keys sorted, compact), or None for None or
    an empty dict. Keys are names (as ``check_name``); values are str, int, float or bool,
    finite, ints within SQLite's 64 bits, text without terminal escapes (as notes)."""
    if settings is None:
        return None
    if type(settings) is not dict and not isinstance(settings, Mapping):
        raise InvalidInputError(f"{what} must be a flat dict {{name: str, int, float or bool}}, "
                                f"got {type(settings).__name__}")
    if len(settings) > SETTINGS_MAX_KEYS:  # (before checking each of a huge dict's entries)
        raise InvalidInputError(f"{what} has {len(settings)} keys; at most {SETTINGS_MAX_KEYS}")
    return settings_text({key: check_setting(key, value, what) for key, value in settings.items()}, what)


def settings_text(clean: dict[str, str | int | float | bool], what: str = "settings") -> str | None:
    """Settings already checked entry by entry (``check_setting``) -> their canonical JSON
    text (None when empty); the size limits are checked here."""
    if not clean:
        return None
    if len(clean) > SETTINGS_MAX_KEYS:
        raise InvalidInputError(f"{what} has {len(clean)} keys; at most {SETTINGS_MAX_KEYS}")
    text = json.dumps(dict(sorted(clean.items())), ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if len(text) > SETTINGS_MAX_CHARS:
        raise InvalidInputError(f"{what} are {len(text):,} characters as JSON; at most {SETTINGS_MAX_CHARS:,} "
                                "(record a long value, such as a template, by its hash)")
    return text


def check_params(params: Any, *, removals: bool = False) -> dict[str, Any]:
    """A model's parameters: a flat dict as eval settings are (``check_setting``); with
    ``removals``, a value None asks to remove that key. {} for None."""
    if params is None:
        return {}
    if not isinstance(params, Mapping):
        raise InvalidInputError(f"params must be a flat dict {{name: str, int, float or bool}}, "
                                f"got {type(params).__name__}")
    if len(params) > SETTINGS_MAX_KEYS:
        raise InvalidInputError(f"params has {len(params)} keys; at most {SETTINGS_MAX_KEYS}")
    checked = {}
    for key, value in params.items():
        if value is None and removals:
            checked[check_name(key, "a key of params")] = None
        elif value is None:
            raise InvalidInputError(f"params[{key!r}] must be a str, int, float or bool, not None")
        else:
            checked[key] = check_setting(key, value, "params")
    return checked


TAG_MAX_CHARS, TAGS_MAX = 200, 500


def check_tags(tags: Any) -> list[str]:
    """Tags: a list (or tuple or set) of names of at most ``TAG_MAX_CHARS`` characters,
    returned sorted without repeats. [] for None."""
    if tags is None:
        return []
    if isinstance(tags, (str, bytes, Mapping)) or not isinstance(tags, Iterable):
        raise InvalidInputError(f"tags must be a list of strings, got {type(tags).__name__} {tags!r}")
    tags = list(tags)  # (a generator or a dict's keys too)
    if len(tags) > TAGS_MAX:
        raise InvalidInputError(f"at most {TAGS_MAX} tags at once, got {len(tags)}")
    for tag in tags:
        check_name(tag, "a tag")
        if len(tag) > TAG_MAX_CHARS:
            raise InvalidInputError(f"a tag must be at most {TAG_MAX_CHARS} characters, got {len(tag)}")
    return sorted(set(tags))


def check_setting(key: Any, value: Any, what: str = "settings") -> str | int | float | bool:
    """One entry of a settings dict: the key checked as a name, the value as ``check_settings``
    takes it (returned as stored)."""
    check_name(key, f"a key of {what}")
    return _setting_value(value, f"{what}[{key!r}]")


def _setting_value(value: Any, what: str) -> str | int | float | bool:
    if type(value) in (bool, int, float) and value == value and value not in (_INF, -_INF) \
            and -SQLITE_INT_MAX <= value <= SQLITE_INT_MAX:
        return value  # the common case, without ABC checks
    if type(value) is str and not _REFUSED_IN_NOTES.search(value):
        return value
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        bad = _REFUSED_IN_NOTES.search(value)
        if bad is not None:
            raise InvalidInputError(f"{what} must not contain control characters (terminal escapes), "
                                    f"bidirectional controls, invisible characters or lone surrogates "
                                    f"(found U+{ord(bad.group()):04X})")
        return str(value)
    if hasattr(value, "item") and not isinstance(value, (Mapping, list, tuple)):
        value = value.item()  # a numpy scalar
        if isinstance(value, bool):
            return value
    if isinstance(value, numbers.Integral):
        return check_int_range(value, what, -SQLITE_INT_MAX)
    if isinstance(value, numbers.Real):
        number = float(value)
        if not math.isfinite(number):
            raise InvalidInputError(f"{what} must be finite, got {value}")
        return number
    kind = "None" if value is None else type(value).__name__
    raise InvalidInputError(f"{what} must be a str, int, float or bool (settings are a flat dict: nested "
                            f"values, lists and None are refused), got {kind}")


def settings_problem(text: Any) -> str | None:
    """None when ``text`` is what ``check_settings`` makes (the schema of a stored
    ``settings_recorded``), else why not."""
    try:
        data = json.loads(text) if isinstance(text, str) else None
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        return "not a JSON object of settings"
    try:
        canonical = check_settings(data)
    except InvalidInputError as exc:
        return str(exc)
    return None if canonical == text else "not in canonical form (keys sorted, compact JSON)"
