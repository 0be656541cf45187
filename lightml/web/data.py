"""The dashboard's read queries, on aiosqlite read-only connections.

Shaping is done here so the browser gets compact JSON. (The pivot table has its own
module, ``lightml.web.pivot``.)
"""

from __future__ import annotations

import json
from typing import Any

import aiosqlite

from lightml.read.catalog import describe_event
from lightml.log.events import actor_text
from lightml.errors import NotFoundError


async def connect(path: str) -> aiosqlite.Connection:
    """A read-only connection: the dashboard never writes through it, and never blocks a
    writer in another process (WAL readers do not take the write lock)."""
    from lightml.log.store import readonly_uri

    # (readonly_uri: falls back to an immutable read on read-only media, as every reader does)
    conn = await aiosqlite.connect(readonly_uri(path), uri=True)
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


async def require_metric(conn, family: str, metric: str | None = None) -> None:
    """NotFoundError naming the family, or the metric in it, when no metric row has it."""
    if not await rows(conn, "SELECT 1 FROM metrics WHERE family = ? LIMIT 1", (family,)):
        raise NotFoundError(f"no family {family!r}")
    if metric is not None and not await rows(
            conn, "SELECT 1 FROM metrics WHERE family = ? AND metric_name = ? LIMIT 1", (family, metric)):
        raise NotFoundError(f"no metric {metric!r} in family {family!r}")


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
        "events": [{"seq": s, "type": t, "at": at, "actor": actor_text(u, h, o),
                    "what": describe_event(t, json.loads(p))} for s, t, p, at, u, h, o in found],
    }
