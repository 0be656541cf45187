"""What is in a registry: listings, a summary, one model's card, leaderboards, one value,
the newest events.

Read-only queries returning plain data (``lightml.read.sql`` queries: the same definition
runs on the CLI's sqlite3 connection and on the dashboard's aiosqlite one). Hidden models
are left out unless ``include_hidden``.
"""

from __future__ import annotations

import json
from typing import Any

from lightml.errors import NotFoundError
from lightml.log.events import actor_text
from lightml.read import filters, repeats, settings, uncertainty
from lightml.read.natural import natural_key, natural_pair, natural_sorted
from lightml.read.direction import is_uncertainty, lower_is_better
from lightml.read.sql import Rows, Statement, Steps, first, query


SIGNIFICANCE = 0.05  # the level below which a difference from the leader is called significant


def _visible(alias: str, include_hidden: bool) -> str:
    return "1 = 1" if include_hidden else f"{alias}.hidden = 0"


def _models_where(run: int | None, include_hidden: bool, where: str | None = None) -> tuple[str, list[Any]]:
    """The WHERE of a listing of models ``m``: visible ones (unless ``include_hidden``), in
    ``run``, selected by the filter expression ``where`` (``lightml.read.filters``)."""
    conditions = [_visible("m", include_hidden)]
    params: list[Any] = []
    if run is not None:
        conditions.append("m.run_id = ?")
        params.append(run)
    if where is not None:
        selected, selected_params = filters.condition(where)
        conditions.append(selected)
        params += selected_params
    return " AND ".join(conditions), params


@query
def list_models(run: int | None = None, include_hidden: bool = False,
                where: str | None = None) -> Steps[list[dict[str, Any]]]:
    """Models in run then name order, each with its ``params`` and ``tags``; ``where``: only
    those the filter expression selects."""
    where, params = _models_where(run, include_hidden, where)
    rows = yield Statement(
        "SELECT m.id, m.model_name, r.run_name, m.path, p.model_name, m.hidden, m.notes, "
        "(SELECT count(*) FROM checkpoint c WHERE c.model_id = m.id), "
        "(SELECT count(*) FROM metrics x WHERE x.model_id = m.id) "
        "FROM model m LEFT JOIN run r ON r.id = m.run_id LEFT JOIN model p ON p.id = m.parent_id "
        f"WHERE {where}",
        params,
    )
    listed = sorted([
        {"id": i, "model": name, "run": run_name, "path": path, "parent": parent, "hidden": bool(hidden),
         "notes": notes, "checkpoints": checkpoints, "metrics": metrics}
        for i, name, run_name, path, parent, hidden, notes, checkpoints, metrics in rows
    ], key=lambda m: (natural_key(m["run"]), natural_key(m["model"])))
    yield from _with_params_and_tags(listed)
    return listed


def _with_params_and_tags(models: list[dict[str, Any]]) -> Steps[None]:
    """Each model's ``params`` ({} when none) and ``tags`` ([] when none), in place (by ``id``)."""
    by_id = {model["id"]: model for model in models}
    for model in models:
        model["params"], model["tags"] = {}, []
    if not by_id:
        return
    for model_id, key, value in (yield Statement(
            f"SELECT model_id, key, value FROM model_param WHERE model_id IN ({','.join('?' * len(by_id))}) "
            "ORDER BY model_id, key", list(by_id))):
        by_id[model_id]["params"][key] = json.loads(value)
    for model_id, tag in (yield Statement(
            f"SELECT model_id, tag FROM model_tag WHERE model_id IN ({','.join('?' * len(by_id))}) "
            "ORDER BY model_id, tag", list(by_id))):
        by_id[model_id]["tags"].append(tag)


@query
def selected_models(where: str) -> Steps[list[dict[str, Any]]]:
    """The models (hidden ones too) the filter expression selects, in name then run order:
    {"model", "run", "params", "tags"}."""
    condition, params = filters.condition(where)
    rows = yield Statement(
        f"SELECT m.id, m.model_name, r.run_name FROM model m LEFT JOIN run r ON r.id = m.run_id WHERE {condition}",
        params)
    models = [{"id": i, "model": name, "run": run_name} for i, name, run_name in rows]
    models.sort(key=lambda m: (natural_key(m["model"]), natural_key(m["run"])))  # (engines collate text apart)
    yield from _with_params_and_tags(models)
    return [{key: m[key] for key in ("model", "run", "params", "tags")} for m in models]


