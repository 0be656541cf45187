"""``merge``: bring another registry's runs, models, checkpoints, metrics and scores into this one.

Everything arrives as ordinary events (origin ``merge``) in one transaction: ids are
assigned by this registry, lineage is kept, and what already exists is matched by its
natural key (run name; model name in its run; checkpoint step and path; family and metric)
and skipped, unless ``force`` overwrites metrics whose value or scores differ. Merging the
same file twice therefore adds nothing. The source is only read; it may be a LightML 1.x
database. Deleted models of the source (in its log only) are not merged.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lightml import commands, resolve, store, symlinks
from lightml import events as ev
from lightml.core import Registry
from lightml.errors import InvalidInputError, NotARegistryError
from lightml.validation import check_doc_keys, check_scores, check_value
from lightml.writer import Command, WriteTransaction


@dataclass
class MergeResult:
    runs_created: int = 0
    models_registered: int = 0
    checkpoints_registered: int = 0
    metrics_inserted: int = 0
    metrics_overwritten: int = 0
    metrics_skipped: int = 0
    metrics_unusable: int = 0  # no numeric value in the source (possible in 1.x databases)
    scores_unusable: int = 0  # scores that are not finite numbers: the value is merged without them

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    def __str__(self) -> str:
        return "\n".join(f"  {key.replace('_', ' '):<24}{value}" for key, value in asdict(self).items())


@dataclass
class _Source:
    runs: list[tuple]
    models: list[tuple]
    checkpoints: list[tuple]
    metrics: list[tuple]
    scores: dict[int, str]
    doc_keys: dict[int, str]


def _read_source(path: str | os.PathLike) -> _Source:
    conn = store.connect_readonly(path)
    try:
        if store.registry_format(conn) is None:
            raise NotARegistryError(f"{path} is an empty database, not a LightML registry")
        conn.execute("BEGIN")  # one consistent snapshot of the source
        has_scores = "detailed_scores" in store.table_names(conn)
        return _Source(
            runs=conn.execute("SELECT id, run_name, description, metadata, created_at FROM run").fetchall(),
            models=conn.execute(f"SELECT id, model_name, path, parent_id, run_id, {_optional(conn)} FROM model "
                                "ORDER BY id").fetchall(),
            checkpoints=conn.execute("SELECT id, model_id, step, path, created_at FROM checkpoint ORDER BY id").fetchall(),
            metrics=conn.execute("SELECT id, model_id, checkpoint_id, family, metric_name, value FROM metrics "
                                 "ORDER BY id").fetchall(),
            scores=dict(conn.execute("SELECT metric_id, scores FROM detailed_scores")) if has_scores else {},
            doc_keys=(dict(conn.execute("SELECT metric_id, doc_keys FROM score_docs"))
                      if "score_docs" in store.table_names(conn) else {}),
        )
    finally:
        conn.close()


def _optional(conn: sqlite3.Connection) -> str:
    """notes and hidden, which LightML 1.2 databases do not have."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(model)")}
    return ", ".join(c if c in columns else f"NULL AS {c}" for c in ("notes", "hidden"))


def _parents_first(models: list[tuple]) -> list[tuple]:
    by_id = {m[0]: m for m in models}
    ordered, placed = [], set()

    def place(model: tuple, seen: frozenset) -> None:
        if model[0] in placed or model[0] in seen:
            return
        parent = by_id.get(model[3])
        if parent is not None:
            place(parent, seen | {model[0]})
        placed.add(model[0])
        ordered.append(model)

    for model in models:
        place(model, frozenset())
    return ordered


def _metric_inputs(rows: list[tuple], src: _Source, result: MergeResult) -> list[commands.MetricInput]:
    # A 1.x source can hold one metric twice (it had no unique index): the later row wins, as
    # in ``migrate``; the earlier one counts as skipped.
    latest = {(row[3], row[4]): row for row in rows}  # rows come in id order
    result.metrics_skipped += len(rows) - len(latest)
    items = []
    for metric_id, _, _, family, name, value in latest.values():
        try:
            number = check_value(value, f"{family}/{name}")
        except InvalidInputError:
            result.metrics_unusable += 1
            continue
        text = src.scores.get(metric_id)
        if text is None:
            items.append(commands.MetricInput(family, name, number))
            continue
        try:
            encoded, n = check_scores(json.loads(text))
            keys = src.doc_keys.get(metric_id)
            doc_keys = None if keys is None else check_doc_keys(json.loads(keys), n)
        except (InvalidInputError, ValueError):  # NaN, text, a broken list: never paired on, so not kept
            result.scores_unusable += 1
            items.append(commands.MetricInput(family, name, number))
            continue
        items.append(commands.MetricInput(family, name, number, encoded, n, doc_keys))
    return items


