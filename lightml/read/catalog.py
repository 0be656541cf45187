"""What is in a registry: listings, a summary, one model's card, leaderboards, one value.

Read-only queries returning plain data, shared by the everyday CLI commands and the
dashboard. Hidden models are left out unless ``include_hidden``.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from lightml.read.direction import is_uncertainty, lower_is_better
from lightml.errors import NotFoundError
from lightml.log.events import actor_text


def _visible(alias: str, include_hidden: bool) -> str:
    return "1" if include_hidden else f"{alias}.hidden = 0"


def list_models(conn: sqlite3.Connection, run: int | None = None, include_hidden: bool = False) -> list[dict[str, Any]]:
    where = [_visible("m", include_hidden)]
    params: list[Any] = []
    if run is not None:
        where.append("m.run_id = ?")
        params.append(run)
    rows = conn.execute(
        "SELECT m.id, m.model_name, r.run_name, m.path, p.model_name, m.hidden, m.notes, "
        "(SELECT count(*) FROM checkpoint c WHERE c.model_id = m.id), "
        "(SELECT count(*) FROM metrics x WHERE x.model_id = m.id) "
        "FROM model m LEFT JOIN run r ON r.id = m.run_id LEFT JOIN model p ON p.id = m.parent_id "
        f"WHERE {' AND '.join(where)} ORDER BY r.run_name, m.model_name",
        params,
    ).fetchall()
    return [
        {"id": i, "model": name, "run": run_name, "path": path, "parent": parent, "hidden": bool(hidden),
         "notes": notes, "checkpoints": checkpoints, "metrics": metrics}
        for i, name, run_name, path, parent, hidden, notes, checkpoints, metrics in rows
    ]


def list_runs(conn: sqlite3.Connection, include_hidden: bool = False) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT r.id, r.run_name, r.description, r.created_at, "
        f"(SELECT count(*) FROM model m WHERE m.run_id = r.id AND {_visible('m', include_hidden)}) "
        "FROM run r ORDER BY r.run_name"
    ).fetchall()
    return [{"id": i, "run": name, "description": description, "created_at": created, "models": models}
            for i, name, description, created, models in rows]


def list_families(conn: sqlite3.Connection, run: int | None = None,
                  include_hidden: bool = False) -> list[dict[str, Any]]:
    """Families of model-level metrics: how many distinct metrics and models each has."""
    where = [_visible("m", include_hidden)]
    params: list[Any] = []
    if run is not None:
        where.append("m.run_id = ?")
        params.append(run)
    rows = conn.execute(
        "SELECT x.family, count(DISTINCT x.metric_name), count(DISTINCT x.model_id), count(*) "
        f"FROM metrics x JOIN model m ON m.id = x.model_id WHERE {' AND '.join(where)} "
        "GROUP BY x.family ORDER BY x.family",
        params,
    ).fetchall()
    return [{"family": f, "metrics": n_metrics, "models": n_models, "values": n_values}
            for f, n_metrics, n_models, n_values in rows]


def require_metric(conn: sqlite3.Connection, family: str, metric_name: str) -> None:
    """NotFoundError unless some model or checkpoint has this metric."""
    if not conn.execute("SELECT 1 FROM metrics WHERE family = ? AND metric_name = ? LIMIT 1",
                        (family, metric_name)).fetchone():
        raise NotFoundError(f"no metric {family}/{metric_name} in the registry")


def model_notes(conn: sqlite3.Connection, model_id: int, model_name: str) -> str | None:
    """The model's notes (None: none); NotFoundError if it is gone."""
    row = conn.execute("SELECT notes FROM model WHERE id = ?", (model_id,)).fetchone()
    if row is None:  # deleted since it was resolved
        raise NotFoundError(f"model {model_name!r} not found")
    return row[0]


def family_metrics(conn: sqlite3.Connection, family: str) -> list[str]:
    return [name for (name,) in conn.execute(
        "SELECT DISTINCT metric_name FROM metrics WHERE family = ? ORDER BY metric_name", (family,))]


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
    if event_type == "model_registered":
        return p["model_name"] + (f" (parent #{p['parent_id']})" if p.get("parent_id") else "")
    if event_type in ("run_created", "run_deleted", "run_restored"):
        return p.get("run_name") or p.get("snapshot", {}).get("run_name", "")
    if event_type == "model_restored":
        return p["snapshot"]["model"]["model_name"]
    return str(p.get("model_name", ""))


def newest_events(conn: sqlite3.Connection, n: int = 5) -> list[dict[str, Any]]:
    rows = conn.execute(
        "SELECT seq, type, payload, at, user, host, origin FROM events ORDER BY seq DESC LIMIT ?", (n,)
    ).fetchall()
    return [
        {"seq": seq, "type": event_type, "at": at, "actor": actor_text(user, host, origin),
         "what": describe_event(event_type, json.loads(payload))}
        for seq, event_type, payload, at, user, host, origin in rows
    ]


def summary(conn: sqlite3.Connection) -> dict[str, Any]:
    def count(sql: str) -> int:
        return conn.execute(sql).fetchone()[0]

    return {
        "counts": {
            "runs": count("SELECT count(*) FROM run"),
            "models": count("SELECT count(*) FROM model WHERE hidden = 0"),
            "hidden_models": count("SELECT count(*) FROM model WHERE hidden = 1"),
            "checkpoints": count("SELECT count(*) FROM checkpoint"),
            "metrics": count("SELECT count(*) FROM metrics"),
            "scored_metrics": count("SELECT count(*) FROM detailed_scores"),
            "events": count("SELECT coalesce(max(seq), 0) FROM events"),
        },
        "runs": list_runs(conn),
        "families": list_families(conn),
        "newest_events": newest_events(conn),
    }


