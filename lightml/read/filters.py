"""The filter expression that selects models, shared by the API (``where=``), the CLI
(``--where``) and the dashboard:

    params.lr < 3e-5 and tag:dpo and reasoning.arc_challenge > 0.5
    (params.beta = 0.1 or params.beta = 0.3) and not tag:baseline and run = "sweep-1"

- ``params.KEY OP VALUE``: a model parameter (``set_params``); ``tag:NAME``: the model has the tag;
  ``FAMILY.METRIC OP NUMBER``: the model's own value of that metric; ``model`` / ``run``
  ``= "name"`` or ``!=``: its name, its run's name.
- OP is ``=`` (or ``==``), ``!=``, ``<``, ``<=``, ``>``, ``>=``; a VALUE is a number (``3e-5``,
  ``-1``), a string in double or single quotes, or ``true`` / ``false``. Text and true/false
  take ``=`` and ``!=`` only; a number compares with numbers, text with text.
- ``and``, ``or``, ``not`` (in that order of binding: ``not`` first) and parentheses.
- A name that is not letters, digits, ``_`` and ``-`` is written in backticks:
  ``mmlu.`acc,none` > 0.5`` (a backtick inside one is doubled).
- A comparison with a parameter or metric the model does not have is false (and its ``not``
  true).

``parse`` turns the text into a tree (our own recursive descent: no ``eval``, no SQL built
from the text); ``to_sql`` turns the tree into a condition on ``model m`` whose every value
is a ``?`` parameter. A malformed expression is an ``InvalidInputError`` saying where.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Union

from lightml.errors import InvalidInputError

MAX_LENGTH = 4000  # characters of an expression
MAX_DEPTH = 64     # nesting of parentheses and ``not``

# (ASCII only: a Unicode digit or space is not one here. A number never follows a name's
# character or a dot, and is never followed by one: ``arc.25`` and ``tag:3-epochs`` are names.)
_TOKEN = re.compile(r"""
    (?P<space>[ \t\r\n]+)
  | (?P<op><=|>=|==|!=|=|<|>)
  | (?P<paren>[()])
  | (?P<number>(?<![A-Za-z0-9_.`-])[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?(?![A-Za-z0-9_.-]))
  | (?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')
  | (?P<quoted>`(?:[^`]|``)+`)
  | (?P<word>[A-Za-z0-9_][A-Za-z0-9_\-]*)
  | (?P<dot>\.)
  | (?P<colon>:)
""", re.VERBOSE | re.ASCII)
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_\-]*", re.ASCII)
_KEYWORDS = {"and", "or", "not", "true", "false"}
_OPERATORS = {"=": "=", "==": "=", "!=": "<>", "<": "<", "<=": "<=", ">": ">", ">=": ">="}


@dataclass(frozen=True)
class Token:
    kind: str
    text: str
    at: int  # 0-based position in the expression


@dataclass(frozen=True)
class Compare:
    """``field OP value``: field ``("param", key)``, ``("metric", family, metric)``, ``("model",)``
    or ``("run",)``."""

    field: tuple
    op: str
    value: Union[float, str, bool]


@dataclass(frozen=True)
class Tag:
    name: str


@dataclass(frozen=True)
class Not:
    operand: Any


@dataclass(frozen=True)
class Both:
    """``and`` (``op`` "AND") or ``or`` ("OR") of two expressions."""

    op: str
    left: Any
    right: Any


def _fail(expression: str, at: int, message: str) -> InvalidInputError:
    return InvalidInputError(f"bad filter expression at character {at + 1}: {message} "
                             f"(in {expression!r}; see the README's filter expressions)")


def tokens(expression: str) -> list[Token]:
    if not isinstance(expression, str):
        raise InvalidInputError(f"a filter expression must be a string, got {type(expression).__name__}")
    if len(expression) > MAX_LENGTH:
        raise InvalidInputError(f"a filter expression must be at most {MAX_LENGTH} characters, got {len(expression)}")
    found, at = [], 0
    while at < len(expression):
        match = _TOKEN.match(expression, at)
        if match is None:
            raise _fail(expression, at, f"unexpected {expression[at]!r}")
        kind = match.lastgroup
        if kind != "space":
            found.append(Token(kind, match.group(), at))
        at = match.end()
    return found


class _Parser:
    def __init__(self, expression: str) -> None:
        self.expression = expression
        self.tokens = tokens(expression)
        self.position = 0
        self.depth = 0

    def peek(self) -> Token | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise _fail(self.expression, len(self.expression), "it ends too early")
        self.position += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token is not None and token.kind == "word" and token.text.lower() == word:
            self.position += 1
            return True
        return False

    def parse(self) -> Any:
        if not self.tokens:
            raise InvalidInputError("a filter expression must not be empty")
        tree = self.either()
        token = self.peek()
        if token is not None:
            raise _fail(self.expression, token.at, f"unexpected {token.text!r} (a missing 'and' or 'or'?)")
        return tree

    def either(self) -> Any:
        tree = self.both()
        while self.keyword("or"):
            tree = Both("OR", tree, self.both())
        return tree

    def both(self) -> Any:
        tree = self.negation()
        while self.keyword("and"):
            tree = Both("AND", tree, self.negation())
        return tree

    def nested(self):
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _fail(self.expression, self.peek().at if self.peek() else 0,
                        f"nested more than {MAX_DEPTH} levels deep")

    def negation(self) -> Any:
        if self.keyword("not"):
            self.nested()
            tree = Not(self.negation())
            self.depth -= 1
            return tree
        return self.atom()

    def atom(self) -> Any:
        token = self.take()
        if token.kind == "paren" and token.text == "(":
            self.nested()
            tree = self.either()
            closing = self.take()
            if closing.text != ")":
                raise _fail(self.expression, closing.at, f"expected ')' but found {closing.text!r}")
            self.depth -= 1
            return tree
        if token.kind not in ("word", "quoted") or (token.kind == "word" and token.text.lower() in _KEYWORDS):
            raise _fail(self.expression, token.at, f"expected a name, 'tag:', 'not' or '(' but found {token.text!r}")
        first = self.name(token)
        word = first.lower() if token.kind == "word" else None  # (tag:, params., model and run in any case)
        following = self.peek()
        if word == "tag" and following is not None and following.kind == "colon":
            self.take()
            return Tag(self.name(self.take()))
        if word in ("model", "run") and (following is None or following.kind != "dot"):
            return self.compare((word,), token)
        dot = self.peek()
        if dot is None or dot.kind != "dot":
            found = "the end" if dot is None else repr(dot.text)
            raise _fail(self.expression, len(self.expression) if dot is None else dot.at,
                        f"expected '.' after {first!r} (params.KEY, FAMILY.METRIC, tag:NAME, model or run) "
                        f"but found {found}")
        self.take()
        second = self.name(self.take())
        field = ("param", second) if word == "params" else ("metric", first, second)
        return self.compare(field, token)

    def name(self, token: Token) -> str:
        if token.kind == "quoted":
            return token.text[1:-1].replace("``", "`")
        if token.kind == "word" or (token.kind == "number" and _NAME.fullmatch(token.text)):  # (a name of digits)
            return token.text
        raise _fail(self.expression, token.at, f"expected a name but found {token.text!r}")

    def compare(self, field: tuple, start: Token) -> Compare:
        op = self.take()
        if op.kind != "op":
            raise _fail(self.expression, op.at, f"expected a comparison (=, !=, <, <=, >, >=) but found {op.text!r}")
        value = self.value(self.take())
        if not isinstance(value, float) and op.text not in ("=", "==", "!="):
            raise _fail(self.expression, op.at, f"{op.text} compares numbers; text and true/false take = and != only")
        if field[0] == "metric" and not isinstance(value, float):
            raise _fail(self.expression, start.at, "a metric's value is a number: compare it with a number")
        if field[0] in ("model", "run") and not isinstance(value, str):
            raise _fail(self.expression, start.at, f"{field[0]} is a name: compare it with a quoted string")
        return Compare(field, _OPERATORS[op.text], value)

    def value(self, token: Token) -> float | str | bool:
        if token.kind == "number":
            number = float(token.text)
            if not math.isfinite(number):
                raise _fail(self.expression, token.at, f"{token.text} is beyond the float range")
            return number
        if token.kind == "string":
            return re.sub(r"\\(.)", r"\1", token.text[1:-1])
        if token.kind == "word" and token.text.lower() in ("true", "false"):
            return token.text.lower() == "true"
        raise _fail(self.expression, token.at, f"expected a number, a quoted string, true or false but found "
                                               f"{token.text!r}")


def parse(expression: str) -> Any:
    """The tree of a filter expression (``Compare``, ``Tag``, ``Not``, ``Both``)."""
    return _Parser(expression).parse()


def to_sql(tree: Any) -> tuple[str, list[Any]]:
    """A condition on ``model m`` (and its run through ``m.run_id``), with its parameters."""
    params: list[Any] = []
    # (iterative over the and/or chains: a long flat chain must not hit Python's recursion limit)
    return _sql(tree, params), params


def _sql(tree: Any, params: list[Any]) -> str:
    if isinstance(tree, Both):
        parts, pending = [], [tree]
        while pending:  # the chain of one operator, left to right
            node = pending.pop()
            if isinstance(node, Both) and node.op == tree.op:
                pending += [node.right, node.left]
            else:
                parts.append(_sql(node, params))
        return "(" + f" {tree.op} ".join(parts) + ")"
    if isinstance(tree, Not):
        return f"NOT {_sql(tree.operand, params)}"
    if isinstance(tree, Tag):
        params.append(tree.name)
        return "EXISTS (SELECT 1 FROM model_tag t WHERE t.model_id = m.id AND t.tag = ?)"
    field, op, value = tree.field, tree.op, tree.value
    if field[0] == "model":
        params.append(value)
        return f"(m.model_name {op} ?)"
    if field[0] == "run":
        params.append(value)
        return f"EXISTS (SELECT 1 FROM run r WHERE r.id = m.run_id AND r.run_name {op} ?)"
    if field[0] == "metric":
        params += [field[1], field[2], value]
        return ("EXISTS (SELECT 1 FROM metrics x WHERE x.model_id = m.id AND x.family = ? AND x.metric_name = ? "
                f"AND x.value {op} ?)")
    params.append(field[1])
    if isinstance(value, bool):
        params.append("true" if value else "false")
        column = "p.value"
    elif isinstance(value, float):
        params.append(value)
        column = "p.number"
    else:
        params.append(value)
        column = "p.text"
    return f"EXISTS (SELECT 1 FROM model_param p WHERE p.model_id = m.id AND p.key = ? AND {column} {op} ?)"


def condition(expression: str | None) -> tuple[str, list[Any]]:
    """``to_sql(parse(expression))``; ``("1 = 1", [])`` for None (every model)."""
    if expression is None:
        return "1 = 1", []
    return to_sql(parse(expression))


def matching_model_ids(conn, expression: str | None) -> set[int]:
    """The ids of the models the expression selects (hidden ones included: the caller decides)."""
    where, params = condition(expression)
    return {model_id for (model_id,) in conn.execute(f"SELECT m.id FROM model m WHERE {where}", params)}