@query
def list_runs(include_hidden: bool = False) -> Steps[list[dict[str, Any]]]:
    rows = yield Statement(
        "SELECT r.id, r.run_name, r.description, r.created_at, "
        f"(SELECT count(*) FROM model m WHERE m.run_id = r.id AND {_visible('m', include_hidden)}) "
        "FROM run r ORDER BY r.run_name"
    )
    return [{"id": i, "run": name, "description": description, "created_at": created, "models": models}
            for i, name, description, created, models in rows]


@query
def list_families(run: int | None = None, include_hidden: bool = False) -> Steps[list[dict[str, Any]]]:
    """Families of model-level metrics: how many distinct metrics and models each has."""
    where, params = _models_where(run, include_hidden)
    rows = yield Statement(
        "SELECT x.family, count(DISTINCT x.metric_name), count(DISTINCT x.model_id), count(*) "
        f"FROM metrics x JOIN model m ON m.id = x.model_id WHERE {where} "
        "GROUP BY x.family",
        params,
    )
    return [{"family": f, "metrics": n_metrics, "models": n_models, "values": n_values}
            for f, n_metrics, n_models, n_values in sorted(rows, key=lambda row: natural_key(row[0]))]


@query
def require_metric(family: str, metric_name: str) -> Steps[None]:
    """NotFoundError unless some model or checkpoint has this metric."""
    if not (yield Statement("SELECT 1 FROM metrics WHERE family = ? AND metric_name = ? LIMIT 1",
                            (family, metric_name))):
        raise NotFoundError(f"no metric {family}/{metric_name} in the registry")


@query
def model_notes(model_id: int, model_name: str) -> Steps[str | None]:
    """The model's notes (None: none); NotFoundError if it is gone."""
    row = first((yield Statement("SELECT notes FROM model WHERE id = ?", (model_id,))))
    if row is None:  # deleted since it was resolved
        raise NotFoundError(f"model {model_name!r} not found")
    return row[0]


@query
def family_metrics(family: str) -> Steps[list[str]]:
    return [name for (name,) in (yield Statement(
        "SELECT DISTINCT metric_name FROM metrics WHERE family = ? ORDER BY metric_name", (family,)))]


@query
def family_names() -> Steps[list[str]]:
    """Every family some metric row has (a model's or a checkpoint's, hidden or not)."""
    return natural_sorted(family for (family,) in (yield Statement("SELECT DISTINCT family FROM metrics")))


@query
def names_ever_held() -> Steps[tuple[set[str], set[str]]]:
    """The run names, and every model name the registry has held (deleted models included)."""
    runs = {name for (name,) in (yield Statement("SELECT run_name FROM run"))}
    models = {name for (name,) in (yield Statement(
        "SELECT model_name FROM model UNION SELECT model_name FROM model_tombstone"))}
    return runs, models


def describe_event(event_type: str, payload: dict[str, Any]) -> str:
    """One short line saying what an event did (for histories, summaries and feeds)."""
    p = payload
    if event_type in ("metric_inserted", "metric_overwritten"):
        metrics = p.get("metrics", [])
        where = f"step {p['step']}: " if p.get("checkpoint_id") else ""
        shown = ", ".join(f"{m['family']}/{m['metric_name']} = {m['value']}" for m in metrics[:2])
        more = f" (+{len(metrics) - 2} more)" if len(metrics) > 2 else ""
        return f"{where}{shown}{more}"
    if event_type == "checkpoint_registered":
        return f"step {p['step']} at {p['path']}"
    if event_type == "schema_rule_added":
        return f"{p['family']}/{p['metric_name']}"
    if event_type == "model_notes_set":
        return f"notes: {p['notes']!r}" if p["notes"] else "notes cleared"
    if event_type == "model_renamed":
        return f"{p['previous_name']} -> {p['model_name']}"
    if event_type == "model_hidden_set":
        return "hidden" if p["hidden"] else "shown again"
    if event_type == "model_reparented":
        def parent(model_id: int | None) -> str:
            return f"#{model_id}" if model_id is not None else "none"

        return f"parent {parent(p['previous_parent_id'])} -> {parent(p['parent_id'])}"
    if event_type == "model_params_set":
        values = json.loads(p["params"]) if p["params"] else {}
        return "params: " + (", ".join(f"{k}={v}" for k, v in values.items()) if values else "none")
    if event_type == "model_tags_set":
        added = [f"+{t}" for t in p["tags"] if t not in p["previous"]]
        removed = [f"-{t}" for t in p["previous"] if t not in p["tags"]]
        return "tags: " + " ".join(added + removed)
    if event_type == "model_registered":
        return p["model_name"] + (f" (parent #{p['parent_id']})" if p.get("parent_id") else "")
    if event_type in ("run_created", "run_deleted", "run_restored"):
        return p.get("run_name") or p.get("snapshot", {}).get("run_name", "")
    if event_type == "model_restored":
        return p["snapshot"]["model"]["model_name"]
    return str(p.get("model_name", ""))


