"""Natural order of names, case-insensitive: ``mmlu_2shot`` before ``mmlu_10shot``, ``Llama``
beside ``llama``. The one rule every listing sorts names by (the dashboard's JavaScript has
its twin, ``naturalCompare``)."""

from __future__ import annotations

import re
from typing import Any, Iterable, TypeVar

_DIGITS = re.compile(r"(\d+)")
T = TypeVar("T")


def natural_key(name: str | None) -> tuple[Any, ...]:
    """A sort key: runs of digits compare as numbers, the rest case-folded; ties broken by the
    name itself, so that the order is total. None sorts first."""
    if name is None:
        return ((), "")
    parts = _DIGITS.split(name)  # text, digits, text, ...: the same kind at the same position
    return tuple(int(part) if i % 2 else part.casefold() for i, part in enumerate(parts)), name


def natural_pair(pair: tuple[str, str]) -> tuple[Any, ...]:
    """The key of a (family, metric) pair."""
    return natural_key(pair[0]), natural_key(pair[1])


def natural_sorted(names: Iterable[T], key=None) -> list[T]:
    return sorted(names, key=natural_key if key is None else (lambda item: natural_key(key(item))))
