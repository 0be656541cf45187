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
from lightml.errors import NotFoundError


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


async def require_metric(conn, family: str, metric: str | None = None) -> None:
    """NotFoundError naming the family, or the metric in it, when no metric row has it."""
    if not await rows(conn, "SELECT 1 FROM metrics WHERE family = ? LIMIT 1", (family,)):
        raise NotFoundError(f"no family {family!r}")
    if metric is not None and not await rows(
            conn, "SELECT 1 FROM metrics WHERE family = ? AND metric_name = ? LIMIT 1", (family, metric)):
        raise NotFoundError(f"no metric {metric!r} in family {family!r}")


async def pivot(conn, family: str | None, run: str | None, checkpoints: bool, include_hidden: bool = False) -> bytes:
    """Models (and optionally their checkpoints) x metrics, as encoded JSON:
    ``{"family", "columns": [{"family", "metric", "lower_is_better"}], "rows": [{"id", "model",
    "run", "parent", "hidden", "step", "values": {family: {metric: value}}}]}``; model rows
    (``step`` null) also carry ``notes``.

    ``family`` None: all families (the same metric name in two families stays two columns).
    Hidden models are left out unless ``include_hidden``. A checkpoint with no value in the
    family (or none at all) is left out; a model is always listed.
    SQLite builds each row's values object (``json_group_object``, through the metrics'
    unique indexes), so Python only joins ready-made JSON text: thousands of models cost tens
    of milliseconds, not a Python object per value. SQLite writes the values with 15
    significant digits; the page shows 4.
    """
    where, params = ["1"], []  # "1": always true, so the WHERE clause is never empty
    if not include_hidden:
        where.append("m.hidden = 0")
    if run is not None:
        where.append("r.run_name = ?")
        params.append(run)
    fam = "AND x.family = ?" if family is not None else ""
    fam_param = [family] if family is not None else []

    def values_of(key_column: str, key: str) -> str:
        return (f"(SELECT json_group_object(f, json(v)) FROM (SELECT x.family AS f, json_group_object(x.metric_name, "
                f"x.value) AS v FROM metrics x WHERE x.{key_column} = {key} {fam} GROUP BY x.family))")

    def names_of(key_column: str, key: str) -> str:
        # The row's (family, metric) pairs, in index order: most rows share one such list,
        # so the columns come from decoding a few distinct lists, not every row's values.
        return (f"(SELECT json_group_array(json_array(x.family, x.metric_name)) FROM metrics x "
                f"WHERE x.{key_column} = {key} {fam})")

    model_rows = await rows(conn, (
        f"SELECT m.id, m.model_name, r.run_name, p.model_name, {values_of('model_id', 'm.id')}, m.notes, m.hidden, "
        f"{names_of('model_id', 'm.id')} FROM model m "
        "LEFT JOIN run r ON r.id = m.run_id LEFT JOIN model p ON p.id = m.parent_id "
        f"WHERE {' AND '.join(where)} ORDER BY m.model_name, r.run_name"), fam_param * 2 + params)
    name_lists = {r[7] for r in model_rows}
    checkpoint_rows: dict[int, list[tuple]] = {}
    if checkpoints:
        for mid, step, cid, values, names in await rows(conn, (
                f"SELECT c.model_id, c.step, c.id, {values_of('checkpoint_id', 'c.id')}, "
                f"{names_of('checkpoint_id', 'c.id')} FROM checkpoint c "
                f"JOIN model m ON m.id = c.model_id LEFT JOIN run r ON r.id = m.run_id WHERE {' AND '.join(where)} "
                "ORDER BY c.step, c.id"), fam_param * 2 + params):
            # json_group_object over no rows gives '{}', never NULL: that is a checkpoint
            # without values here.
            if values != "{}":
                checkpoint_rows.setdefault(mid, []).append((step, cid, values))
                name_lists.add(names)
    # The columns: every (family, metric) in the rows shown (not a DISTINCT over the whole
    # metrics table, which has no family index, to keep logging fast).
    keys = {(f, name) for text in name_lists for f, name in json.loads(text)}
    columns = [{"family": f, "metric": name, "lower_is_better": lower_is_better(name)} for f, name in sorted(keys)]
    dump = json.dumps
    parts = []
    for mid, name, run_name, parent, values, notes, hidden, _ in model_rows:
        head = (f'{{"id":{mid},"model":{dump(name)},"run":{dump(run_name)},"parent":{dump(parent)},'
                f'"hidden":{dump(bool(hidden))}')
        parts.append(f'{head},"step":null,"notes":{dump(notes)},"values":{values or "{}"}}}')
        for step, cid, ck_values in checkpoint_rows.get(mid, []):
            parts.append(f'{head},"checkpoint":{cid},"step":{dump(step)},"values":{ck_values}}}')
    return (f'{{"family":{dump(family)},"columns":{dump(columns, separators=(",", ":"))},'
            f'"rows":[{",".join(parts)}]}}').encode()


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
