"""The dashboard's saved items — charts, saved views of the table, summary sets — kept in the
registry as events, so that a lab sharing one registry shares them (and a removed one can be
restored, and the log says who changed which).

Each item is a kind, a name (unique among the live items of its kind) and a spec: a JSON
object the page draws from. The spec's keys are checked here, per kind (``SPEC_KEYS``), so a
typo or a value of the wrong type is refused with the key named instead of being stored for a
page that cannot draw it. What the keys mean is the page's business (README, "Dashboard").
"""

from __future__ import annotations

import json
import math
from typing import Any, Callable

from lightml.errors import ConflictError, InvalidInputError, NotFoundError
from lightml.log import events as ev
from lightml.log.transaction import WriteTransaction
from lightml.log.writer import Command
from lightml.write.validation import check_name

KINDS = ("chart", "view", "summary")
CHART_TYPES = ("bar", "grouped_bar", "radar", "line", "scatter")
SPEC_MAX_CHARS = 100_000
SPEC_MAX_DEPTH = 6
ITEMS_MAX_LIST = 2_000  # models or metrics a chart, view or summary set names
NAME_MAX_CHARS = 200

Check = Callable[[Any], str | None]  # a value -> None when it is fine, else what is wrong


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) > 4_000:
        return "must be text (at most 4,000 characters)"
    return None if _encodable(value) else "is not valid Unicode text (it holds a lone surrogate)"


def _encodable(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _flag(value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _metric_ref(value: Any) -> str | None:
    ok = (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) and v and len(v) <= 1_000
                                                              and _encodable(v) for v in value))
    return None if ok else 'must be [family, metric] (or ["params", key])'


def _list_of(check: Check, least: int = 0) -> Check:
    def check_list(value: Any) -> str | None:
        if not isinstance(value, list) or not least <= len(value) <= ITEMS_MAX_LIST:
            return f"must be a list of {least} to {ITEMS_MAX_LIST:,} entries"
        for i, item in enumerate(value):
            problem = check(item)
            if problem is not None:
                return f"[{i}] {problem}"
        return None
    return check_list


def _model_id(value: Any) -> str | None:
    ok = type(value) is int and 0 < value < 2**63
    return None if ok else "must be a model id (a positive integer)"


def _one_of(*allowed: Any) -> Check:
    return lambda value: None if value in allowed and type(value) is type(allowed[0]) else \
        f"must be one of {', '.join(map(json.dumps, allowed))}"


def _text_or_null(value: Any) -> str | None:
    return None if value is None else _text(value)


SORT_KEYS = ("model", "run", "step", "summary")  # the table's fixed columns, and the summary set's


def _column_or_fixed(value: Any) -> str | None:
    if isinstance(value, str):
        return None if value in SORT_KEYS else f"must be one of {', '.join(map(json.dumps, SORT_KEYS))} or [family, metric]"
    return _metric_ref(value)


# The keys each kind's spec may have, and what each must be. Only ``type`` (of a chart) and
# ``metrics`` (of a summary set) are required.
SPEC_KEYS: dict[str, dict[str, Check]] = {
    "chart": {
        "type": _one_of(*CHART_TYPES),
        "metrics": _list_of(_metric_ref),
        "models": _list_of(_model_id),
        "where": _text, "run": _text, "color_by": _text,
        "x": _metric_ref, "y": _metric_ref,
        "error_bars": _flag,
        "summary": _model_id,  # (an item id: a positive integer too)
    },
    "view": {
        "family": _text_or_null, "run": _text, "search": _text, "where": _text, "group_by": _text,
        "checkpoints": _flag, "include_hidden": _flag, "show_empty": _flag,
        "sort_by": _column_or_fixed, "sort_dir": _one_of(1, -1),
        "columns": _list_of(_metric_ref),
        "summary": _model_id,  # (a summary set's item id)
    },
    "summary": {"metrics": _list_of(_metric_ref, least=1)},
}
REQUIRED = {"chart": ("type",), "view": (), "summary": ("metrics",)}


