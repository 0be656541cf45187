"""Upgrading a LightML 1.x database (read tables only) to the event-sourced format.

The 1.x rows are turned into the events that would have produced them (ids, timestamps
and values carried over), the read tables are rebuilt from those events, and ``verify``
must pass afterwards. A timestamped backup of the original file is written first; rows
that cannot be represented (a metric whose model is gone, a duplicated metric) are
reported, and stay in the backup.
"""

from __future__ import annotations

import math
import os
import sqlite3
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lightml.log import events as ev
from lightml.log import store
from lightml.errors import NotARegistryError
from lightml.log.schemas import is_json_array_text, payload_problem
from lightml.log.replay import verify
from lightml.log.writer import Actor, WriteTransaction

OLD_TABLES = ["detailed_scores", "metrics", "checkpoint", "model", "run", "registry_schema"]


@dataclass
class MigrateResult:
    migrated: bool
    message: str
    backup: Path | None = None
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def _rows(conn: sqlite3.Connection, table: str, columns: list[str], defaults: dict[str, Any]) -> list[dict]:
    """All rows of a 1.x table, with columns it lacks (older 1.x) filled from ``defaults``."""
    present = {r[1] for r in conn.execute(f'PRAGMA table_info("{table}")')}
    if not present:
        return []
    select = ", ".join(f'"{c}"' if c in present else "NULL" for c in columns)
    rows = [dict(zip(columns, r)) for r in conn.execute(f'SELECT {select} FROM "{table}" ORDER BY rowid')]
    for row in rows:
        for column, default in defaults.items():
            if column not in present:
                row[column] = default
    return rows


def migrate(db: str | os.PathLike) -> MigrateResult:
    path = Path(db).expanduser()
    conn = store.connect_readonly(path)
    try:
        fmt = store.registry_format(conn)
    finally:
        conn.close()
    if fmt is None:
        raise NotARegistryError(f"{path} is an empty database: nothing to migrate")
    if fmt > store.FORMAT_VERSION:
        raise NotARegistryError(
            f"{path} was written by a newer LightML (format {fmt}; this one reads {store.FORMAT_VERSION}); "
            "upgrade light-ml-registry"
        )
    if fmt == store.FORMAT_VERSION:
        return MigrateResult(False, f"{path} is already an event-sourced registry; nothing to do")

    backup = _backup(path)
    conn = store.connect(path)
    try:
        conn.execute("PRAGMA foreign_keys = OFF")  # checked once before COMMIT
        store.begin_write(conn)
        try:
            if store.registry_format(conn) != 1:  # another process migrated it meanwhile
                conn.execute("ROLLBACK")
                return MigrateResult(False, f"{path} was migrated meanwhile; nothing to do", backup)
            result = _migrate_in_transaction(conn)
            problems = conn.execute("PRAGMA foreign_key_check").fetchall()
            if problems:
                raise NotARegistryError(f"migration produced broken references: {problems[:3]}")
            store.commit_write(conn)
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            conn.execute("PRAGMA journal_mode = WAL")
    finally:
        conn.close()
    result.backup = backup
    check = verify(path)
    if not check.ok:  # would be a bug in this module: say so loudly, the backup is intact
        raise NotARegistryError(f"migration did not verify ({check.differences}); the original is at {backup}")
    return result


def _backup(path: Path) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    backup = store.migration_backup_name(path, stamp)
    source = sqlite3.connect(store.readonly_uri(path), uri=True)
    target = sqlite3.connect(backup)
    try:
        source.backup(target)  # a consistent copy even if another process is writing
    finally:
        target.close()
        source.close()
    return backup


