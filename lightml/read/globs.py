"""Case-sensitive glob matching in O(len(text) x len(pattern)) for any pattern.

``*`` matches any run of characters (also none), ``?`` exactly one character, everything
else itself. A regex built from the glob (``.*`` per star) backtracks exponentially on
patterns like ``'*a' * 40 + 'b'``; this matcher never backtracks across a star: between
stars, the leftmost place a piece fits is always the best one (a later star can absorb
whatever an earlier, leftmost choice leaves over).
"""

from __future__ import annotations

import re


def glob_matches(pattern: str, text: str) -> bool:
    """Does ``text`` match the glob ``pattern`` as a whole (case-sensitive)?"""
    if "*" not in pattern:
        return len(pattern) == len(text) and _fits_at(pattern, text, 0)
    first, *middle, last = pattern.split("*")
    end = len(text) - len(last)  # where the last piece must start
    if end < len(first) or not _fits_at(first, text, 0) or not _fits_at(last, text, end):
        return False
    position = len(first)
    for piece in middle:
        if piece:
            found = _find(piece, text, position, end)
            if found < 0:
                return False
            position = found + len(piece)
    return True


def _fits_at(piece: str, text: str, at: int) -> bool:
    """Does the star-free ``piece`` match ``text`` at position ``at`` (``?`` any one)?"""
    if at + len(piece) > len(text):
        return False
    if "?" not in piece:
        return text.startswith(piece, at)
    return all(p == "?" or p == t for p, t in zip(piece, text[at:at + len(piece)]))


def _find(piece: str, text: str, start: int, end: int) -> int:
    """The leftmost position in [start, end - len(piece)] where the star-free ``piece`` fits, or -1."""
    if "?" not in piece:
        return text.find(piece, start, end)
    # A fixed-length regex (no quantifier): each start position costs at most len(piece).
    regex = re.compile("".join("." if ch == "?" else re.escape(ch) for ch in piece), re.DOTALL)
    found = regex.search(text, start, end)
    return found.start() if found else -1