def check_kind(kind: Any) -> str:
    if kind not in KINDS or not isinstance(kind, str):
        raise InvalidInputError(f"kind must be one of {', '.join(KINDS)}, got {kind!r}"[:300])
    return kind


def check_item_name(name: Any) -> str:
    name = check_name(name, "the name")
    if len(name) > NAME_MAX_CHARS:
        raise InvalidInputError(f"the name has {len(name):,} characters; at most {NAME_MAX_CHARS}")
    return name


def _deeper_than(value: Any, limit: int) -> bool:
    """Is ``value`` nested more than ``limit`` levels? (Walked without recursion, and given up
    as soon as the limit is passed: a spec nested 900 levels deep is an error, not a crash.)"""
    level = [value]
    for _ in range(limit + 1):
        level = [child for node in level if isinstance(node, (dict, list))
                 for child in (node.values() if isinstance(node, dict) else node)]
        if not level:
            return False
    return True


def spec_text(kind: str, spec: Any) -> str:
    """The spec of an item of ``kind``, checked key by key, as canonical JSON text (keys
    sorted, compact: the same spec is always the same text, so saving it again changes nothing)."""
    if not isinstance(spec, dict):
        raise InvalidInputError(f"the spec of a {kind} must be a JSON object, got {type(spec).__name__}")
    if _deeper_than(spec, SPEC_MAX_DEPTH):
        raise InvalidInputError(f"the spec is nested more than {SPEC_MAX_DEPTH} levels deep")
    allowed = SPEC_KEYS[kind]
    for key, value in spec.items():
        if key not in allowed:
            raise InvalidInputError(f"a {kind} spec has no key {key!r}; its keys are {', '.join(sorted(allowed))}"[:500])
        problem = allowed[key](value)
        if problem is not None:
            raise InvalidInputError(f"the {kind} spec's {key!r} {problem}")
    missing = [key for key in REQUIRED[kind] if key not in spec]
    if missing:
        raise InvalidInputError(f"a {kind} spec needs {', '.join(map(repr, missing))}")
    if kind == "chart" and spec["type"] == "radar" and 0 < len(spec.get("metrics", ())) < 3:
        raise InvalidInputError(f"a radar needs 3 metrics or more, got {len(spec['metrics'])}")
    text = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if len(text) > SPEC_MAX_CHARS:
        raise InvalidInputError(f"the spec is {len(text):,} characters as JSON; at most {SPEC_MAX_CHARS:,}")
    return text


def spec_problem(text: Any) -> str | None:
    """None when ``text`` is a spec as ``spec_text`` stores it (the schema of the stored events),
    else why not."""
    try:
        data = json.loads(text) if isinstance(text, str) else None
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        return "not a JSON object"
    if json.dumps(data, sort_keys=True, separators=(",", ":"), ensure_ascii=False) != text:
        return "not in canonical form (keys sorted, compact JSON)"
    if any(isinstance(v, float) and not math.isfinite(v) for v in _scalars(data)):
        return "holds a number that is not finite"
    return None


def _scalars(value: Any):
    if isinstance(value, dict):
        for item in value.values():
            yield from _scalars(item)
    elif isinstance(value, list):
        for item in value:
            yield from _scalars(item)
    else:
        yield value


# -- the commands (run by the writer inside BEGIN IMMEDIATE) -----------------------------------

_LIVE = "removed_seq IS NULL"


