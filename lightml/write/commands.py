"""Write commands: each returns a function run by the writer inside BEGIN IMMEDIATE.

A command reads the current state from the projections, decides (dedupe, name -> id,
next ids), and appends events with ``tx.emit``. Input that can be checked without the
database is checked by the caller before the command is queued (lightml.write.validation).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, NamedTuple

from lightml.log import events as ev
from lightml.read import resolve
from lightml.write import symlinks
from lightml.errors import ConflictError, InvalidInputError, NotFoundError, SchemaViolationError
from lightml.results import METRIC_INSERTED, METRIC_SKIPPED, METRIC_UPDATED
from lightml.results import DeleteResult
from lightml.log.writer import Command, WriteTransaction


def sqlite_time(at: str) -> str:
    """Event time -> ``run.created_at`` as LightML 1.x wrote it (SQLite's CURRENT_TIMESTAMP)."""
    return f"{at[:10]} {at[11:19]}"


def iso_time(at: str) -> str:
    """Event time -> ``checkpoint.created_at`` as LightML 1.x wrote it (naive UTC isoformat)."""
    return at.rstrip("Z")


def _run_id(tx: WriteTransaction, run_name: str | None) -> int:
    if run_name is None:
        raise InvalidInputError("this needs a run: open the handle with run_name=...")
    key = ("run", run_name)
    rid = tx.cache.get(key)
    if rid is None:
        rid = tx.cache[key] = resolve.require_run_id(tx.conn, run_name)
    return rid


def _optional_run_id(tx: WriteTransaction, run_name: str | None) -> int | None:
    """The run's id, or None for a handle without a run (names then resolve across runs)."""
    return None if run_name is None else _run_id(tx, run_name)


def _model_id(tx: WriteTransaction, run_name: str | None, model_name: str) -> int:
    if run_name is not None and ("run", run_name) not in tx.cache and resolve.run_id(tx.conn, run_name) is None:
        # e.g. the default run before its first write: say where the model is, not that a run is missing
        raise resolve.not_in_run(tx.conn, model_name, run_name)
    rid = _run_id(tx, run_name)
    key = ("model", rid, model_name)
    mid = tx.cache.get(key)
    if mid is None:
        mid = tx.cache[key] = resolve.model_id(tx.conn, model_name, rid, run_name)
    return mid


def create_run(run_name: str, description: str | None = None, metadata: str | None = None) -> Command:
    def command(tx: WriteTransaction) -> int:
        existing = resolve.run_id(tx.conn, run_name)
        if existing is not None:
            return existing
        rid = tx.next_id("run")
        at = tx.now()
        tx.emit([(ev.RUN_CREATED, {
            "run_id": rid, "run_name": run_name, "description": description,
            "metadata": metadata, "created_at": sqlite_time(at),
        })], at)
        return rid

    return command


def register_model(
    run_name: str | None, model_name: str, path: str, parent_name: str | None,
    parent_id: int | None, registry_dir: Path, create_run_if_new: bool = False,
) -> Command:
    """Register the model (or return its id). With ``create_run_if_new`` the run is created
    in the same transaction, so a refused registration leaves no empty run behind."""

    def command(tx: WriteTransaction) -> int:
        conn = tx.conn
        if create_run_if_new:
            create_run(run_name)(tx)
        rid = _run_id(tx, run_name)
        row = conn.execute("SELECT id FROM model WHERE model_name = ? AND run_id = ?", (model_name, rid)).fetchone()
        if row:
            return row[0]  # idempotent by (name, run)
        parent = None
        if parent_name is not None:
            parent = resolve.parent_id(conn, parent_name, rid)
        if parent_id is not None:
            if not _live(conn, parent_id):
                raise NotFoundError(f"parent model id {parent_id} not found")
            if parent is not None and parent != parent_id:
                raise InvalidInputError(
                    f"parent_name {parent_name!r} is model id {parent}, not parent_id {parent_id}"
                )
            parent = parent_id
        mid = tx.next_id("model")
        tx.emit([(ev.MODEL_REGISTERED, {
            "model_id": mid, "model_name": model_name, "path": path, "parent_id": parent,
            "run_id": rid, "notes": None, "hidden": 0,
        })])
        tx.after_commit.append(lambda: symlinks.create(registry_dir, model_name, mid, path))
        return mid

    return command


def register_checkpoint(run_name: str | None, model_name: str, step: int, path: str) -> Command:
    def command(tx: WriteTransaction) -> int:
        conn = tx.conn
        mid = _model_id(tx, run_name, model_name)
        row = conn.execute(
            "SELECT id FROM checkpoint WHERE model_id = ? AND step = ? AND path = ?", (mid, step, path)
        ).fetchone()
        if row:
            return row[0]
        cid = tx.next_id("checkpoint")
        at = tx.now()
        tx.emit([(ev.CHECKPOINT_REGISTERED, {
            "checkpoint_id": cid, "model_id": mid, "step": step, "path": path, "created_at": iso_time(at),
        })], at)
        return cid

    return command


class MetricInput(NamedTuple):
    """One validated metric to log: scores already encoded as JSON text. (A named tuple:
    bulk calls build tens of thousands, and a tuple is several times cheaper to create
    than a frozen dataclass.)"""

    family: str
    metric_name: str
    value: float
    scores: str | None = None
    n_samples: int | None = None
    doc_keys: str | None = None

    def payload(self, metric_id: int) -> dict[str, Any]:
        """The event payload item; scores only when there are some (keeps bulk events small)."""
        item = {"metric_id": metric_id, "family": self.family, "metric_name": self.metric_name, "value": self.value}
        if self.scores is not None:
            item["scores"] = self.scores
            item["n_samples"] = self.n_samples
        if self.doc_keys is not None:
            item["doc_keys"] = self.doc_keys
        return item


class ModelTarget(NamedTuple):  # named tuples: made once per logged metric, cheaply
    run_name: str | None
    model_name: str


class CheckpointTarget(NamedTuple):
    checkpoint_id: int


def _check_schema(tx: WriteTransaction, items: list[MetricInput]) -> None:
    allowed = tx.cache.get("schema")
    if allowed is None:
        allowed = tx.cache["schema"] = set(tx.conn.execute("SELECT family, metric_name FROM registry_schema"))
    if not allowed:
        return  # no rules: anything goes
    for item in items:
        if (item.family, item.metric_name) not in allowed:
            raise SchemaViolationError(
                f"metric {item.family}/{item.metric_name} not found in registry schema "
                "(add it with add_schema_rule, or log one of the registered metrics)"
            )


def _existing_metrics(conn, key_column: str, key: int, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], tuple]:
    """(family, metric_name) -> (metric id, value) for the pairs that already exist.

    The pairs go in as one JSON array, and each is looked up in the unique index: a
    query linear in the pairs asked for, however many metrics the target already has.
    A bulk call asks first which of its families the target has at all (new families,
    the usual case, then cost one probe each instead of one per metric).
    """
    if len(pairs) == 1:  # a single log_model_metric: one plain indexed lookup
        return _existing_metrics_one_by_one(conn, key_column, key, pairs)
    families = list({family for family, _ in pairs})
    if len(families) * 4 <= len(pairs):
        families_json = _json_names(families)
        if families_json is None:
            return _existing_metrics_one_by_one(conn, key_column, key, pairs)
        present = {family for (family,) in conn.execute(
            "SELECT wanted.value FROM json_each(?) AS wanted WHERE EXISTS (SELECT 1 FROM metrics AS m "
            f"WHERE m.{key_column} = ? AND m.{key_column} IS NOT NULL AND m.family = wanted.value)",
            (families_json, key))}
        if not present:
            return {}
        if len(present) < len(families):
            pairs = {pair for pair in pairs if pair[0] in present}
    pairs_json = _json_names(list(pairs))
    if pairs_json is None:
        return _existing_metrics_one_by_one(conn, key_column, key, pairs)
    sql = (
        "SELECT m.family, m.metric_name, m.id, m.value FROM json_each(?) AS wanted CROSS JOIN metrics AS m "
        f"WHERE m.{key_column} = ? AND m.{key_column} IS NOT NULL "
        "AND m.family = json_extract(wanted.value, '$[0]') AND m.metric_name = json_extract(wanted.value, '$[1]')"
    )
    rows = conn.execute(sql, (pairs_json, key))
    return {(family, name): (mid, value) for family, name, mid, value in rows}