# The columns ``event_entries`` reads, in its order.
EVENT_COLUMNS = "seq, type, payload, at, user, host, origin"


def event_entries(rows: Rows) -> list[dict[str, Any]]:
    """Rows of ``EVENT_COLUMNS`` as feed entries: seq, type, time, who, and one line of what."""
    return [
        {"seq": seq, "type": event_type, "at": at, "actor": actor_text(user, host, origin),
         "what": describe_event(event_type, json.loads(payload))}
        for seq, event_type, payload, at, user, host, origin in rows
    ]


@query
def newest_events(n: int = 5) -> Steps[list[dict[str, Any]]]:
    return event_entries((yield Statement(f"SELECT {EVENT_COLUMNS} FROM events ORDER BY seq DESC LIMIT ?", (n,))))


@query
def summary() -> Steps[dict[str, Any]]:
    counts = {}
    for name, sql in (
            ("runs", "SELECT count(*) FROM run"),
            ("models", "SELECT count(*) FROM model WHERE hidden = 0"),
            ("hidden_models", "SELECT count(*) FROM model WHERE hidden = 1"),
            ("checkpoints", "SELECT count(*) FROM checkpoint"),
            ("metrics", "SELECT count(*) FROM metrics"),
            ("scored_metrics", "SELECT count(*) FROM detailed_scores"),
            ("events", "SELECT coalesce(max(seq), 0) FROM events")):
        (counts[name],), = yield Statement(sql)
    return {
        "counts": counts,
        "runs": (yield from list_runs.steps()),
        "families": (yield from list_families.steps()),
        "newest_events": (yield from newest_events.steps()),
    }


