"""Eval settings: what produced each value (``settings=`` when logging; scan fills them from
lm-eval's results files), and the comparability check, which says when two values were
produced in ways that change the number.

A value's settings are those of the event that last set it: the event that inserted it
(``metric_insert_range``) or its latest overwrite or added repeat (``metric_history``). The event names its
sets by id per family (``event_settings``); the sets themselves are stored once each
(``settings``). Nothing is stored per value.
"""

from __future__ import annotations

import json
from typing import Any, Iterable

from lightml.errors import InvalidInputError, NotFoundError
from lightml.read import queries, sql
from lightml.read.sql import Statement, Steps

# The keys whose difference changes the number (the comparability check asks only these):
# n-shot, the document limit, the task's version and hash, the harness's version, the chat
# template and system instruction (applied or not, and which), the generation arguments.
# ``scan`` writes them under these names; a hand-logged set that uses them is checked alike.
DECISIVE_KEYS = (
    "num_fewshot", "limit", "task_version", "task_hash", "harness", "harness_version",
    "chat_template_applied", "chat_template_sha", "system_instruction_applied", "system_instruction_sha",
    "fewshot_as_multiturn", "gen_kwargs", "generation_kwargs",
)

# Each metric ``source`` names (rows id, family, metric_name, model_id of ``metrics m``),
# with the settings map of the event that last set its value, when that event has one.
_SETTING_EVENT = """
SELECT x.id, x.family, x.metric_name, x.model_id, s.settings FROM (
  SELECT m.id, m.family, m.metric_name, m.model_id, COALESCE(
    (SELECT MAX(h.seq) FROM metric_history h WHERE h.metric_id = m.id
     AND h.action IN ('overwritten', 'repeat added')),
    (SELECT r.seq FROM metric_insert_range r WHERE r.first_metric_id <= m.id
     ORDER BY r.first_metric_id DESC LIMIT 1)) AS seq
  FROM {source}) x
JOIN event_settings s ON s.seq = x.seq"""


def any_recorded(conn) -> bool:
    return conn.execute(_ANY_RECORDED).fetchone() is not None


_ANY_RECORDED = "SELECT 1 FROM event_settings LIMIT 1"


def settings_where(conn, where: str, params: Iterable[Any] = ()) -> dict[int, dict[str, Any]]:
    """metric id -> its settings, for the metrics ``where`` selects (an SQL condition on
    ``metrics m``). Metrics without settings are left out."""
    return sql.run(conn, settings_steps(f"metrics m WHERE {where}", params))


def settings_steps(source: str, params: Iterable[Any], *, by_name: bool = False) -> Steps[dict]:
    """``settings_where`` as a query (``lightml.read.sql``), for ``source``: metrics as
    ``metrics m WHERE ...``. ``by_name``: model id -> (family, metric_name) -> settings instead."""
    if not (yield Statement(_ANY_RECORDED, ())):  # the usual registry without settings: one cheap query
        return {}
    rows = yield Statement(_SETTING_EVENT.format(source=source), tuple(params))
    ids_of: dict[tuple[str, str], tuple[int, ...]] = {}  # (event's map text, family) -> the sets named
    named = []
    for metric_id, family, name, model_id, by_family in rows:
        ids = ids_of.get((by_family, family))
        if ids is None:
            ids = ids_of[(by_family, family)] = tuple(_ids_for(json.loads(by_family), family))
        if ids:
            named.append((metric_id, family, name, model_id, ids))
    wanted = {i for ids in ids_of.values() for i in ids}
    sets: dict[int, dict[str, Any]] = {}
    if wanted:
        placeholders = ",".join("?" * len(wanted))
        for set_id, text in (yield Statement(f"SELECT id, settings FROM settings WHERE id IN ({placeholders})",
                                             tuple(wanted))):
            sets[set_id] = json.loads(text)
    # Values named by the same sets share one dict (which differing_keys recognises at once).
    unions = {ids: _union(sets[i] for i in ids) for ids in set(ids_of.values()) if ids}
    if by_name:
        result: dict[int, dict[tuple[str, str], dict[str, Any]]] = {}
        for metric_id, family, name, model_id, ids in named:
            result.setdefault(model_id, {})[(family, name)] = unions[ids]
        return result
    return {metric_id: unions[ids] for metric_id, _, _, _, ids in named}


def _ids_for(by_family: dict[str, list[int]], family: str) -> list[int]:
    """The sets an event names for a family: those for every family (""), then its own."""
    return by_family.get("", []) + by_family.get(family, [])


def _union(sets: Iterable[dict[str, Any] | None]) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for one in sets:
        merged.update(one or {})
    return merged