def _json_names(values: list) -> str | None:
    """The JSON text of names (or name pairs) for a lookup through json_each, or None when
    a name holds a NUL character, which SQLite's JSON functions do not give back intact
    (names from the API never do: only a merged 1.x file can bring one)."""
    text = json.dumps(values, ensure_ascii=False)  # a lone surrogate fails here, in its own call
    return None if "\\u0000" in text else text


def _existing_metrics_one_by_one(conn, key_column: str, key: int, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], tuple]:
    """As ``_existing_metrics``, with one query per pair."""
    sql = (f"SELECT id, value FROM metrics WHERE {key_column} = ? AND {key_column} IS NOT NULL "
           "AND family = ? AND metric_name = ?")
    existing = {}
    for family, name in pairs:
        row = conn.execute(sql, (key, family, name)).fetchone()
        if row is not None:
            existing[(family, name)] = row
    return existing


class LogMetrics:
    """Insert new metrics, skip existing ones, or overwrite them when ``force``.

    The writer calls ``decide`` for a run of queued LogMetrics commands and appends all of
    their events in one go (one INSERT per table for the whole group instead of several per
    call: what makes many concurrent small logs cheap). ``decide`` writes nothing and checks
    everything before it touches the transaction, so a command that fails leaves no trace.
    Metrics decided earlier in the same group are seen through ``tx.pending_metrics``, and
    ``prefetch`` looks up what the whole run will ask for in one query per target.
    """

    deferrable = True

    def __init__(self, target: ModelTarget | CheckpointTarget, items: list[MetricInput], force: bool,
                 single: bool) -> None:
        self.target, self.items, self.force, self.single = target, items, force, single

    def __call__(self, tx: WriteTransaction) -> Any:
        result = self.decide(tx)
        tx.flush()
        return result

    def _resolve(self, tx: WriteTransaction) -> tuple[int, int | None, int | None, str, int]:
        """(model id, checkpoint id, step, key column, key) of the target, looked up once
        per transaction (``tx.cache`` forgets it when a model or checkpoint changes)."""
        target = self.target
        cache_key = ("target", target)
        resolved = tx.cache.get(cache_key)
        if resolved is None:
            if isinstance(target, CheckpointTarget):
                model_id, step = resolve.checkpoint_owner(tx.conn, target.checkpoint_id)
                resolved = (model_id, target.checkpoint_id, step, "checkpoint_id", target.checkpoint_id)
            else:
                model_id = _model_id(tx, target.run_name, target.model_name)
                resolved = (model_id, None, None, "model_id", model_id)
            tx.cache[cache_key] = resolved
        return resolved

    @staticmethod
    def prefetch(tx: WriteTransaction, commands: list["LogMetrics"]) -> None:
        """Look up, in one query per target, the metrics a run of commands will ask about.

        A target that does not resolve is left out: its command's ``decide`` raises the
        error itself. The answers are valid until the next ``tx.flush``, which forgets them.
        """
        wanted: dict[tuple[str, int], set[tuple[str, str]]] = {}
        for command in commands:
            try:
                _, _, _, key_column, key = command._resolve(tx)
            except Exception:
                continue
            wanted.setdefault((key_column, key), set()).update(
                (item.family, item.metric_name) for item in command.items)
        for (key_column, key), pairs in wanted.items():
            try:
                existing = _existing_metrics(tx.conn, key_column, key, pairs)
            except Exception:  # e.g. a name SQLite cannot take: each command meets the error itself
                continue
            tx.prefetched[(key_column, key)] = (pairs, existing)

    def decide(self, tx: WriteTransaction) -> Any:
        items = self.items
        model_id, checkpoint_id, step, key_column, key = self._resolve(tx)
        _check_schema(tx, items)

        pairs = {item[:2] for item in items}  # (family, metric_name)
        known = tx.prefetched.get((key_column, key))
        if known is not None and pairs <= known[0]:
            existing = known[1]
        else:
            existing = _existing_metrics(tx.conn, key_column, key, pairs)
        pending = tx.pending_metrics.setdefault((key_column, key), {})
        next_metric_id = tx.peek_id("metric")
        inserted, overwritten, skipped = [], [], 0
        # Bulk calls run this loop tens of thousands of times: plain tuples and dicts.
        for item in items:
            pair = item[:2]
            found = pending.get(pair) or existing.get(pair)
            if found is None:
                if item.scores is None and item.doc_keys is None:
                    metric = {"metric_id": next_metric_id, "family": item.family,
                              "metric_name": item.metric_name, "value": item.value}
                else:
                    metric = item.payload(next_metric_id)
                inserted.append(metric)
                pending[pair] = (next_metric_id, item.value)
                next_metric_id += 1
            elif self.force:
                overwritten.append({**item.payload(found[0]), "previous_value": found[1]})
                pending[pair] = (found[0], item.value)
            else:
                skipped += 1
        if inserted:
            tx.take_ids("metric", next_metric_id - 1)
            tx.defer(ev.METRIC_INSERTED,
                     {"model_id": model_id, "checkpoint_id": checkpoint_id, "step": step, "metrics": inserted})
        if overwritten:
            tx.defer(ev.METRIC_OVERWRITTEN,
                     {"model_id": model_id, "checkpoint_id": checkpoint_id, "step": step, "metrics": overwritten})
        if self.single:
            return METRIC_INSERTED if inserted else METRIC_UPDATED if overwritten else METRIC_SKIPPED
        return {"inserted": len(inserted), "updated": len(overwritten), "skipped": skipped}


