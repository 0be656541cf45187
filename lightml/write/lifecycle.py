"""A model's life cycle: delete, restore, and prune (delete for good from the read tables,
never from the log), with the relink rule (which parent and children a restore re-links)
stated once.

Each function returns a command the writer runs inside BEGIN IMMEDIATE. Restore and the
relink rule decide from the log's indexes (``model_tombstone``, ``unlinked_child``,
``run_tombstone``, ``model_reparent``; prune's grace: ``model_arrival``), never by reading
payloads across the log: only the one delete being undone is read, by its ``seq``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lightml.defaults import PRUNE_GRACE_SECONDS
from lightml.errors import ConflictError, InvalidInputError, NotFoundError
from lightml.log import events as ev
from lightml.log.writer import Command, WriteTransaction
from lightml.read import params, resolve
from lightml.results import DeleteResult, PruneResult
from lightml.write import ids, symlinks
from lightml.write.validation import check_value, settings_text


def _snapshot(conn, model_id: int) -> dict[str, Any]:
    model_row = conn.execute(
        "SELECT id, model_name, path, parent_id, notes, hidden, run_id FROM model WHERE id = ?", (model_id,)
    ).fetchone()
    checkpoints = [
        ev.checkpoint_row(*row)
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
    metrics = [ev.metric_row(*r) for r in metric_rows]
    scores = [
        ev.scores_row(metric_id, scores, n_samples, doc_keys,
                      None if source[0] is None else ev.samples_location(*source))
        for metric_id, scores, n_samples, doc_keys, *source in conn.execute(
            "SELECT d.metric_id, d.scores, d.n_samples, k.doc_keys, s.path, s.sha256, s.size, s.mtime_ns, s.offsets "
            "FROM detailed_scores d "
            "LEFT JOIN score_docs k ON k.metric_id = d.metric_id "
            "LEFT JOIN score_sources s ON s.metric_id = d.metric_id WHERE d.metric_id IN "
            "(SELECT id FROM metrics WHERE model_id = ? UNION ALL "
            " SELECT m.id FROM metrics m JOIN checkpoint c ON c.id = m.checkpoint_id WHERE c.model_id = ?) "
            "ORDER BY d.metric_id",
            (model_id, model_id),
        )
    ]
    repeats = [ev.repeat_row(*row) for row in sorted(conn.execute(  # (sorted here: engines collate text apart)
        "SELECT metric_id, repeat, value, scores, n_samples, doc_keys FROM metric_repeats WHERE metric_id IN "
        "(SELECT id FROM metrics WHERE model_id = ? UNION ALL "
        " SELECT m.id FROM metrics m JOIN checkpoint c ON c.id = m.checkpoint_id WHERE c.model_id = ?)",
        (model_id, model_id)).fetchall(), key=lambda row: (row[0], row[1]))]
    children = [r[0] for r in conn.execute("SELECT id FROM model WHERE parent_id = ? ORDER BY id", (model_id,))]
    return ev.model_snapshot(ev.model_row(*model_row), checkpoints, metrics, scores, children, repeats,
                             settings_text(params.current_params(conn, model_id), "params"),
                             params.current_tags(conn, model_id))


def delete_model(run_name: str | None, model_name: str, registry_dir: Path, model_id: int | None = None) -> Command:
    """Delete the model (``model_id`` when the caller already resolved it, as prune does)."""

    def command(tx: WriteTransaction) -> DeleteResult:
        conn = tx.conn
        if model_id is not None:
            mid = model_id
        else:
            mid = resolve.model_id(conn, model_name, ids.optional_run_id(tx, run_name), run_name)
        snapshot = _snapshot(conn, mid)
        model = snapshot["model"]
        (event,) = tx.emit([ev.model_deleted(model_id=mid, model_name=model_name, run_id=model["run_id"],
                                             snapshot=snapshot)])
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
        tx.emit(restored_run + [ev.model_restored(model_id=mid, deleted_seq=deleted_seq,
                                                  snapshot={**snapshot, "model": model}, relinked_children=relinked)])
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
    ids |= {row[0] for row in conn.execute("SELECT run_id FROM run_tombstone WHERE run_name = ?", (run_name,))}
    if not ids:
        raise NotFoundError(f"no run {run_name!r}, live or pruned")
    return ids


def _run_name_live_or_pruned(conn, run_id: int | None) -> str | None:
    row = conn.execute("SELECT run_name FROM run WHERE id = ?", (run_id,)).fetchone()
    if row is None:
        row = conn.execute("SELECT run_name FROM run_tombstone WHERE run_id = ? ORDER BY seq DESC LIMIT 1",
                           (run_id,)).fetchone()
    return row[0] if row else None


def _run_to_restore(conn, run_id: int, model_name: str) -> tuple[str, dict[str, Any]]:
    """The ``run_restored`` event that brings back a run prune removed (the model's own)."""
    row = conn.execute("SELECT max(seq) FROM run_tombstone WHERE run_id = ?", (run_id,)).fetchone()
    if row[0] is None:
        raise NotFoundError(f"the run of deleted model {model_name!r} no longer exists")
    snapshot = resolve.event_payload(conn, row[0])["snapshot"]
    return ev.run_restored(run_id=run_id, deleted_seq=row[0], snapshot=snapshot)


def _reparented_since(conn, model_id: int, seq: int) -> bool:
    """Was the model given a parent (or deliberately none) after event ``seq``? Then a
    restore must not re-link it to the restored model."""
    return conn.execute("SELECT 1 FROM model_reparent WHERE model_id = ? AND seq > ? LIMIT 1",
                        (model_id, seq)).fetchone() is not None


def _parent_to_restore(conn, model: dict[str, Any]) -> int | None:
    """The restored model's parent: the one it had, if it is live. A parent's own delete may
    have unlinked it before it was deleted itself; then the parent whose delete did that."""
    parent = model["parent_id"]
    if parent is None:
        row = conn.execute("SELECT parent_id FROM unlinked_child WHERE child_id = ? ORDER BY seq DESC LIMIT 1",
                           (model["id"],)).fetchone()
        parent = row[0] if row else None
    return parent if ids.is_live(conn, parent) else None


def _children_to_relink(conn, model_id: int, unlinked: list[int]) -> set[int]:
    """Children the delete unlinked, and models deleted while still this model's children
    (restored meanwhile without it, since it was gone). ``relinkable_by_a_restore``
    states the same rule from the child's side: change both together."""
    deleted_children = {child for (child,) in conn.execute(
        "SELECT model_id FROM model_tombstone WHERE parent_id = ?", (model_id,))}
    return set(unlinked) | deleted_children


def relinkable_by_a_restore(conn, model_id: int) -> bool:
    """Would restoring some deleted model re-link this one as its child? (As restore_model
    decides: a parent whose delete unlinked it, or the parent it had when it was deleted
    itself; unless it was reparented, or told "no parent", since that parent's delete.)"""
    parents = {pid for (pid,) in conn.execute("SELECT parent_id FROM unlinked_child WHERE child_id = ?", (model_id,))}
    parents |= {pid for (pid,) in conn.execute(
        "SELECT parent_id FROM model_tombstone WHERE model_id = ? AND parent_id IS NOT NULL", (model_id,))}
    for parent in parents:
        if conn.execute("SELECT 1 FROM model WHERE id = ?", (parent,)).fetchone():
            continue  # live: nothing to restore
        (deleted_seq,) = conn.execute("SELECT max(seq) FROM model_tombstone WHERE model_id = ?", (parent,)).fetchone()
        if deleted_seq is not None and not _reparented_since(conn, model_id, deleted_seq):
            return True
    return False


@dataclass
class PruneCandidates:
    """What a prune at some moment would remove (``models`` (id, name, run), ``runs`` (id,
    name)), and the models it keeps because they are too new (``too_new``, (name, run))."""

    models: list[tuple[int, str, str | None]]
    runs: list[tuple[int, str]]
    too_new: list[tuple[str, str | None]]


def check_grace(grace_seconds: Any) -> float:
    """A grace period in seconds: a finite number, not negative (0 prunes models of any age)."""
    grace = check_value(grace_seconds, "the prune grace period (seconds)")
    if grace < 0:
        raise InvalidInputError(f"the prune grace period must be 0 seconds or more, got {grace_seconds}")
    return grace


def prune_candidates(conn, now: datetime, grace_seconds: float) -> PruneCandidates:
    """Models with no metrics, no checkpoints and no children (nothing hangs on them) that
    were registered or restored at least ``grace_seconds`` before ``now`` (an aware
    datetime), and the runs those deletes leave without models."""
    grace_seconds = check_grace(grace_seconds)
    empty = conn.execute(
        "SELECT m.id, m.model_name, r.run_name FROM model m LEFT JOIN run r ON r.id = m.run_id "
        "WHERE NOT EXISTS (SELECT 1 FROM metrics x WHERE x.model_id = m.id) "
        "AND NOT EXISTS (SELECT 1 FROM checkpoint c WHERE c.model_id = m.id) "
        "AND NOT EXISTS (SELECT 1 FROM model k WHERE k.parent_id = m.id) ORDER BY r.run_name, m.model_name"
    ).fetchall()
    arrived = _arrival_times(conn) if empty and grace_seconds > 0 else {}
    models, too_new = [], []
    for mid, name, run_name in empty:
        at = arrived.get(mid)
        # A model whose arrival is not in the log (it cannot be, but a damaged log) is not
        # known to be new. A clock set back makes an age negative: too new, kept.
        if at is not None and (now - at).total_seconds() < grace_seconds:
            too_new.append((name, run_name))
        else:
            models.append((mid, name, run_name))
    pruned = {mid for mid, _, _ in models}
    runs = []
    for rid, name in conn.execute("SELECT id, run_name FROM run ORDER BY run_name").fetchall():
        members = {mid for (mid,) in conn.execute("SELECT id FROM model WHERE run_id = ?", (rid,))}
        # Only runs this prune empties: a run without models yet may be in use by an eval
        # script that is about to register its first model.
        if members and members <= pruned:
            runs.append((rid, name))
    return PruneCandidates(models, runs, too_new)


def _arrival_times(conn) -> dict[int, datetime]:
    """model id -> when it last came into the tables: its registration or its latest restore."""
    found = conn.execute(
        "SELECT a.model_id, max(e.at) FROM model_arrival a JOIN events e ON e.seq = a.seq GROUP BY a.model_id"
    ).fetchall()
    times = {mid: _event_time(at) for mid, at in found}
    return {mid: at for mid, at in times.items() if at is not None}


def _event_time(at: Any) -> datetime | None:
    """An event's ``at`` (UTC, ``...Z``; naive means UTC) as an aware datetime; None if unreadable."""
    try:
        moment = datetime.fromisoformat(str(at).replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def prune(registry_dir: Path, grace_seconds: float = PRUNE_GRACE_SECONDS) -> Command:
    """Delete every prune candidate (``model_deleted`` events, so ``restore_model`` undoes
    each) and every run left empty (``run_deleted``), in one transaction. Models registered
    or restored less than ``grace_seconds`` ago are kept: an eval may be about to log them."""
    grace_seconds = check_grace(grace_seconds)  # refused before the transaction starts

    def command(tx: WriteTransaction) -> PruneResult:
        conn = tx.conn
        found = prune_candidates(conn, datetime.now(timezone.utc), grace_seconds)
        result = PruneResult(too_new=found.too_new, grace_seconds=grace_seconds)
        for mid, name, run_name in found.models:
            delete_model(None, name, registry_dir, model_id=mid)(tx)
            result.models.append((name, run_name))
        for rid, name in found.runs:
            row = conn.execute("SELECT id, run_name, description, metadata, created_at FROM run WHERE id = ?",
                               (rid,)).fetchone()
            tx.emit([ev.run_deleted(run_id=rid, run_name=name, snapshot=ev.run_row(*row))])
            result.runs.append(name)
        return result

    return command
