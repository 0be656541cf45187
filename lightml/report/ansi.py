"""Terminal colours: wrapping text in ANSI codes, and when to use them."""

from __future__ import annotations

import os
from typing import TextIO

GREEN = "\033[32m"
RED = "\033[31m"
RESET = "\033[0m"


def paint(text: str, code: str | None, enabled: bool) -> str:
    return f"{code}{text}{RESET}" if enabled and code else text


def color_wanted(stream: TextIO, no_color: bool = False) -> bool:
    """Colour only on a terminal, and never with --no-color or NO_COLOR set (no-color.org)."""
    if no_color or os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())