def _snapshot(conn, model_id: int) -> dict[str, Any]:
    model_row = conn.execute(
        "SELECT id, model_name, path, parent_id, notes, hidden, run_id FROM model WHERE id = ?", (model_id,)
    ).fetchone()
    keys = ("id", "model_name", "path", "parent_id", "notes", "hidden", "run_id")
    checkpoints = [
        dict(zip(("id", "model_id", "step", "path", "created_at"), row))
        for row in conn.execute(
            "SELECT id, model_id, step, path, created_at FROM checkpoint WHERE model_id = ? ORDER BY id", (model_id,)
        )
    ]
    metric_rows = conn.execute(
        "SELECT id, model_id, checkpoint_id, family, metric_name, value FROM metrics WHERE model_id = ? "
        "UNION ALL SELECT m.id, m.model_id, m.checkpoint_id, m.family, m.metric_name, m.value "
        "FROM metrics m JOIN checkpoint c ON c.id = m.checkpoint_id WHERE c.model_id = ? ORDER BY 1",
        (model_id, model_id),
    ).fetchall()
    metrics = [dict(zip(("id", "model_id", "checkpoint_id", "family", "metric_name", "value"), r)) for r in metric_rows]
    scores = [
        {"metric_id": mid, "scores": text, "n_samples": n, **({"doc_keys": keys} if keys is not None else {})}
        for mid, text, n, keys in conn.execute(
            "SELECT d.metric_id, d.scores, d.n_samples, k.doc_keys FROM detailed_scores d "
            "LEFT JOIN score_docs k ON k.metric_id = d.metric_id WHERE d.metric_id IN "
            "(SELECT id FROM metrics WHERE model_id = ? UNION ALL "
            " SELECT m.id FROM metrics m JOIN checkpoint c ON c.id = m.checkpoint_id WHERE c.model_id = ?) "
            "ORDER BY d.metric_id",
            (model_id, model_id),
        )
    ]
    children = [r[0] for r in conn.execute("SELECT id FROM model WHERE parent_id = ? ORDER BY id", (model_id,))]
    return {
        "model": dict(zip(keys, model_row)), "checkpoints": checkpoints, "metrics": metrics,
        "detailed_scores": scores, "children": children,
    }