@query
def model_card(model_id: int) -> Steps[dict[str, Any]]:
    """Everything about one model: where it is, its lineage both ways, checkpoints, metrics
    (each with its eval settings, {} when none were recorded, and its spread over repeats,
    ``repeats.Spread.to_dict``, None when it was logged without repeat labels)."""
    (name, path, parent_id, notes, hidden, run_name), = yield Statement(
        "SELECT m.model_name, m.path, m.parent_id, m.notes, m.hidden, r.run_name "
        "FROM model m LEFT JOIN run r ON r.id = m.run_id WHERE m.id = ?", (model_id,))
    ancestors = []
    seen = {model_id}
    while parent_id is not None and parent_id not in seen:  # the chain base <- SFT <- DPO
        seen.add(parent_id)
        (parent_name, parent_run, parent_id), = yield Statement(
            "SELECT m.model_name, r.run_name, m.parent_id FROM model m "
            "LEFT JOIN run r ON r.id = m.run_id WHERE m.id = ?", (parent_id,))
        ancestors.append({"model": parent_name, "run": parent_run})
    checkpoints = [
        {"id": cid, "step": step, "path": cpath, "metrics": n}
        for cid, step, cpath, n in (yield Statement(
            "SELECT c.id, c.step, c.path, (SELECT count(*) FROM metrics x WHERE x.checkpoint_id = c.id) "
            "FROM checkpoint c WHERE c.model_id = ? ORDER BY c.step, c.id", (model_id,)))
    ]
    rows = sorted((yield Statement(
        "SELECT family, metric_name, value, id FROM metrics WHERE model_id = ?", (model_id,))), key=natural_pair)
    recorded = yield from settings.settings_steps("metrics m WHERE m.model_id = ?", (model_id,))
    found: dict[int, dict[str, float]] = {}
    for metric_id, label, value in (yield Statement(
            "SELECT r.metric_id, r.repeat, r.value FROM metric_repeats r JOIN metrics m ON m.id = r.metric_id "
            "WHERE m.model_id = ?", (model_id,))):
        found.setdefault(metric_id, {})[label] = value
    metrics = [{"family": f, "metric": m, "value": v, "settings": recorded.get(i, {}),
                "repeats": None if i not in found else repeats.spread(list(found[i].values())).to_dict()}
               for f, m, v, i in rows]
    families: dict[str, int] = {}
    for metric in metrics:
        families[metric["family"]] = families.get(metric["family"], 0) + 1
    last = first((yield Statement(  # the log indexed by model (projections.model_event), newest first
        "SELECT e.seq, e.type, e.at, e.user, e.host, e.origin FROM model_event m JOIN events e ON e.seq = m.seq "
        "WHERE m.model_id = ? ORDER BY m.seq DESC LIMIT 1", (model_id,))))
    card = {"id": model_id}
    yield from _with_params_and_tags([card])
    return {
        "model": name, "run": run_name, "path": path, "notes": notes, "hidden": bool(hidden),
        "params": card["params"], "tags": card["tags"], "parents": ancestors,
        "children": (yield from _descendants(model_id, frozenset({model_id}))),
        "checkpoints": checkpoints, "metrics_per_family": families, "metrics": metrics,
        "last_change": None if last is None else {
            "seq": last[0], "type": last[1], "at": last[2], "actor": actor_text(last[3], last[4], last[5])},
    }


def _descendants(node: int, seen: frozenset[int]) -> Steps[list[dict[str, Any]]]:
    """Children, each with its own children (a tree; any cycle is cut)."""
    children = []
    for child, name, run_name in (yield Statement(
            "SELECT m.id, m.model_name, r.run_name FROM model m LEFT JOIN run r ON r.id = m.run_id "
            "WHERE m.parent_id = ? ORDER BY m.model_name", (node,))):
        if child not in seen:
            children.append({"model": name, "run": run_name,
                             "children": (yield from _descendants(child, seen | {child}))})
    return children


@query
def top(family: str, metric_name: str, n: int = 10, run: int | None = None,
        include_hidden: bool = False, strict: bool = False, where: str | None = None) -> Steps[list[dict[str, Any]]]:
    """A leaderboard of model-level values, best first (ascending for lower-is-better
    metrics). Equal values share a rank (1, 2, 2, 4); ``n`` counts ranks' rows, and a tie at
    the cut is kept whole.

    A stderr-like metric (``direction.is_uncertainty``) is not a score: its rows are listed
    by value, smallest first, with ``rank`` None (nothing is best or worst). The rows of a
    score also carry ``stderr``, ``p_vs_leader`` and ``same_as_leader``
    (``_compare_with_leader``), and every row ``settings_differ``: the decisive settings keys
    in which its value's eval settings differ from the leader's (``strict``: refused when
    one is not empty). ``where``: only the models the filter expression selects
    (``lightml.read.filters``)."""
    models, run_params = _models_where(run, include_hidden, where)
    conditions = ["x.family = ?", "x.metric_name = ?", "x.value IS NOT NULL", models]
    params: list[Any] = [family, metric_name, *run_params]
    unranked = is_uncertainty(metric_name)
    order = "ASC" if unranked or lower_is_better(metric_name) else "DESC"
    rows = yield Statement(
        "SELECT m.model_name, r.run_name, x.value, x.id FROM metrics x JOIN model m ON m.id = x.model_id "
        f"LEFT JOIN run r ON r.id = m.run_id WHERE {' AND '.join(conditions)} "
        f"ORDER BY x.value {order}, m.model_name, r.run_name",
        params,
    )
    board: list[dict[str, Any]] = []
    for position, (model, run_name, value, metric_id) in enumerate(rows, 1):
        tied = bool(board) and board[-1]["value"] == value
        if position > n and not tied:
            break
        rank = board[-1]["rank"] if tied else position
        if tied:
            board[-1]["tie"] = True
        board.append({"rank": rank, "model": model, "run": run_name, "value": value, "tie": tied,
                      "metric_id": metric_id})
    by_id = {} if not board else (yield from settings.settings_steps(
        f"metrics m WHERE m.id IN ({','.join('?' * len(board))})", [row["metric_id"] for row in board]))
    leader_settings = by_id.get(board[0]["metric_id"]) if board else None
    metric_ids = [row["metric_id"] for row in board]
    for row in board:
        row["settings_differ"] = settings.differing_keys([leader_settings, by_id.get(row.pop("metric_id"))])
    settings.refuse_if_strict(strict, [(f"{row['model']} vs {board[0]['model']}", row["settings_differ"])
                                       for row in board if row["settings_differ"]])
    if unranked:
        for row in board:
            row["rank"], row["tie"] = None, False
        return board
    stderrs = yield Statement(
        "SELECT m.model_name, r.run_name, x.value FROM metrics x JOIN model m ON m.id = x.model_id "
        f"LEFT JOIN run r ON r.id = m.run_id WHERE {' AND '.join(conditions)}",
        [family, uncertainty.stderr_name(metric_name), *run_params],
    )
    _compare_with_leader(board, {(model, run_name): value for model, run_name, value in stderrs})
    found: dict[int, dict[str, float]] = {}
    if board:
        for metric_id, label, value in (yield Statement(
                f"SELECT metric_id, repeat, value FROM metric_repeats WHERE metric_id IN ({','.join('?' * len(board))})",
                metric_ids)):
            found.setdefault(metric_id, {})[label] = value
    _compare_repeats_with_leader(board, [None if i not in found else [found[i][k] for k in sorted(found[i])]
                                         for i in metric_ids])
    return board


