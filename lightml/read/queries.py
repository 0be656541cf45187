"""Read-side queries shared by the handles, the CLI and (later) the dashboard.

Each takes a sqlite3 connection and returns plain Python data. None of them writes.
"""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from lightml.read import resolve
from lightml.log.events import actor_text
from lightml.read.globs import glob_matches
from lightml.errors import AmbiguousNameError, NotFoundError
from lightml.log import codec


def glob_to_sql(pattern: str) -> tuple[str, str]:
    """A user glob (``*`` any run of characters, ``?`` one) -> (SQL operator, pattern).

    Everything else matches literally, ``%``, ``_``, ``[`` and quotes included, so we use
    LIKE with an escape character (GLOB would treat ``[`` as a character class). LIKE
    ignores ASCII case, so its matches are filtered case-sensitively in Python
    (``lightml.read.globs.glob_matches``, linear in the name's length); a pattern without
    wildcards is compared with ``=``.
    """
    if "*" not in pattern and "?" not in pattern:
        return "=", pattern
    out = []
    for ch in pattern:
        if ch == "*":
            out.append("%")
        elif ch == "?":
            out.append("_")
        elif ch in "%_\\":
            out.append("\\" + ch)
        else:
            out.append(ch)
    return "LIKE", "".join(out)


def _glob_clause(column: str, pattern: str, params: list[Any]) -> str:
    op, value = glob_to_sql(pattern)
    params.append(value)
    if op == "=":
        return f"{column} = ?"
    return f"{column} LIKE ? ESCAPE '\\'"


def model_exists(conn: sqlite3.Connection, model_name: str) -> bool:
    """Is there a model of that name in any run (LightML 1.2's meaning)?"""
    return conn.execute("SELECT 1 FROM model WHERE model_name = ? LIMIT 1", (model_name,)).fetchone() is not None


def metric_exists_any_run(conn: sqlite3.Connection, model_name: str, family: str, metric_name: str) -> bool:
    """True when a model of that name in any run has the metric."""
    return conn.execute(
        "SELECT 1 FROM metrics me JOIN model mo ON mo.id = me.model_id "
        "WHERE mo.model_name = ? AND me.family = ? AND me.metric_name = ? LIMIT 1",
        (model_name, family, metric_name),
    ).fetchone() is not None


def metric_exists_in_run(conn: sqlite3.Connection, model_name: str, family: str, metric_name: str, run: int) -> bool:
    return conn.execute(
        "SELECT 1 FROM metrics me JOIN model mo ON mo.id = me.model_id "
        "WHERE mo.model_name = ? AND mo.run_id = ? AND me.family = ? AND me.metric_name = ? LIMIT 1",
        (model_name, run, family, metric_name),
    ).fetchone() is not None


def search(
    conn: sqlite3.Connection, model: str, family: str | None = None, metric: str | None = None,
    run: int | None = None,
) -> list[dict[str, Any]]:
    """Search by exact names or globs, with LightML 1.2's result keys.

    With a family or a metric: model-level metrics as ``{"model", "family", "metric",
    "value", "run"}`` (a missing one of the two matches everything). With neither: the
    matching models as ``{"model"}``, one per name.
    """
    params: list[Any] = []
    where = [_glob_clause("mo.model_name", model, params)]
    if run is not None:
        where.append("mo.run_id = ?")
        params.append(run)
    if family is None and metric is None:
        names = [
            name for (name,) in conn.execute(
                f"SELECT DISTINCT mo.model_name FROM model mo WHERE {' AND '.join(where)} ORDER BY mo.model_name",
                params,
            )
            if glob_matches(model, name)
        ]
        return [{"model": name} for name in names]
    if family is not None:
        where.append(_glob_clause("me.family", family, params))
    if metric is not None:
        where.append(_glob_clause("me.metric_name", metric, params))
    rows = conn.execute(
        "SELECT mo.model_name, me.family, me.metric_name, me.value, r.run_name "
        "FROM metrics me JOIN model mo ON mo.id = me.model_id LEFT JOIN run r ON r.id = mo.run_id "
        f"WHERE {' AND '.join(where)} ORDER BY mo.model_name, me.family, me.metric_name, r.run_name",
        params,
    ).fetchall()
    patterns = [(0, model), (1, family), (2, metric)]
    return [
        {"model": row[0], "family": row[1], "metric": row[2], "value": row[3], "run": row[4]}
        for row in rows
        if all(p is None or glob_matches(p, row[i]) for i, p in patterns)
    ]


def detailed_scores(conn: sqlite3.Connection, model_id: int, family: str, metric_name: str) -> list | None:
    text = detailed_scores_text(conn, model_id, family, metric_name)
    return codec.loads(text) if text is not None else None


def detailed_scores_text(conn: sqlite3.Connection, model_id: int, family: str, metric_name: str) -> str | None:
    """The stored JSON array of the model-level metric's scores, undecoded."""
    row = conn.execute(
        "SELECT d.scores FROM detailed_scores d JOIN metrics m ON m.id = d.metric_id "
        "WHERE m.model_id = ? AND m.family = ? AND m.metric_name = ?",
        (model_id, family, metric_name),
    ).fetchone()
    return row[0] if row else None