def delete_model(run_name: str | None, model_name: str, registry_dir: Path, model_id: int | None = None) -> Command:
    """Delete the model (``model_id`` when the caller already resolved it, as prune does)."""

    def command(tx: WriteTransaction) -> DeleteResult:
        conn = tx.conn
        if model_id is not None:
            mid = model_id
        else:
            mid = resolve.model_id(conn, model_name, _optional_run_id(tx, run_name), run_name)
        snapshot = _snapshot(conn, mid)
        model = snapshot["model"]
        (event,) = tx.emit([(ev.MODEL_DELETED, {
            "model_id": mid, "model_name": model_name, "run_id": model["run_id"], "snapshot": snapshot,
        })])
        # Same name, same path in another run: that model shares the link, keep it.
        shared = conn.execute(
            "SELECT 1 FROM model WHERE model_name = ? AND path = ? AND id != ?", (model_name, model["path"], mid)
        ).fetchone()
        if not shared:
            tx.after_commit.append(lambda: symlinks.remove(registry_dir, model_name, mid, model["path"]))
        return DeleteResult(model_name, len(snapshot["checkpoints"]), len(snapshot["metrics"]), event.seq)

    return command


def restore_model(run_name: str | None, model_name: str, registry_dir: Path) -> Command:
    """Undo the latest delete of the model: rows, scores and ids back, children re-linked."""

    def command(tx: WriteTransaction) -> int:
        conn = tx.conn
        run_ids = _run_ids_for_restore(conn, run_name)
        latest = resolve.latest_deletes(conn, model_name, None)
        if run_ids is not None:
            latest = {run: found for run, found in latest.items() if run in run_ids}
        if not latest:
            where = f" in run {run_name!r}" if run_name is not None else ""
            raise NotFoundError(f"no deleted model {model_name!r}{where} to restore")
        restorable = {
            run: found for run, found in latest.items()
            if not conn.execute("SELECT 1 FROM model WHERE id = ?", (found[1]["model_id"],)).fetchone()
        }
        if not restorable:
            raise ConflictError(f"model {model_name!r} is not deleted (it was restored already)")
        if run_name is not None and len(restorable) > 1:
            # The run was pruned and made again, and the model deleted from both: the latest delete.
            restorable = dict([max(restorable.items(), key=lambda item: item[1][0])])
        if len(restorable) > 1:
            names = sorted(repr(_run_name_live_or_pruned(conn, r)) for r in restorable)
            raise ConflictError(f"deleted model {model_name!r} exists in several runs ({', '.join(names)}); say which run")
        deleted_seq, payload = next(iter(restorable.values()))
        snapshot = payload["snapshot"]
        model = dict(snapshot["model"])
        restored_run = []
        if model["run_id"] is not None and not conn.execute("SELECT 1 FROM run WHERE id = ?", (model["run_id"],)).fetchone():
            # Prune removed its run. If a run of that name exists again (a script opened it),
            # the model goes back into that one; otherwise the old run comes back with it.
            again = conn.execute("SELECT id FROM run WHERE run_name = ?",
                                 (_run_name_live_or_pruned(conn, model["run_id"]),)).fetchone()
            if again is not None:
                model["run_id"] = again[0]
            else:
                restored_run = [_run_to_restore(conn, model["run_id"], model_name)]
        if conn.execute(
            "SELECT 1 FROM model WHERE model_name = ? AND run_id IS ?", (model_name, model["run_id"])
        ).fetchone():
            raise ConflictError(
                f"a model named {model_name!r} was registered in its run since the delete; "
                "delete or rename that one first"
            )
        model["parent_id"] = _parent_to_restore(conn, model)
        mid = model["id"]
        relinked = sorted(
            child for child in _children_to_relink(conn, mid, snapshot["children"])
            if conn.execute("SELECT 1 FROM model WHERE id = ? AND parent_id IS NULL", (child,)).fetchone()
            and not _reparented_since(conn, child, deleted_seq)
        )
        tx.emit(restored_run + [(ev.MODEL_RESTORED, {
            "model_id": mid, "deleted_seq": deleted_seq, "snapshot": {**snapshot, "model": model},
            "relinked_children": relinked,
        })])
        if model["path"]:
            tx.after_commit.append(lambda: symlinks.create(registry_dir, model_name, mid, model["path"]))
        return mid

    return command