def settings_by_name(conn, model_id: int, family: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """(family, metric_name) -> settings of a model's own values (not its checkpoints')."""
    return settings_by_model(conn, [model_id], family).get(model_id, {})


def settings_by_model(conn, model_ids: list[int], family: str | None = None
                      ) -> dict[int, dict[tuple[str, str], dict[str, Any]]]:
    """model id -> (family, metric_name) -> settings of its own values, for several models at
    once; values without settings are left out."""
    if not model_ids:
        return {}
    where = f"m.model_id IN ({','.join('?' * len(model_ids))})"
    params: list[Any] = list(model_ids)
    if family is not None:
        where += " AND m.family = ?"
        params.append(family)
    return sql.run(conn, settings_steps(f"metrics m WHERE {where}", params, by_name=True))


def metric_settings(conn, model_name: str, family: str, metric_name: str, step: int | None, run: int | None,
                    run_name: str | None) -> dict[str, Any]:
    """The settings of one value (of the model, or of its checkpoint at ``step``); {} when
    none were recorded. A deleted model's values keep theirs."""
    ids = queries.history_metric_ids(conn, model_name, family, metric_name, step, run, run_name)
    if not ids:
        where = f" at step {step}" if step is not None else ""
        raise NotFoundError(f"metric {family}/{metric_name} of model {model_name!r}{where} not found")
    metric_id = max(ids)  # (checkpoints of one step at several paths: the newest)
    if not any_recorded(conn):
        return {}
    # (by id and family, not through ``metrics``: a deleted model's values have no row there)
    one = ("(SELECT CAST(? AS BIGINT) AS id, CAST(? AS TEXT) AS family, CAST(NULL AS TEXT) AS metric_name, "
           "CAST(NULL AS BIGINT) AS model_id) m")
    return sql.run(conn, settings_steps(one, (metric_id, family))).get(metric_id, {})


def settings_of_event(conn, seq: int, family: str) -> dict[str, Any] | None:
    """The settings a metric event gave a family's values (a history entry's), or None."""
    row = conn.execute("SELECT settings FROM event_settings WHERE seq = ?", (seq,)).fetchone()
    ids = [] if row is None else _ids_for(json.loads(row[0]), family)
    if not ids:
        return None
    texts = dict(conn.execute(f"SELECT id, settings FROM settings WHERE id IN ({','.join('?' * len(ids))})", ids))
    return _union(json.loads(texts[i]) for i in ids)


def differing_keys(settings: Iterable[dict[str, Any] | None]) -> list[str]:
    """The decisive keys whose values differ among the sets known (None and {}: unknown, never
    a difference); a key set on one side only differs. Empty when fewer than two are known."""
    known = [s for s in settings if s]
    if len(known) < 2:
        return []
    first = known[0]
    if all(s is first for s in known):  # the usual case: one set shared by every value
        return []
    return [key for key in DECISIVE_KEYS if len({_comparable(s.get(key)) for s in known}) > 1]


class DifferingKeys:
    """``differing_keys``, remembered per combination of sets: the rows of a table mostly share
    a few sets (one per model and results file), so each combination is compared once."""

    def __init__(self) -> None:
        self._seen: dict[tuple[int, ...], tuple[list[str], list]] = {}

    def __call__(self, settings: Iterable[dict[str, Any] | None]) -> list[str]:
        sets = list(settings)
        key = tuple(map(id, sets))
        found = self._seen.get(key)
        if found is None:  # (the sets are kept with the answer, so that their ids stay theirs)
            found = self._seen[key] = (differing_keys(sets), sets)
        return list(found[0])


def _comparable(value: Any) -> tuple:
    """A value as the check compares it: 5 and 5.0 alike, True and 1 not."""
    return (type(value) is bool, value)


def describe(keys: list[str], settings: Iterable[dict[str, Any] | None]) -> str:
    """``num_fewshot 0 vs 5, limit - vs 100``: the differing keys with each side's value."""
    known = [s for s in settings if s]
    parts = []
    for key in keys:
        values = list(dict.fromkeys("-" if s.get(key) is None else str(s.get(key)) for s in known))
        shown = [v if len(v) <= 24 else v[:21] + "..." for v in values]
        parts.append(f"{key} {' vs '.join(shown)}")
    return ", ".join(parts)


def refuse_if_strict(strict: bool, differing: list[tuple[str, list[str]]]) -> None:
    """``strict``: refuse a comparison in which some values' settings differ.
    ``differing``: (what, its differing keys) per flagged row."""
    if strict and differing:
        shown = "; ".join(f"{what}: {', '.join(keys)}" for what, keys in differing[:5])
        more = f" (and {len(differing) - 5} more)" if len(differing) > 5 else ""
        raise InvalidInputError(f"settings differ in a key that changes the number, so these values are not "
                                f"comparable: {shown}{more} (drop strict to compare them anyway)")


def footnote(differing: list[tuple[str, list[str]]], shown: int = 20) -> list[str]:
    """The lines under a table whose rows marked ``!`` are listed in ``differing`` ((what,
    its differing keys) per row)."""
    if not differing:
        return []
    lines = ["  !: produced with settings that differ in a key that changes the number:"]
    lines += [f"     {what}: {', '.join(keys)}" for what, keys in differing[:shown]]
    if len(differing) > shown:
        lines.append(f"     ... and {len(differing) - shown} more")
    return lines


def warning_line(differing: list[tuple[str, list[str]]]) -> str | None:
    """The CLI's one line naming what differs, or None."""
    if not differing:
        return None
    keys = sorted({key for _, ks in differing for key in ks}, key=DECISIVE_KEYS.index)
    return (f"warning: settings differ for {len(differing)} value(s) in {', '.join(keys)}: "
            "those numbers may not be comparable (marked '!'; --strict refuses them)")
