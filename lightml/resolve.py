"""Name -> id resolution, shared by the write commands and the read queries."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from lightml.errors import AmbiguousNameError, NotFoundError


def run_id(conn: sqlite3.Connection, run_name: str) -> int | None:
    row = conn.execute("SELECT id FROM run WHERE run_name = ?", (run_name,)).fetchone()
    return row[0] if row else None


def _runs_having(conn: sqlite3.Connection, model_name: str) -> list[tuple[int, str | None]]:
    return conn.execute(
        "SELECT m.id, r.run_name FROM model m LEFT JOIN run r ON r.id = m.run_id "
        "WHERE m.model_name = ? ORDER BY m.id",
        (model_name,),
    ).fetchall()


def _describe_runs(rows: list[tuple[int, str | None]]) -> str:
    return ", ".join(repr(name) if name is not None else "(no run)" for _, name in rows)


def model_id(conn: sqlite3.Connection, model_name: str, run: int | None, run_name: str | None = None) -> int:
    """The model's id: in ``run`` when given, else the only model with that name in any run."""
    if run is not None:
        row = conn.execute(
            "SELECT id FROM model WHERE model_name = ? AND run_id = ?", (model_name, run)
        ).fetchone()
        if row:
            return row[0]
        elsewhere = _runs_having(conn, model_name)
        hint = f" (it exists in run {_describe_runs(elsewhere)})" if elsewhere else ""
        raise NotFoundError(f"model {model_name!r} not found in run {run_name!r}{hint}")
    return model_id_any_run(conn, model_name)


def model_id_any_run(conn: sqlite3.Connection, model_name: str) -> int:
    rows = _runs_having(conn, model_name)
    if not rows:
        raise NotFoundError(f"model {model_name!r} not found")
    if len(rows) > 1:
        raise AmbiguousNameError(
            f"model {model_name!r} exists in several runs ({_describe_runs(rows)}); say which run"
        )
    return rows[0][0]


def model_id_prefer_run(conn: sqlite3.Connection, model_name: str, run: int | None) -> int:
    """The model of that name in ``run`` if there is one, else the only one in any run
    (lineage and comparisons span runs)."""
    if run is not None:
        row = conn.execute(
            "SELECT id FROM model WHERE model_name = ? AND run_id = ?", (model_name, run)
        ).fetchone()
        if row:
            return row[0]
    return model_id_any_run(conn, model_name)


def parent_id(conn: sqlite3.Connection, parent_name: str, run: int | None) -> int:
    """Parents are looked up in the handle's run first, then across runs."""
    try:
        return model_id_prefer_run(conn, parent_name, run)
    except NotFoundError:
        raise NotFoundError(f"parent model {parent_name!r} not found") from None
    except AmbiguousNameError as exc:
        raise AmbiguousNameError(f"parent {exc}") from None


def checkpoint_owner(conn: sqlite3.Connection, checkpoint_id: int) -> tuple[int, int | None]:
    """(model_id, step) of a checkpoint."""
    row = conn.execute("SELECT model_id, step FROM checkpoint WHERE id = ?", (checkpoint_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"checkpoint id {checkpoint_id} not found")
    return row[0], row[1]


def latest_deletes(conn: sqlite3.Connection, model_name: str, run: int | None) -> dict[int | None, tuple[int, dict[str, Any]]]:
    """run id -> (seq, payload) of the latest ``model_deleted`` event of a model of that name
    (only in ``run`` when given): where a deleted model's rows are still described."""
    from lightml.events import MODEL_DELETED

    latest: dict[int | None, tuple[int, dict[str, Any]]] = {}
    # A delete superseded by a later delete of the same model (restored, maybe renamed, then
    # deleted again) describes rows that are gone for good: only each model's latest counts.
    for seq, payload in conn.execute(
        "SELECT e.seq, e.payload FROM events e WHERE e.type = :deleted "
        "AND json_extract(e.payload, '$.model_name') = :name AND NOT EXISTS ("
        "  SELECT 1 FROM events later WHERE later.type = :deleted AND later.seq > e.seq"
        "  AND json_extract(later.payload, '$.model_id') = json_extract(e.payload, '$.model_id')) "
        "ORDER BY e.seq DESC",
        {"deleted": MODEL_DELETED, "name": model_name},
    ):
        deleted = json.loads(payload)
        if run is None or deleted["run_id"] == run:
            latest.setdefault(deleted["run_id"], (seq, deleted))
    return latest
