"""Interactive choice of a missing argument: a numbered list on a terminal, else an error."""

from __future__ import annotations

import sys

from lightml.errors import InvalidInputError, NotFoundError


def choose_many(flag: str, what: str, options: list[str]) -> list[str]:
    """Several of ``options``: numbers or names separated by spaces or commas."""
    return _ask(flag, what, options, many=True)


def choose(flag: str, what: str, options: list[str]) -> str:
    return _ask(flag, what, options, many=False)


def _ask(flag: str, what: str, options: list[str], many: bool):
    """Ask the user to pick one of ``options`` (by number or by name).

    Without a terminal on stdin nobody can answer, so a missing ``flag`` is an error that
    names it. The list and the prompt go to stderr, keeping stdout for the result.
    """
    if not sys.stdin.isatty():
        raise InvalidInputError(f"{flag} is required (no terminal to choose from)")
    if not options:
        raise NotFoundError(f"nothing to choose for {flag}: no {what} found")
    err = sys.stderr
    print(f"\n  Choose {what}:", file=err)
    for number, option in enumerate(options, 1):
        print(f"    {number}. {option}", file=err)
    hint = f"1-{len(options)}" + (", several separated by spaces" if many else "")
    while True:
        err.write(f"\n  {what} [{hint}]: ")
        err.flush()
        answer = sys.stdin.readline()
        if not answer:  # end of input: give up like a missing argument
            raise InvalidInputError(f"{flag} is required (no choice made)")
        words = answer.replace(",", " ").split() if many else [answer.strip()]
        picked = [_option(word, options) for word in words]
        if words and None not in picked:
            return picked if many else picked[0]
        bad = next((w for w, p in zip(words, picked) if p is None), answer.strip())
        print(f"  '{bad}' is not one of the {len(options)} choices", file=err)


def _option(word: str, options: list[str]) -> str | None:
    if word.isdigit() and 1 <= int(word) <= len(options):
        return options[int(word) - 1]
    return word if word in options else None