def _compare_repeats_with_leader(board: list[dict[str, Any]], values: list[list[float] | None]) -> None:
    """Each row's ``repeats`` (its spread over repeats, ``repeats.Spread.to_dict``, or None);
    where the leader and the row both have 2 or more repeats, ``p_vs_leader`` and
    ``same_as_leader`` come from Welch's test over them (``repeats.compare_repeats``) instead
    of the stderrs."""
    for row, of_row in zip(board, values):
        row["repeats"] = None if of_row is None else repeats.spread(of_row).to_dict()
    if not board or values[0] is None:
        return
    for row, of_row in zip(board[1:], values[1:]):
        if of_row is None or row["value"] == board[0]["value"]:
            continue
        compared = repeats.compare_repeats(values[0], of_row, None)
        if compared["p_value"] is not None:
            row["p_vs_leader"], row["same_as_leader"] = compared["p_value"], compared["p_value"] >= SIGNIFICANCE


def _compare_with_leader(board: list[dict[str, Any]], stderrs: dict[tuple[str, str | None], float]) -> None:
    """Each row's ``stderr`` (lm-eval's ``<metric>_stderr`` of the model, None if unknown) and,
    for the rows after the first, ``p_vs_leader`` (the z-test of the two values from their
    stderrs) and ``same_as_leader`` (p >= 0.05: not significantly different; None when a
    stderr is missing). Equal values are the same whatever their stderrs."""
    for row in board:
        row["stderr"] = uncertainty.usable_stderr(stderrs.get((row["model"], row["run"])))
        row["p_vs_leader"] = row["same_as_leader"] = None
    leader = board[0] if board else None
    for row in board[1:]:
        if row["value"] == leader["value"]:
            row["p_vs_leader"], row["same_as_leader"] = 1.0, True
        elif row["stderr"] is not None and leader["stderr"] is not None:
            p = uncertainty.z_test_p_value(leader["value"], leader["stderr"], row["value"], row["stderr"])
            row["p_vs_leader"], row["same_as_leader"] = p, p >= SIGNIFICANCE


@query
def metric_value(model_id: int, model_name: str, family: str, metric_name: str) -> Steps[float]:
    row = first((yield Statement(
        "SELECT value FROM metrics WHERE model_id = ? AND family = ? AND metric_name = ?",
        (model_id, family, metric_name),
    )))
    if row is None:
        raise NotFoundError(f"model {model_name!r} has no metric {family}/{metric_name}")
    return row[0]