def scored_metrics(conn: sqlite3.Connection, model_id: int, family: str | None = None) -> list[tuple[str, str]]:
    """(family, metric_name) of the model's model-level metrics that have per-sample scores."""
    sql = ("SELECT m.family, m.metric_name FROM metrics m JOIN detailed_scores d ON d.metric_id = m.id "
           "WHERE m.model_id = ?")
    params: list[Any] = [model_id]
    if family is not None:
        sql += " AND m.family = ?"
        params.append(family)
    return [tuple(row) for row in conn.execute(sql + " ORDER BY m.family, m.metric_name", params)]


def repeated_metrics(conn: sqlite3.Connection, model_id: int, family: str | None = None) -> dict[tuple[str, str], int]:
    """(family, metric_name) -> metric id of the model's own metrics logged with repeat labels."""
    sql = ("SELECT DISTINCT m.family, m.metric_name, m.id FROM metrics m JOIN metric_repeats r ON r.metric_id = m.id "
           "WHERE m.model_id = ?")
    params: list[Any] = [model_id]
    if family is not None:
        sql += " AND m.family = ?"
        params.append(family)
    return {(fam, name): metric_id for fam, name, metric_id in conn.execute(sql, params)}


def testable_metrics(conn: sqlite3.Connection, model_id: int, family: str | None = None) -> list[tuple[str, str]]:
    """``scored_metrics`` and ``repeated_metrics``: what a test can use."""
    return sorted(set(scored_metrics(conn, model_id, family)) | set(repeated_metrics(conn, model_id, family)))


def models_with_tests(conn: sqlite3.Connection) -> list[str]:
    """Names of the models that have per-sample scores or repeats for at least one metric."""
    return [name for (name,) in conn.execute(
        "SELECT mo.model_name FROM model mo JOIN metrics m ON m.model_id = mo.id "
        "JOIN detailed_scores d ON d.metric_id = m.id UNION "
        "SELECT mo.model_name FROM model mo JOIN metrics m ON m.model_id = mo.id "
        "JOIN metric_repeats r ON r.metric_id = m.id ORDER BY 1")]


def models_with_scores(conn: sqlite3.Connection) -> list[str]:
    """Names of the models that have per-sample scores for at least one metric."""
    return [name for (name,) in conn.execute(
        "SELECT DISTINCT mo.model_name FROM model mo JOIN metrics m ON m.model_id = mo.id "
        "JOIN detailed_scores d ON d.metric_id = m.id ORDER BY mo.model_name")]


def find_checkpoint(conn: sqlite3.Connection, model_id: int, step: int, path_hint: str | None) -> int | None:
    """The checkpoint of the model at ``step``; with several, the one whose path contains
    ``path_hint``; still several (or no hint): the most recently registered."""
    rows = conn.execute(
        "SELECT id, path FROM checkpoint WHERE model_id = ? AND step = ? ORDER BY id DESC", (model_id, step)
    ).fetchall()
    if path_hint is not None:
        rows = [r for r in rows if r[1] is not None and path_hint in r[1]]
    return rows[0][0] if rows else None


def history_metric_ids(
    conn: sqlite3.Connection, model_name: str, family: str, metric_name: str, step: int | None,
    run: int | None, run_name: str | None,
) -> list[int]:
    """Ids of the metric (of the model, or of its checkpoints at ``step``) whose history to show.

    A live model's ids come from the read tables; a deleted model's from its latest delete
    event, so that the history of a deleted model stays readable.
    """
    try:
        mid = resolve.find_model_by_run_id(conn, model_name, run).id
    except NotFoundError:
        return _deleted_metric_ids(conn, model_name, family, metric_name, step, run, run_name)
    if step is None:
        rows = conn.execute(
            "SELECT id FROM metrics WHERE model_id = ? AND family = ? AND metric_name = ?",
            (mid, family, metric_name),
        ).fetchall()
    else:
        rows = conn.execute(
            "SELECT m.id FROM metrics m JOIN checkpoint c ON c.id = m.checkpoint_id "
            "WHERE c.model_id = ? AND c.step = ? AND m.family = ? AND m.metric_name = ?",
            (mid, step, family, metric_name),
        ).fetchall()
    return [r[0] for r in rows]


def _deleted_metric_ids(conn, model_name, family, metric_name, step, run, run_name) -> list[int]:
    latest = resolve.latest_deletes(conn, model_name, run)
    if not latest:
        raise NotFoundError(f"model {model_name!r} not found" + (f" in run {run_name!r}" if run_name else ""))
    if len(latest) > 1:
        raise AmbiguousNameError(f"deleted model {model_name!r} existed in several runs; say which run")
    (_, deleted), = latest.values()
    snapshot = deleted["snapshot"]
    steps = {c["id"]: c["step"] for c in snapshot["checkpoints"]}
    return [
        m["id"] for m in snapshot["metrics"]
        if m["family"] == family and m["metric_name"] == metric_name
        and (m["checkpoint_id"] is None if step is None else steps.get(m["checkpoint_id"]) == step)
    ]