def _run_ids_for_restore(conn, run_name: str | None) -> set[int] | None:
    """The ids a run name has had: the live run's, and those of runs of that name prune
    removed (a model deleted from one of them is restored too). None: any run."""
    if run_name is None:
        return None
    ids = {row[0] for row in conn.execute("SELECT id FROM run WHERE run_name = ?", (run_name,))}
    ids |= {row[0] for row in conn.execute(
        "SELECT json_extract(payload, '$.run_id') FROM events WHERE type = ? AND json_extract(payload, '$.run_name') = ?",
        (ev.RUN_DELETED, run_name))}
    if not ids:
        raise NotFoundError(f"no run {run_name!r}, live or pruned")
    return ids


def _run_name_live_or_pruned(conn, run_id: int | None) -> str | None:
    row = conn.execute("SELECT run_name FROM run WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        row = conn.execute(
            "SELECT json_extract(payload, '$.run_name') FROM events WHERE type = ? "
            "AND json_extract(payload, '$.run_id') = ? ORDER BY seq DESC LIMIT 1", (ev.RUN_DELETED, run_id)
        ).fetchone()
    return row[0] if row else None


def _run_to_restore(conn, run_id: int, model_name: str) -> tuple[str, dict[str, Any]]:
    """The ``run_restored`` event that brings back a run prune removed (the model's own)."""
    row = conn.execute(
        "SELECT seq, payload FROM events WHERE type = ? AND json_extract(payload, '$.run_id') = ? "
        "ORDER BY seq DESC LIMIT 1", (ev.RUN_DELETED, run_id)).fetchone()
    if row is None:
        raise NotFoundError(f"the run of deleted model {model_name!r} no longer exists")
    snapshot = json.loads(row[1])["snapshot"]
    return (ev.RUN_RESTORED, {"run_id": run_id, "deleted_seq": row[0], "snapshot": snapshot})


