"""The dashboard's own answers: its family tabs, the lineage graph, the training curves, the
feed of new events, and the checks behind its 404s.

``lightml.read.sql`` queries like every read (the dashboard runs them on aiosqlite; the
tests run them on sqlite3 too). Shaped here, so the browser gets compact JSON. The pivot
table has its own module, ``lightml.read.pivot``.
"""

from __future__ import annotations

from typing import Any

from lightml.errors import NotFoundError
from lightml.read.catalog import EVENT_COLUMNS, event_entries, family_names
from lightml.read.sql import Statement, Steps, query


@query
def metric_families() -> Steps[list[dict[str, Any]]]:
    """Every family with its number of metric names, counting every metric row (checkpoints'
    and hidden models' too: the tabs of the pivot, which shows both). ``catalog.list_families``
    counts the visible models' own values instead."""
    return [{"family": f, "metrics": n} for f, n in (yield Statement(
        "SELECT family, count(DISTINCT metric_name) FROM metrics GROUP BY family ORDER BY family"))]


@query
def require_family(family: str, metric: str | None = None) -> Steps[None]:
    """NotFoundError naming the family, or the metric in it, when no metric row has it."""
    if not (yield Statement("SELECT 1 FROM metrics WHERE family = ? LIMIT 1", (family,))):
        raise NotFoundError(f"no family {family!r}")
    if metric is not None and not (yield Statement(
            "SELECT 1 FROM metrics WHERE family = ? AND metric_name = ? LIMIT 1", (family, metric))):
        raise NotFoundError(f"no metric {metric!r} in family {family!r}")


@query
def lineage() -> Steps[dict[str, Any]]:
    """Nodes (models, with the families they have metrics in, and their checkpoints) and edges."""
    evaluated: dict[int, list[str]] = {}
    for mid, family in (yield Statement("SELECT DISTINCT model_id, family FROM metrics WHERE model_id IS NOT NULL "
                                        "ORDER BY family")):
        evaluated.setdefault(mid, []).append(family)
    ckpts: dict[int, list[dict]] = {}
    for cid, mid, step in (yield Statement("SELECT id, model_id, step FROM checkpoint ORDER BY step, id")):
        ckpts.setdefault(mid, []).append({"id": cid, "step": step})
    nodes = [
        {"id": mid, "model": name, "run": run, "parent": parent, "families": evaluated.get(mid, []),
         "checkpoints": ckpts.get(mid, [])}
        for mid, name, run, parent in (yield Statement(
            "SELECT m.id, m.model_name, r.run_name, m.parent_id FROM model m LEFT JOIN run r ON r.id = m.run_id "
            "WHERE m.hidden = 0 ORDER BY m.id"))
    ]
    return {"nodes": nodes, "families": (yield from family_names.steps())}


@query
def curves(family: str, metric: str) -> Steps[list[dict[str, Any]]]:
    """One series per model: its checkpoints' values of the metric by step. An unknown family
    or metric is a NotFoundError; a known metric no checkpoint has, no series (an empty chart)."""
    yield from require_family.steps(family, metric)
    series: dict[int, dict[str, Any]] = {}
    for mid, name, run, step, value in (yield Statement(
            "SELECT m.id, m.model_name, r.run_name, c.step, x.value FROM metrics x "
            "JOIN checkpoint c ON c.id = x.checkpoint_id JOIN model m ON m.id = c.model_id "
            "LEFT JOIN run r ON r.id = m.run_id WHERE x.family = ? AND x.metric_name = ? AND m.hidden = 0 "
            "ORDER BY m.model_name, c.step, c.id", (family, metric))):
        series.setdefault(mid, {"model": name, "run": run, "points": []})["points"].append([step, value])
    return list(series.values())


@query
def events_after(seq: int, limit: int = 200) -> Steps[dict[str, Any]]:
    """The feed: up to ``limit`` events after ``seq``, oldest first, and the last event's seq."""
    found = yield Statement(f"SELECT {EVENT_COLUMNS} FROM events WHERE seq > ? ORDER BY seq LIMIT ?", (seq, limit))
    (last,), = yield Statement("SELECT coalesce(max(seq), 0) FROM events")
    return {"last": last, "events": event_entries(found)}