def metric_history(conn: sqlite3.Connection, metric_ids: list[int], family: str | None = None) -> list[dict[str, Any]]:
    """Every change of these metrics, oldest first, with when and by whom (from the log), the
    ``repeat`` label of a value logged as a repeat (else None), and, given the metrics'
    ``family``, the eval settings each inserted or overwritten value came with (``settings``:
    a dict, or None when unknown or for a delete or restore).

    A value brought in by ``merge`` is shown with its time and actor in the source registry
    (``at``, ``actor``), ``merged_from`` naming the source file and ``merged_at`` the time of
    the merge; other entries have ``merged_from`` None."""
    entries = []
    for metric_id in metric_ids:
        inserted = _insert_entry(conn, metric_id)
        if inserted is not None:
            entries.append(inserted)
        entries.extend(
            (seq, metric_id, action, value, previous)
            for seq, action, value, previous in conn.execute(
                "SELECT seq, action, value, previous_value FROM metric_history WHERE metric_id = ? ORDER BY seq",
                (metric_id,),
            )
        )
    entries.sort()
    from lightml.read import settings  # (it reads through this module)

    result = []
    for seq, metric_id, action, value, previous in entries:
        at, user, host, origin = conn.execute(
            "SELECT at, user, host, origin FROM events WHERE seq = ?", (seq,)
        ).fetchone()
        entry = {
            "seq": seq, "at": at, "action": action, "value": value, "previous_value": previous,
            "actor": actor_text(user, host, origin), "metric_id": metric_id,
            "merged_from": None, "merged_at": None,
        }
        logged = action in ("inserted", "overwritten", "repeat added")
        item = _metric_item(conn, seq, metric_id) if logged else None
        entry["repeat"] = None if item is None else item.get("repeat")
        if origin == "merge" and logged:
            _mark_merged(conn, entry, seq, metric_id)
        if family is not None:
            entry["settings"] = settings.settings_of_event(conn, seq, family) if logged else None
        result.append(entry)
    return result


def _mark_merged(conn: sqlite3.Connection, entry: dict[str, Any], seq: int, metric_id: int) -> None:
    """The source's time and actor of a merged value (payload version 2), in place of the merge's."""
    item = _metric_item(conn, seq, metric_id)
    if item is None or item.get("merged_from") is None:
        return  # merged by a LightML that did not record the source's history
    entry["merged_from"], entry["merged_at"] = item["merged_from"], entry["at"]
    # A LightML 1.x source records neither: the merge's own time and actor stay.
    entry["at"] = item.get("original_at") or entry["at"]
    entry["actor"] = item.get("original_actor") or entry["actor"]


def _insert_entry(conn: sqlite3.Connection, metric_id: int) -> tuple | None:
    row = conn.execute(
        "SELECT seq, last_metric_id FROM metric_insert_range WHERE first_metric_id <= ? "
        "ORDER BY first_metric_id DESC LIMIT 1",
        (metric_id,),
    ).fetchone()
    if row is None or row[1] < metric_id:
        return None
    seq = row[0]
    item = _metric_item(conn, seq, metric_id)
    return (seq, metric_id, "inserted", item.get("value") if item else None, None)


def _metric_item(conn: sqlite3.Connection, seq: int, metric_id: int) -> dict[str, Any] | None:
    """The item of metric ``metric_id`` in the metric event at ``seq`` (one event, by its key)."""
    items = resolve.event_payload(conn, seq)["metrics"]
    return next((item for item in items if item["metric_id"] == metric_id), None)


def model_events(conn: sqlite3.Connection, model_name: str, run: int | None, run_name: str | None) -> list[dict[str, Any]]:
    """Every event about the model (registration, edits, checkpoints, metric logs, delete,
    restore), oldest first, each with a one-line description. Works for a deleted model."""
    from lightml.read.catalog import describe_event

    try:
        mid = resolve.find_model_by_run_id(conn, model_name, run).id
    except NotFoundError:
        latest = resolve.latest_deletes(conn, model_name, run)
        if not latest:
            raise
        if len(latest) > 1:
            raise AmbiguousNameError(f"deleted model {model_name!r} existed in several runs; say which run") from None
        (_, deleted), = latest.values()
        mid = deleted["model_id"]
    rows = conn.execute(
        "SELECT e.seq, e.type, e.payload, e.at, e.user, e.host, e.origin FROM model_event m "
        "JOIN events e ON e.seq = m.seq WHERE m.model_id = ? ORDER BY m.seq", (mid,)
    ).fetchall()
    return [
        {"seq": seq, "at": at, "type": event_type, "actor": actor_text(user, host, origin),
         "what": describe_event(event_type, json.loads(payload))}
        for seq, event_type, payload, at, user, host, origin in rows
    ]