def _reparented_since(conn, model_id: int, seq: int) -> bool:
    """Was the model given a parent (or deliberately none) after event ``seq``? Then a
    restore must not re-link it to the restored model."""
    return conn.execute(
        "SELECT 1 FROM events WHERE seq > ? AND type = ? AND json_extract(payload, '$.model_id') = ? LIMIT 1",
        (seq, ev.MODEL_REPARENTED, model_id)).fetchone() is not None


def _live(conn, model_id: int | None) -> bool:
    return model_id is not None and conn.execute("SELECT 1 FROM model WHERE id = ?", (model_id,)).fetchone() is not None


def _parent_to_restore(conn, model: dict[str, Any]) -> int | None:
    """The restored model's parent: the one it had, if it is live. A parent's own delete may
    have unlinked it before it was deleted itself; then the parent whose delete did that."""
    parent = model["parent_id"]
    if parent is None:
        row = conn.execute(
            "SELECT json_extract(e.payload, '$.model_id') FROM events e, "
            "json_each(e.payload, '$.snapshot.children') AS child "
            "WHERE e.type = ? AND child.value = ? ORDER BY e.seq DESC LIMIT 1",
            (ev.MODEL_DELETED, model["id"]),
        ).fetchone()
        parent = row[0] if row else None
    return parent if _live(conn, parent) else None


def _children_to_relink(conn, model_id: int, unlinked: list[int]) -> set[int]:
    """Children the delete unlinked, and models deleted while still this model's children
    (restored meanwhile without it, since it was gone). ``edits._relinkable_by_a_restore``
    states the same rule from the child's side: change both together."""
    deleted_children = {
        child for (child,) in conn.execute(
            "SELECT json_extract(payload, '$.model_id') FROM events "
            "WHERE type = ? AND json_extract(payload, '$.snapshot.model.parent_id') = ?",
            (ev.MODEL_DELETED, model_id),
        )
    }
    return set(unlinked) | deleted_children


def add_schema_rules(rules: list[tuple[str, str]]) -> Command:
    def command(tx: WriteTransaction) -> int:
        existing = set(tx.conn.execute("SELECT family, metric_name FROM registry_schema"))
        new = [r for r in dict.fromkeys(rules) if r not in existing]
        if new:
            tx.emit([(ev.SCHEMA_RULE_ADDED, {"family": f, "metric_name": m}) for f, m in new])
        return len(new)

    return command