@query
def model_panel(model_id: int) -> Steps[dict[str, Any]]:
    """The lineage's side panel of one model: its card (``catalog.model_card``) with the
    parent and children one step away (with ids, to select them in the graph), the families it
    has values in, and a summary of its values' eval settings: each decisive key
    (``settings.DECISIVE_KEYS``) with the distinct values it took. NotFoundError if no live
    model has the id."""
    import json

    from lightml.read import catalog, settings
    from lightml.read.catalog import describe_event

    if not (yield Statement("SELECT 1 FROM model WHERE id = ?", (model_id,))):
        raise NotFoundError(f"no model #{model_id} (it may have been deleted: reload the page)")
    card = yield from catalog.model_card.steps(model_id)
    near = yield Statement(
        "SELECT m.id, m.model_name, r.run_name, m.parent_id = ? FROM model m LEFT JOIN run r ON r.id = m.run_id "
        "WHERE m.id = (SELECT parent_id FROM model WHERE id = ?) OR m.parent_id = ?", (model_id, model_id, model_id))
    parent = next(({"id": i, "model": n, "run": r} for i, n, r, is_child in near if not is_child), None)
    children = sorted(({"id": i, "model": n, "run": r} for i, n, r, is_child in near if is_child),
                      key=lambda c: c["model"])
    taken: dict[str, list] = {}
    for metric in card["metrics"]:
        for key in settings.DECISIVE_KEYS:
            if key in metric["settings"] and metric["settings"][key] not in taken.setdefault(key, []):
                taken[key].append(metric["settings"][key])
    last = card["last_change"]
    if last is not None:
        (payload,), = yield Statement("SELECT payload FROM events WHERE seq = ?", (last["seq"],))
        what = describe_event(last["type"], json.loads(payload))
        last = {**last, "what": f"{last['type'].replace('_', ' ')}: {what}" if what else last["type"].replace("_", " ")}
    return {"id": model_id, "model": card["model"], "run": card["run"], "path": card["path"],
            "notes": card["notes"], "hidden": card["hidden"], "params": card["params"], "tags": card["tags"],
            "parent": parent, "children": children, "checkpoints": [c["step"] for c in card["checkpoints"]],
            "families": sorted(card["metrics_per_family"]), "metrics": len(card["metrics"]),
            "last_change": last, "settings": {key: values for key, values in taken.items() if values}}


@query
def deleted_models() -> Steps[list[dict[str, Any]]]:
    """The models a restore by name brings back (``restore_model`` undoes the latest delete of a
    name in its run), newest first: per run and name, its latest delete, while no model of that
    name lives in that run. What the dashboard offers to restore."""
    rows = yield Statement(
        "SELECT t.model_name, r.run_name, t.seq, e.at FROM model_tombstone t JOIN events e ON e.seq = t.seq "
        "LEFT JOIN run r ON r.id = t.run_id "
        "WHERE t.seq = (SELECT MAX(x.seq) FROM model_tombstone x WHERE x.model_name = t.model_name "
        f"AND {_same_run('x', 't')}) "
        f"AND NOT EXISTS (SELECT 1 FROM model m WHERE m.model_name = t.model_name AND {_same_run('m', 't')}) "
        "ORDER BY t.seq DESC")
    return [{"model": name, "run": run, "seq": seq, "at": at} for name, run, seq, at in rows]


def _same_run(a: str, b: str) -> str:
    """Null-safe equality of two rows' run ids, in every dialect (a model may have no run)."""
    return f"({a}.run_id = {b}.run_id OR ({a}.run_id IS NULL AND {b}.run_id IS NULL))"


@query
def settings_marks(family: str, run: str | None = None, include_hidden: bool = False) -> Steps[dict[str, Any]]:
    """The table's marks of values produced with other eval settings than most of their column:
    ``{metric: {"keys": differing decisive keys, "models": {model id: "num_fewshot 0 (most: 5)"}}}``
    for the models' own values of ``family`` — of the models the table shows: of ``run`` if
    given, hidden ones only with ``include_hidden`` (values without recorded settings are
    never marked: unknown is not a difference, as in ``settings.differing_keys``)."""
    from collections import Counter

    from lightml.read import settings

    shown, params = ["1 = 1"], [family]
    if not include_hidden:
        shown.append("md.hidden = 0")
    if run is not None:
        shown.append("r.run_name = ?")
        params.append(run)
    by_model = yield from settings.settings_steps(
        "metrics m WHERE m.family = ? AND m.model_id IN (SELECT md.id FROM model md LEFT JOIN run r "
        f"ON r.id = md.run_id WHERE {' AND '.join(shown)})", params, by_name=True)
    columns: dict[str, dict[int, dict[str, Any]]] = {}
    for model_id, values in by_model.items():
        for (_, metric), recorded in values.items():
            if recorded:
                columns.setdefault(metric, {})[model_id] = recorded
    marks = {}
    for metric, sets in columns.items():
        signature = {mid: tuple((type(s.get(k)) is bool, s.get(k)) for k in settings.DECISIVE_KEYS)
                     for mid, s in sets.items()}
        counts = Counter(signature.values())
        if len(counts) < 2:
            continue
        first_of = {}
        for mid in sorted(sets):
            first_of.setdefault(signature[mid], mid)
        # the most common set; between as common ones, that of the earliest model
        most = max(counts, key=lambda s: (counts[s], -first_of[s]))
        reference = sets[first_of[most]]
        models = {}
        for mid, recorded in sets.items():
            if signature[mid] == most:
                continue
            keys = [k for k in settings.DECISIVE_KEYS
                    if (type(recorded.get(k)) is bool, recorded.get(k)) != (type(reference.get(k)) is bool, reference.get(k))]
            models[mid] = ", ".join(f"{k} {_shown(recorded.get(k))} (most: {_shown(reference.get(k))})" for k in keys)
        marks[metric] = {"keys": [k for k in settings.DECISIVE_KEYS if len({s[settings.DECISIVE_KEYS.index(k)]
                                                                           for s in counts}) > 1],
                         "models": models}
    return marks


def _shown(value: Any) -> str:
    text = "-" if value is None else str(value)
    return text if len(text) <= 24 else text[:21] + "..."
