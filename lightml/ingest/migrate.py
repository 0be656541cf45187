"""Upgrading a LightML 1.x database (read tables only) to the event-sourced format.

The 1.x rows are turned into the events that would have produced them (ids, timestamps
and values carried over), the read tables are rebuilt from those events, and ``verify``
must pass afterwards. A timestamped backup of the original file is written first; rows
that cannot be represented (a metric whose model is gone, a duplicated metric) are
reported, and stay in the backup.

The events are built with the payload constructors and appended in the one transaction
``log.legacy_upgrade`` opens on the 1.x file (the writer's commands assign new ids, and the
file is not a registry until that transaction commits); the 1.x rows are read through
``read.legacy_tables``, as merge reads a 1.x source.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lightml.errors import NotARegistryError
from lightml.ingest.lineage_order import parents_first
from lightml.log import events as ev
from lightml.log import network_fs
from lightml.log.engine import engine_for
from lightml.log import legacy_upgrade, store
from lightml.log.replay import verify
from lightml.log.schemas import is_json_array_text, payload_problem
from lightml.log.transaction import WriteTransaction
from lightml.read import legacy_tables
from lightml.read.legacy_tables import Checkpoint, Metric, Model, Run, SchemaRule, Scores


@dataclass
class MigrateResult:
    migrated: bool
    message: str
    backup: Path | None = None
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


@dataclass
class _OldRows:
    """Every row of a 1.x file, as ``legacy_tables`` reads it."""

    runs: list[Run]
    models: list[Model]
    checkpoints: list[Checkpoint]
    metrics: list[Metric]
    scores: dict[Any, Scores]  # by metric id
    rules: list[SchemaRule]

    @classmethod
    def read(cls, conn) -> "_OldRows":
        return cls(
            runs=legacy_tables.rows(conn, Run), models=legacy_tables.rows(conn, Model),
            checkpoints=legacy_tables.rows(conn, Checkpoint), metrics=legacy_tables.rows(conn, Metric),
            scores={row.metric_id: row for row in legacy_tables.rows(conn, Scores)},
            rules=legacy_tables.rows(conn, SchemaRule),
        )


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

    network_fs.refuse_writing(engine_for(path))  # before even the backup is written
    backup = legacy_upgrade.backup_copy(path, datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ"))
    result = legacy_upgrade.upgrade_in_place(path, _OldRows.read, legacy_tables.V1_TABLES, _write_events)
    if result is None:  # another process migrated it meanwhile
        return MigrateResult(False, f"{path} was migrated meanwhile; nothing to do", backup)
    result.backup = backup
    check = verify(path)
    if not check.ok:  # would be a bug in this module: say so loudly, the backup is intact
        raise NotARegistryError(f"migration did not verify ({check.differences}); the original is at {backup}")
    return result


def _write_events(tx: WriteTransaction, old: _OldRows) -> MigrateResult:
    """The events that would have produced the 1.x rows, ids and times carried over."""
    warnings: list[str] = []
    for r in old.runs:
        if r.id is None or not isinstance(r.run_name, str) or not r.run_name.strip():
            raise NotARegistryError(
                f"run with id {r.id!r} has no name; name it (UPDATE run SET run_name = '...' "
                f"WHERE id = {r.id!r}) and migrate again"
            )
    run_ids = {r.id for r in old.runs}
    _emit_checked(tx, [ev.run_created(run_id=r.id, run_name=r.run_name, description=r.description,
                                      metadata=r.metadata, created_at=r.created_at) for r in old.runs])

    model_ids = {m.id for m in old.models}
    models = []
    for m in old.models:
        if m.run_id is not None and m.run_id not in run_ids:
            warnings.append(f"model {m.model_name!r} (id {m.id}) pointed to missing run {m.run_id}: run cleared")
            m = m._replace(run_id=None)
        if m.parent_id is not None and m.parent_id not in model_ids:
            warnings.append(f"model {m.model_name!r} (id {m.id}) had missing parent {m.parent_id}: cleared")
            m = m._replace(parent_id=None)
        models.append(m)
    by_id = {m.id: m for m in models}
    order, in_cycle = parents_first({m.id: m.parent_id for m in sorted(models, key=lambda m: m.id)})
    registered = []
    for m in map(by_id.__getitem__, order):
        if m.id in in_cycle:
            warnings.append(f"model {m.model_name!r} (id {m.id}) was in a parent cycle: parent cleared")
            m = m._replace(parent_id=None)
        registered.append(ev.model_registered(model_id=m.id, model_name=m.model_name, path=m.path,
                                              parent_id=m.parent_id, run_id=m.run_id, notes=m.notes,
                                              hidden=int(m.hidden or 0)))
    _emit_checked(tx, registered)

    kept_checkpoints = {}
    for c in old.checkpoints:
        if c.model_id not in model_ids:
            warnings.append(f"checkpoint id {c.id} belongs to missing model {c.model_id}: left in the backup only")
            continue
        kept_checkpoints[c.id] = c
    _emit_checked(tx, [ev.checkpoint_registered(checkpoint_id=c.id, model_id=c.model_id, step=c.step, path=c.path,
                                                created_at=c.created_at) for c in kept_checkpoints.values()])

    n_metrics, kept_scores = _emit_metrics(tx, old.metrics, model_ids, kept_checkpoints, old.scores, warnings)
    for metric_id in sorted(set(old.scores) - kept_scores):
        warnings.append(f"detailed scores of metric id {metric_id}, which was not kept or does not exist: "
                        "left in the backup only")
    _emit_checked(tx, [ev.schema_rule_added(family=r.family, metric_name=r.metric_name) for r in old.rules])
    counts = {"runs": len(old.runs), "models": len(models), "checkpoints": len(kept_checkpoints),
              "metrics": n_metrics, "detailed_scores": len(kept_scores), "schema_rules": len(old.rules)}
    return MigrateResult(True, "migrated", counts=counts, warnings=warnings)


def _emit_checked(tx: WriteTransaction, items: list[ev.Event]) -> None:
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


def _emit_metrics(tx: WriteTransaction, metrics: list[Metric], model_ids: set, checkpoints: dict[Any, Checkpoint],
                  scores: dict[Any, Scores], warnings: list[str]) -> tuple[int, set]:
    """Emit the metrics; returns how many were inserted and the ids of the score rows kept."""
    inserted: dict[tuple, list[ev.MetricItem]] = {}  # (model id, checkpoint id, step) -> items
    seen: dict[tuple, Any] = {}
    overwrites: list[tuple[tuple, Metric, tuple, Any]] = []  # (target, row, its scores, the first's id)
    kept_scores = set()
    for m in metrics:
        if (m.model_id is None) == (m.checkpoint_id is None):
            warnings.append(f"metric id {m.id} has {'both' if m.model_id else 'neither'} model_id and "
                            "checkpoint_id: left in the backup only")
            continue
        if m.checkpoint_id is not None:
            if m.checkpoint_id not in checkpoints:
                warnings.append(f"metric id {m.id} belongs to missing checkpoint {m.checkpoint_id}: left in the backup only")
                continue
            owner = checkpoints[m.checkpoint_id]
            target = (owner.model_id, m.checkpoint_id, owner.step)
        else:
            if m.model_id not in model_ids:
                warnings.append(f"metric id {m.id} belongs to missing model {m.model_id}: left in the backup only")
                continue
            target = (m.model_id, None, None)
        value = m.value
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))
                                  or not math.isfinite(value)):
            warnings.append(f"metric id {m.id} has a value that is not a finite number ({value!r}): "
                            "left in the backup only")
            continue
        key = (target[0], target[1], m.family, m.metric_name)
        s = scores.get(m.id)
        with_scores: tuple = ()  # (scores, n_samples) when they can be kept
        if s is not None and not is_json_array_text(s.scores):
            warnings.append(f"detailed scores of metric id {m.id} are not a JSON array: left in the backup only")
        elif s is not None:
            with_scores = (s.scores, s.n_samples)
            kept_scores.add(m.id)  # a duplicate's become the first's
        if key in seen:  # 1.x had no unique rule: a later duplicate becomes an overwrite of the first
            warnings.append(f"metric id {m.id} duplicates id {seen[key]} ({m.family}/{m.metric_name}): "
                            "kept as an overwrite of the first")
            overwrites.append((target, m, with_scores, seen[key]))
            continue
        seen[key] = m.id
        inserted.setdefault(target, []).append(ev.metric_item(m.id, m.family, m.metric_name, m.value, *with_scores))
    total = 0
    for (model_id, checkpoint_id, step), items in inserted.items():
        _emit_checked(tx, [ev.metric_inserted(model_id=model_id, checkpoint_id=checkpoint_id, step=step,
                                              metrics=items)])
        total += len(items)
    values = {i["metric_id"]: i["value"] for items in inserted.values() for i in items}
    for (model_id, checkpoint_id, step), m, with_scores, first_id in overwrites:
        item = ev.overwritten_item(first_id, m.family, m.metric_name, m.value, *with_scores,
                                   previous_value=values[first_id])
        _emit_checked(tx, [ev.metric_overwritten(model_id=model_id, checkpoint_id=checkpoint_id, step=step,
                                                 metrics=[item])])
        values[first_id] = m.value
    return total, kept_scores
