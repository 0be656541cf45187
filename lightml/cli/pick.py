"""Interactive choice of a missing argument: a numbered list on a terminal, else an error."""

from __future__ import annotations

import sys

from lightml.errors import InvalidInputError, NotFoundError


def choose(flag: str, what: str, options: list[str]) -> str:
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
    while True:
        err.write(f"\n  {what} [1-{len(options)}]: ")
        err.flush()
        answer = sys.stdin.readline()
        if not answer:  # end of input: give up like a missing argument
            raise InvalidInputError(f"{flag} is required (no choice made)")
        answer = answer.strip()
        if answer.isdigit() and 1 <= int(answer) <= len(options):
            return options[int(answer) - 1]
        if answer in options:
            return answer
        print(f"  '{answer}' is not one of the {len(options)} choices", file=err)
