"""The dashboard's read queries, on aiosqlite read-only connections.

Shaping is done here so the browser gets compact JSON: the pivot table is a list of
columns and a list of rows of values, never one object per metric row.
"""

from __future__ import annotations

import json
from typing import Any

import aiosqlite

from lightml.browse import describe_event
from lightml.direction import lower_is_better


async def connect(path: str) -> aiosqlite.Connection:
    """A read-only connection: the dashboard never writes through it, and never blocks a
    writer in another process (WAL readers do not take the write lock)."""
    from pathlib import Path

    conn = await aiosqlite.connect(Path(path).resolve().as_uri() + "?mode=ro", uri=True)
    await conn.execute("PRAGMA busy_timeout = 30000")
    return conn


async def rows(conn: aiosqlite.Connection, sql: str, params: tuple | list = ()) -> list[tuple]:
    async with conn.execute(sql, params) as cursor:
        return list(await cursor.fetchall())


async def runs(conn) -> list[dict[str, Any]]:
    return [{"id": i, "run": name, "models": n} for i, name, n in await rows(
        conn, "SELECT r.id, r.run_name, (SELECT count(*) FROM model m WHERE m.run_id = r.id AND m.hidden = 0) "
              "FROM run r ORDER BY r.run_name")]


async def families(conn) -> list[dict[str, Any]]:
    return [{"family": f, "metrics": n} for f, n in await rows(
        conn, "SELECT family, count(DISTINCT metric_name) FROM metrics GROUP BY family ORDER BY family")]


async def pivot(conn, family: str | None, run: str | None, checkpoints: bool) -> dict[str, Any]:
    """Models (and optionally their checkpoints) x metrics. ``family`` None: all families,
    where the same metric name in two families stays two columns."""
    where, params = ["m.hidden = 0"], []
    if run is not None:
        where.append("r.run_name = ?")
        params.append(run)
    model_rows = await rows(conn, (
        "SELECT m.id, m.model_name, r.run_name, p.model_name FROM model m LEFT JOIN run r ON r.id = m.run_id "
        f"LEFT JOIN model p ON p.id = m.parent_id WHERE {' AND '.join(where)} ORDER BY m.model_name, r.run_name"),
        params)
    ids = json.dumps([row[0] for row in model_rows])
    family_clause, family_param = (" AND x.family = ?", [family]) if family is not None else ("", [])
    values = await rows(conn, (
        "SELECT x.model_id, NULL, x.family, x.metric_name, x.value FROM metrics x "
        f"WHERE x.model_id IN (SELECT value FROM json_each(?)){family_clause}"), [ids] + family_param)
    steps: dict[int, tuple[int, int]] = {}
    if checkpoints:
        for cid, mid, step in await rows(conn, "SELECT id, model_id, step FROM checkpoint "
                                               "WHERE model_id IN (SELECT value FROM json_each(?)) ORDER BY step, id",
                                         [ids]):
            steps[cid] = (mid, step)
        values += await rows(conn, (
            "SELECT NULL, x.checkpoint_id, x.family, x.metric_name, x.value FROM metrics x "
            f"WHERE x.checkpoint_id IN (SELECT value FROM json_each(?)){family_clause}"),
            [json.dumps(list(steps))] + family_param)
    columns = sorted({(f, name) for _, _, f, name, _ in values})
    index = {column: i for i, column in enumerate(columns)}
    by_target: dict[tuple[str, int], list] = {}
    for mid, cid, f, name, value in values:
        key = ("m", mid) if cid is None else ("c", cid)
        cells = by_target.get(key)
        if cells is None:
            cells = by_target[key] = [None] * len(columns)
        cells[index[(f, name)]] = value
    per_model_checkpoints: dict[int, list[int]] = {}
    for cid, (mid, _) in steps.items():
        per_model_checkpoints.setdefault(mid, []).append(cid)
    out_rows = []
    for mid, name, run_name, parent in model_rows:
        out_rows.append({"id": mid, "model": name, "run": run_name, "parent": parent, "step": None,
                         "values": by_target.get(("m", mid), [None] * len(columns))})
        for cid in per_model_checkpoints.get(mid, []):
            if ("c", cid) in by_target:
                out_rows.append({"id": mid, "checkpoint": cid, "model": name, "run": run_name, "parent": parent,
                                 "step": steps[cid][1], "values": by_target[("c", cid)]})
    return {
        "family": family,
        "columns": [{"family": f, "metric": name, "lower_is_better": lower_is_better(name)} for f, name in columns],
        "rows": out_rows,
    }


async def lineage(conn) -> dict[str, Any]:
    """Nodes (models, with the families they have metrics in, and their checkpoints) and edges."""
    evaluated: dict[int, list[str]] = {}
    for mid, family in await rows(conn, "SELECT DISTINCT model_id, family FROM metrics WHERE model_id IS NOT NULL "
                                        "ORDER BY family"):
        evaluated.setdefault(mid, []).append(family)
    ckpts: dict[int, list[dict]] = {}
    for cid, mid, step in await rows(conn, "SELECT id, model_id, step FROM checkpoint ORDER BY step, id"):
        ckpts.setdefault(mid, []).append({"id": cid, "step": step})
    nodes = [
        {"id": mid, "model": name, "run": run, "parent": parent, "families": evaluated.get(mid, []),
         "checkpoints": ckpts.get(mid, [])}
        for mid, name, run, parent in await rows(
            conn, "SELECT m.id, m.model_name, r.run_name, m.parent_id FROM model m LEFT JOIN run r ON r.id = m.run_id "
                  "WHERE m.hidden = 0 ORDER BY m.id")
    ]
    all_families = [f for (f,) in await rows(conn, "SELECT DISTINCT family FROM metrics ORDER BY family")]
    return {"nodes": nodes, "families": all_families}


async def curves(conn, family: str, metric: str) -> list[dict[str, Any]]:
    """One series per model: its checkpoints' values of the metric by step."""
    series: dict[int, dict[str, Any]] = {}
    for mid, name, run, step, value in await rows(conn, (
            "SELECT m.id, m.model_name, r.run_name, c.step, x.value FROM metrics x "
            "JOIN checkpoint c ON c.id = x.checkpoint_id JOIN model m ON m.id = c.model_id "
            "LEFT JOIN run r ON r.id = m.run_id WHERE x.family = ? AND x.metric_name = ? AND m.hidden = 0 "
            "ORDER BY m.model_name, c.step, c.id"), (family, metric)):
        series.setdefault(mid, {"model": name, "run": run, "points": []})["points"].append([step, value])
    return list(series.values())


async def events_after(conn, seq: int, limit: int = 200) -> dict[str, Any]:
    found = await rows(conn, "SELECT seq, type, payload, at, user, host, origin FROM events WHERE seq > ? "
                             "ORDER BY seq LIMIT ?", (seq, limit))
    (last,) = (await rows(conn, "SELECT coalesce(max(seq), 0) FROM events"))[0]
    return {
        "last": last,
        "events": [{"seq": s, "type": t, "at": at, "actor": f"{u or '?'}@{h or '?'} ({o})",
                    "what": describe_event(t, json.loads(p))} for s, t, p, at, u, h, o in found],
    }
