"""Interactive choice of a missing argument: a numbered list on a terminal, else an error."""

from __future__ import annotations

import re
import sys

from lightml.errors import InvalidInputError, NotFoundError

# Numbers as typed: ASCII digits, short enough for int() (a list is never that long).
_NUMBER = re.compile(r"[0-9]{1,9}\Z")
_RANGE = re.compile(r"([0-9]{1,9})-([0-9]{1,9})\Z")  # LightML 1.4's "1-3": choices 1, 2 and 3


def choose_many(flag: str, what: str, options: list[str]) -> list[str]:
    """Several of ``options``: numbers, ranges (``1-3``) or names separated by spaces or commas."""
    return _ask(flag, what, options, many=True)


def choose(flag: str, what: str, options: list[str]) -> str:
    return _ask(flag, what, options, many=False)


def ask_text(flag: str, what: str) -> str:
    """A value typed on the terminal (for an argument with nothing to choose from), else an
    error naming ``flag``. The prompt goes to stderr, keeping stdout for the result."""
    _require_terminal(flag, "no terminal to ask on")
    while True:
        sys.stderr.write(f"\n  {what}: ")
        sys.stderr.flush()
        answer = sys.stdin.readline()
        if not answer:
            raise InvalidInputError(f"{flag} is required (nothing typed)")
        if answer.strip():
            return answer.strip()


def _require_terminal(flag: str, why: str) -> None:
    # Without a terminal on stdin nobody can answer, so a missing flag is an error that names it.
    if not sys.stdin.isatty():
        raise InvalidInputError(f"{flag} is required ({why})")


def _ask(flag: str, what: str, options: list[str], many: bool):
    """Ask the user to pick one of ``options`` (by number or by name; with ``many``, several,
    ranges too). The list and the prompt go to stderr, keeping stdout for the result."""
    _require_terminal(flag, "no terminal to choose from")
    if not options:
        raise NotFoundError(f"nothing to choose for {flag}: no {what} found")
    err = sys.stderr
    print(f"\n  Choose {what}:", file=err)
    for number, option in enumerate(options, 1):
        print(f"    {number}. {option}", file=err)
    hint = f"1-{len(options)}" + (", several separated by spaces or commas, ranges like 1-3" if many else "")
    while True:
        err.write(f"\n  {what} [{hint}]: ")
        err.flush()
        answer = sys.stdin.readline()
        if not answer:  # end of input: give up like a missing argument
            raise InvalidInputError(f"{flag} is required (no choice made)")
        try:
            picked = _picked(answer, options, many)
        except InvalidInputError as exc:
            print(f"  {exc}", file=err)
            continue
        if picked:
            return picked if many else picked[0]


def _picked(answer: str, options: list[str], many: bool) -> list[str]:
    """The options an answer names, in its order, each once. InvalidInputError says which
    word is not a choice."""
    words = answer.replace(",", " ").split() if many else [answer.strip()] if answer.strip() else []
    picked: list[str] = []
    for word in words:
        for option in _options_of(word, options, many):
            if option not in picked:
                picked.append(option)
    return picked


def _options_of(word: str, options: list[str], many: bool) -> list[str]:
    if word in options:  # a name first: a model may be called "7" or "1-3"
        return [word]
    if _NUMBER.match(word) and 1 <= int(word) <= len(options):
        return [options[int(word) - 1]]
    found = _RANGE.match(word) if many else None
    if found is None:
        raise InvalidInputError(f"'{word}' is not one of the {len(options)} choices")
    low, high = int(found.group(1)), int(found.group(2))
    if not 1 <= low <= high <= len(options):
        raise InvalidInputError(f"'{word}' is not a range of the choices: write LOW-HIGH with "
                                f"1 <= LOW <= HIGH <= {len(options)}, like 1-{len(options)}")
    return options[low - 1:high]