def _migrate_in_transaction(conn: sqlite3.Connection) -> MigrateResult:
    warnings: list[str] = []
    runs = _rows(conn, "run", ["id", "run_name", "description", "metadata", "created_at"], {})
    models = _rows(conn, "model", ["id", "model_name", "path", "parent_id", "notes", "hidden", "run_id"],
                   {"notes": None, "hidden": 0})
    checkpoints = _rows(conn, "checkpoint", ["id", "model_id", "step", "path", "created_at"], {})
    metrics = _rows(conn, "metrics", ["id", "model_id", "checkpoint_id", "family", "metric_name", "value"], {})
    scores = {
        r["metric_id"]: r
        for r in _rows(conn, "detailed_scores", ["metric_id", "scores", "n_samples"], {"n_samples": None})
    }
    rules = _rows(conn, "registry_schema", ["family", "metric_name"], {})

    for table in OLD_TABLES:
        conn.execute(f'DROP TABLE IF EXISTS "{table}"')
    store.create_schema(conn)
    tx = WriteTransaction(conn)
    tx.actor = Actor.current("migrate")

    for r in runs:
        if r["id"] is None or not isinstance(r["run_name"], str) or not r["run_name"].strip():
            raise NotARegistryError(
                f"run with id {r['id']!r} has no name; name it (UPDATE run SET run_name = '...' "
                f"WHERE id = {r['id']!r}) and migrate again"
            )
    run_ids = {r["id"] for r in runs}
    _emit_checked(tx, [(ev.RUN_CREATED, {
        "run_id": r["id"], "run_name": r["run_name"], "description": r["description"],
        "metadata": r["metadata"], "created_at": r["created_at"],
    }) for r in runs])

    model_ids = {m["id"] for m in models}
    for m in models:
        if m["run_id"] is not None and m["run_id"] not in run_ids:
            warnings.append(f"model {m['model_name']!r} (id {m['id']}) pointed to missing run {m['run_id']}: run cleared")
            m["run_id"] = None
        if m["parent_id"] is not None and m["parent_id"] not in model_ids:
            warnings.append(f"model {m['model_name']!r} (id {m['id']}) had missing parent {m['parent_id']}: cleared")
            m["parent_id"] = None
    _emit_checked(tx, [(ev.MODEL_REGISTERED, {
        "model_id": m["id"], "model_name": m["model_name"], "path": m["path"], "parent_id": m["parent_id"],
        "run_id": m["run_id"], "notes": m["notes"], "hidden": int(m["hidden"] or 0),
    }) for m in _parents_first(models, warnings)])

    kept_checkpoints = {}
    for c in checkpoints:
        if c["model_id"] not in model_ids:
            warnings.append(f"checkpoint id {c['id']} belongs to missing model {c['model_id']}: left in the backup only")
            continue
        kept_checkpoints[c["id"]] = c
    _emit_checked(tx, [(ev.CHECKPOINT_REGISTERED, {
        "checkpoint_id": c["id"], "model_id": c["model_id"], "step": c["step"], "path": c["path"],
        "created_at": c["created_at"],
    }) for c in kept_checkpoints.values()])

    n_metrics, kept_scores = _emit_metrics(tx, metrics, model_ids, kept_checkpoints, scores, warnings)
    for metric_id in sorted(set(scores) - kept_scores):
        warnings.append(f"detailed scores of metric id {metric_id}, which was not kept or does not exist: "
                        "left in the backup only")
    _emit_checked(tx, [(ev.SCHEMA_RULE_ADDED, {"family": r["family"], "metric_name": r["metric_name"]}) for r in rules])
    counts = {"runs": len(runs), "models": len(models), "checkpoints": len(kept_checkpoints),
              "metrics": n_metrics, "detailed_scores": len(kept_scores), "schema_rules": len(rules)}
    return MigrateResult(True, "migrated", counts=counts, warnings=warnings)


def _emit_checked(tx: WriteTransaction, items: list[tuple[str, dict[str, Any]]]) -> None:
    """Check each synthesized payload against its schema before it is written: a 1.x value
    the new format cannot hold stops the migration (nothing committed) with a clear message."""
    for event_type, payload in items:
        problem = payload_problem(event_type, payload)
        if problem is not None:
            raise NotARegistryError(
                f"cannot migrate: a {event_type} built from the 1.x rows is invalid at {problem}; "
                "fix that row and migrate again"
            )
    tx.emit(items)