def _row(tx: WriteTransaction, item_id: int) -> tuple[str, str, str, int | None]:
    row = tx.conn.execute("SELECT kind, name, spec, removed_seq FROM dashboard_item WHERE id = ?",
                          (item_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no dashboard item #{item_id}")
    return row


def _refuse_taken(tx: WriteTransaction, kind: str, name: str, but: int | None = None) -> None:
    taken = tx.conn.execute(f"SELECT id FROM dashboard_item WHERE kind = ? AND name = ? AND {_LIVE}",
                            (kind, name)).fetchone()
    if taken is not None and taken[0] != but:
        raise ConflictError(f"a {kind} named {name!r} already exists (#{taken[0]}): choose another name")


def _next_position(tx: WriteTransaction, kind: str) -> int:
    (last,) = tx.conn.execute(f"SELECT MAX(position) FROM dashboard_item WHERE kind = ? AND {_LIVE}",
                              (kind,)).fetchone()
    return 0 if last is None else last + 1


def save_item(kind: str, name: str, spec: str, item_id: int | None) -> Command:
    """A new item (``item_id`` None: put after the others of its kind), or the item renamed or
    given a new spec. Returns (its id, whether anything changed)."""

    def command(tx: WriteTransaction) -> tuple[int, bool]:
        if item_id is None:
            _refuse_taken(tx, kind, name)
            # (a removed item keeps its row, so the highest id ever given is the table's)
            new_id = tx.peek_id("dashboard_item", "SELECT COALESCE(MAX(id), 0) FROM dashboard_item")
            tx.take_ids("dashboard_item", new_id)
            tx.emit([ev.dashboard_item_saved(item_id=new_id, kind=kind, name=name, position=_next_position(tx, kind),
                                             spec=spec, previous_name=None, previous_spec=None)])
            return new_id, True
        stored_kind, stored_name, stored_spec, removed = _row(tx, item_id)
        if stored_kind != kind:
            raise InvalidInputError(f"dashboard item #{item_id} is a {stored_kind}, not a {kind}")
        if removed is not None:
            raise ConflictError(f"{kind} {stored_name!r} (#{item_id}) was removed: restore it before changing it")
        if (stored_name, stored_spec) == (name, spec):
            return item_id, False
        _refuse_taken(tx, kind, name, but=item_id)
        (position,) = tx.conn.execute("SELECT position FROM dashboard_item WHERE id = ?", (item_id,)).fetchone()
        tx.emit([ev.dashboard_item_saved(item_id=item_id, kind=kind, name=name, position=position, spec=spec,
                                         previous_name=stored_name, previous_spec=stored_spec)])
        return item_id, True

    return command


def remove_item(item_id: int) -> Command:
    def command(tx: WriteTransaction) -> bool:
        kind, name, _, removed = _row(tx, item_id)
        if removed is not None:
            return False
        tx.emit([ev.dashboard_item_removed(item_id=item_id, kind=kind, name=name)])
        return True

    return command


def restore_item(item_id: int) -> Command:
    def command(tx: WriteTransaction) -> bool:
        kind, name, _, removed = _row(tx, item_id)
        if removed is None:
            return False
        _refuse_taken(tx, kind, name)
        tx.emit([ev.dashboard_item_restored(item_id=item_id, kind=kind, name=name,
                                            position=_next_position(tx, kind))])
        return True

    return command


def reorder_items(kind: str, item_ids: list[int]) -> Command:
    """Put the live items of ``kind`` in the order of ``item_ids``, which must name each once."""

    def command(tx: WriteTransaction) -> bool:
        current = [i for (i,) in tx.conn.execute(
            f"SELECT id FROM dashboard_item WHERE kind = ? AND {_LIVE} ORDER BY position, id", (kind,)).fetchall()]
        if sorted(item_ids) != sorted(current):
            raise InvalidInputError(f"the new order must name every {kind} once: {current} (in any order), "
                                    f"got {item_ids}"[:500])
        if item_ids == current:
            return False
        tx.emit([ev.dashboard_items_reordered(kind=kind, item_ids=list(item_ids), previous=current)])
        return True

    return command


def check_item_id(value: Any) -> int:
    if type(value) is not int or not 0 < value < 2**63:
        raise InvalidInputError(f"an item id must be a positive integer, got {value!r}"[:200])
    return value


def check_order(kind: Any, item_ids: Any) -> tuple[str, list[int]]:
    kind = check_kind(kind)
    if not isinstance(item_ids, (list, tuple)) or len(item_ids) > ITEMS_MAX_LIST:
        raise InvalidInputError(f"the order must be a list of at most {ITEMS_MAX_LIST:,} item ids")
    ids = [check_item_id(i) for i in item_ids]
    if len(set(ids)) != len(ids):
        raise InvalidInputError("the order names an item twice")
    return kind, ids