def _changed_only(conn, key_column: str, key: int, items: list[commands.MetricInput]) -> list[commands.MetricInput]:
    """With force, overwrite only what differs: a second merge of the same file adds nothing."""
    current = {
        (family, name): (value, scores)
        for family, name, value, scores in conn.execute(
            f"SELECT m.family, m.metric_name, m.value, d.scores FROM metrics m "
            f"LEFT JOIN detailed_scores d ON d.metric_id = m.id WHERE m.{key_column} = ?", (key,))
    }
    return [i for i in items if current.get((i.family, i.metric_name)) != (i.value, i.scores)]


def _merge_command(src: _Source, force: bool, registry_dir: Path) -> Command:
    def command(tx: WriteTransaction) -> MergeResult:
        conn, result = tx.conn, MergeResult()
        run_ids: dict[int, tuple[int, str]] = {}
        for rid, name, description, metadata, created_at in src.runs:
            existing = resolve.run_id(conn, name)
            if existing is None:
                existing = tx.next_id("run")
                tx.emit([(ev.RUN_CREATED, {"run_id": existing, "run_name": name, "description": description,
                                           "metadata": metadata, "created_at": created_at})])
                result.runs_created += 1
            run_ids[rid] = (existing, name)

        model_ids: dict[int, int] = {}
        model_keys: dict[int, tuple[str, str]] = {}  # source id -> (run name, model name)
        for mid, name, path, parent, run, notes, hidden in _parents_first(src.models):
            if run not in run_ids:
                continue  # a model without a run (not possible in a sane registry): nothing to key it by
            target_run, run_name = run_ids[run]
            model_keys[mid] = (run_name, name)
            row = conn.execute("SELECT id FROM model WHERE model_name = ? AND run_id = ?", (name, target_run)).fetchone()
            if row:
                model_ids[mid] = row[0]
                continue
            new_id = tx.next_id("model")
            tx.emit([(ev.MODEL_REGISTERED, {
                "model_id": new_id, "model_name": name, "path": path, "parent_id": model_ids.get(parent),
                "run_id": target_run, "notes": notes, "hidden": int(bool(hidden)),
            })])
            if path:
                tx.after_commit.append(lambda n=name, i=new_id, p=path: symlinks.create(registry_dir, n, i, p))
            model_ids[mid] = new_id
            result.models_registered += 1

        checkpoint_ids: dict[int, int] = {}
        for cid, mid, step, path, created_at in src.checkpoints:
            if mid not in model_ids:
                continue
            target_model = model_ids[mid]
            row = conn.execute("SELECT id FROM checkpoint WHERE model_id = ? AND step = ? AND path IS ?",
                               (target_model, step, path)).fetchone()
            if row:
                checkpoint_ids[cid] = row[0]
                continue
            new_id = tx.next_id("checkpoint")
            tx.emit([(ev.CHECKPOINT_REGISTERED, {"checkpoint_id": new_id, "model_id": target_model, "step": step,
                                                 "path": path, "created_at": created_at})])
            checkpoint_ids[cid] = new_id
            result.checkpoints_registered += 1

        by_target: dict[tuple[str, int], list[tuple]] = {}
        for row in src.metrics:
            _, mid, cid, *_ = row
            if mid is not None and mid in model_keys:
                by_target.setdefault(("model_id", mid), []).append(row)
            elif cid is not None and cid in checkpoint_ids:
                by_target.setdefault(("checkpoint_id", cid), []).append(row)
        for (column, source_id), rows in by_target.items():
            items = _metric_inputs(rows, src, result)
            if column == "model_id":
                target: Any = commands.ModelTarget(*model_keys[source_id])
                key = model_ids[source_id]
            else:
                target = commands.CheckpointTarget(checkpoint_ids[source_id])
                key = checkpoint_ids[source_id]
            if force:
                unchanged = len(items)
                items = _changed_only(conn, column, key, items)
                result.metrics_skipped += unchanged - len(items)
            if not items:
                continue
            counts = commands.LogMetrics(target, items, force, single=False)(tx)
            result.metrics_inserted += counts["inserted"]
            result.metrics_overwritten += counts["updated"]
            result.metrics_skipped += counts["skipped"]
        return result

    return command


def merge(db: str | os.PathLike, source: str | os.PathLike, *, force: bool = False) -> MergeResult:
    """Merge registry ``source`` into registry ``db`` (both paths); see the module docstring."""
    target = Path(db)
    if Path(source).exists() and target.exists() and os.path.samefile(source, target):
        raise InvalidInputError("cannot merge a registry into itself")
    src = _read_source(source)
    registry = Registry(db, None, origin="merge", create=False)
    try:
        return registry.run(_merge_command(src, bool(force), registry.registry_dir))
    finally:
        registry.close()