def _parents_first(models: list[dict], warnings: list[str]) -> list[dict]:
    """Order models so that each parent is registered before its children; break cycles."""
    by_id = {m["id"]: m for m in models}
    ordered, placed = [], set()
    remaining = sorted(models, key=lambda m: m["id"])
    while remaining:
        progress = [m for m in remaining if m["parent_id"] is None or m["parent_id"] in placed]
        if not progress:  # a parent cycle: cut it at the smallest id
            cut = remaining[0]
            warnings.append(f"model {cut['model_name']!r} (id {cut['id']}) was in a parent cycle: parent cleared")
            by_id[cut["id"]]["parent_id"] = None
            continue
        for m in progress:
            placed.add(m["id"])
            ordered.append(m)
        remaining = [m for m in remaining if m["id"] not in placed]
    return ordered


def _emit_metrics(tx: WriteTransaction, metrics: list[dict], model_ids: set[int], checkpoints: dict,
                  scores: dict, warnings: list[str]) -> tuple[int, set[int]]:
    """Emit the metrics; returns how many were inserted and the ids whose scores were kept."""
    targets: dict[tuple, list[dict]] = {}
    seen: dict[tuple, int] = {}
    overwrites: list[tuple[tuple, dict, int]] = []
    for m in metrics:
        if (m["model_id"] is None) == (m["checkpoint_id"] is None):
            warnings.append(f"metric id {m['id']} has {'both' if m['model_id'] else 'neither'} model_id and "
                            "checkpoint_id: left in the backup only")
            continue
        if m["checkpoint_id"] is not None:
            if m["checkpoint_id"] not in checkpoints:
                warnings.append(f"metric id {m['id']} belongs to missing checkpoint {m['checkpoint_id']}: left in the backup only")
                continue
            owner = checkpoints[m["checkpoint_id"]]
            target = (owner["model_id"], m["checkpoint_id"], owner["step"])
        else:
            if m["model_id"] not in model_ids:
                warnings.append(f"metric id {m['id']} belongs to missing model {m['model_id']}: left in the backup only")
                continue
            target = (m["model_id"], None, None)
        value = m["value"]
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            warnings.append(f"metric id {m['id']} has a value that is not a finite number ({value!r}): "
                            "left in the backup only")
            continue
        key = (target[0], target[1], m["family"], m["metric_name"])
        item = {"metric_id": m["id"], "family": m["family"], "metric_name": m["metric_name"], "value": m["value"]}
        s = scores.get(m["id"])
        if s is not None and not is_json_array_text(s["scores"]):
            warnings.append(f"detailed scores of metric id {m['id']} are not a JSON array: left in the backup only")
        elif s is not None:
            item["scores"], item["n_samples"] = s["scores"], s["n_samples"]
        if key in seen:  # 1.x had no unique rule: a later duplicate becomes an overwrite of the first
            warnings.append(f"metric id {m['id']} duplicates id {seen[key]} ({m['family']}/{m['metric_name']}): "
                            "kept as an overwrite of the first")
            overwrites.append((target, item, seen[key]))
            continue
        seen[key] = m["id"]
        targets.setdefault(target, []).append(item)
    total = 0
    for (model_id, checkpoint_id, step), items in targets.items():
        _emit_checked(tx, [(ev.METRIC_INSERTED, {"model_id": model_id, "checkpoint_id": checkpoint_id, "step": step,
                                       "metrics": items})])
        total += len(items)
    values = {i["metric_id"]: i["value"] for items in targets.values() for i in items}
    for (model_id, checkpoint_id, step), item, first_id in overwrites:
        _emit_checked(tx, [(ev.METRIC_OVERWRITTEN, {"model_id": model_id, "checkpoint_id": checkpoint_id, "step": step,
                                          "metrics": [{**item, "metric_id": first_id,
                                                       "previous_value": values[first_id]}]})])
        values[first_id] = item["value"]
    kept_scores = {i["metric_id"] for items in targets.values() for i in items if "scores" in i}
    kept_scores |= {item["metric_id"] for _, item, _ in overwrites if "scores" in item}  # now the first's
    return total, kept_scores