def model_card(conn: sqlite3.Connection, model_id: int) -> dict[str, Any]:
    """Everything about one model: where it is, its lineage both ways, checkpoints, metrics."""
    name, path, parent_id, notes, hidden, run_name = conn.execute(
        "SELECT m.model_name, m.path, m.parent_id, m.notes, m.hidden, r.run_name "
        "FROM model m LEFT JOIN run r ON r.id = m.run_id WHERE m.id = ?", (model_id,)
    ).fetchone()
    ancestors = []
    seen = {model_id}
    while parent_id is not None and parent_id not in seen:  # the chain base <- SFT <- DPO
        seen.add(parent_id)
        row = conn.execute("SELECT m.model_name, r.run_name, m.parent_id FROM model m "
                           "LEFT JOIN run r ON r.id = m.run_id WHERE m.id = ?", (parent_id,)).fetchone()
        ancestors.append({"model": row[0], "run": row[1]})
        parent_id = row[2]
    checkpoints = [
        {"id": cid, "step": step, "path": cpath, "metrics": n}
        for cid, step, cpath, n in conn.execute(
            "SELECT c.id, c.step, c.path, (SELECT count(*) FROM metrics x WHERE x.checkpoint_id = c.id) "
            "FROM checkpoint c WHERE c.model_id = ? ORDER BY c.step, c.id", (model_id,))
    ]
    metrics = [{"family": f, "metric": m, "value": v} for f, m, v in conn.execute(
        "SELECT family, metric_name, value FROM metrics WHERE model_id = ? ORDER BY family, metric_name", (model_id,))]
    families: dict[str, int] = {}
    for metric in metrics:
        families[metric["family"]] = families.get(metric["family"], 0) + 1
    last = conn.execute(
        "SELECT seq, type, at, user, host, origin FROM events "
        "WHERE json_extract(payload, '$.model_id') = ? ORDER BY seq DESC LIMIT 1", (model_id,)
    ).fetchone()
    return {
        "model": name, "run": run_name, "path": path, "notes": notes, "hidden": bool(hidden),
        "parents": ancestors, "children": _descendants(conn, model_id), "checkpoints": checkpoints,
        "metrics_per_family": families, "metrics": metrics,
        "last_change": None if last is None else {
            "seq": last[0], "type": last[1], "at": last[2], "actor": actor_text(last[3], last[4], last[5])},
    }


def _descendants(conn: sqlite3.Connection, model_id: int) -> list[dict[str, Any]]:
    """Children, each with its own children (a tree; any cycle is cut)."""
    def walk(node: int, seen: frozenset[int]) -> list[dict[str, Any]]:
        return [
            {"model": name, "run": run_name, "children": walk(child, seen | {child})}
            for child, name, run_name in conn.execute(
                "SELECT m.id, m.model_name, r.run_name FROM model m LEFT JOIN run r ON r.id = m.run_id "
                "WHERE m.parent_id = ? ORDER BY m.model_name", (node,)).fetchall()
            if child not in seen
        ]
    return walk(model_id, frozenset({model_id}))


def top(conn: sqlite3.Connection, family: str, metric_name: str, n: int = 10, run: int | None = None,
        include_hidden: bool = False) -> list[dict[str, Any]]:
    """A leaderboard of model-level values, best first (ascending for lower-is-better
    metrics). Equal values share a rank (1, 2, 2, 4); ``n`` counts ranks' rows, and a tie at
    the cut is kept whole.

    A stderr-like metric (``direction.is_uncertainty``) is not a score: its rows are listed
    by value, smallest first, with ``rank`` None (nothing is best or worst)."""
    where = ["x.family = ?", "x.metric_name = ?", "x.value IS NOT NULL", _visible("m", include_hidden)]
    params: list[Any] = [family, metric_name]
    if run is not None:
        where.append("m.run_id = ?")
        params.append(run)
    unranked = is_uncertainty(metric_name)
    order = "ASC" if unranked or lower_is_better(metric_name) else "DESC"
    rows = conn.execute(
        "SELECT m.model_name, r.run_name, x.value FROM metrics x JOIN model m ON m.id = x.model_id "
        f"LEFT JOIN run r ON r.id = m.run_id WHERE {' AND '.join(where)} "
        f"ORDER BY x.value {order}, m.model_name, r.run_name",
        params,
    ).fetchall()
    board: list[dict[str, Any]] = []
    for position, (model, run_name, value) in enumerate(rows, 1):
        tied = bool(board) and board[-1]["value"] == value
        if position > n and not tied:
            break
        rank = board[-1]["rank"] if tied else position
        if tied:
            board[-1]["tie"] = True
        board.append({"rank": rank, "model": model, "run": run_name, "value": value, "tie": tied})
    if unranked:
        for row in board:
            row["rank"], row["tie"] = None, False
    return board


def metric_value(conn: sqlite3.Connection, model_id: int, model_name: str, family: str, metric_name: str) -> float:
    row = conn.execute(
        "SELECT value FROM metrics WHERE model_id = ? AND family = ? AND metric_name = ?",
        (model_id, family, metric_name),
    ).fetchone()
    if row is None:
        raise NotFoundError(f"model {model_name!r} has no metric {family}/{metric_name}")
    return row[0]
