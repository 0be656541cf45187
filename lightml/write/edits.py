"""Model edits, each one event: notes, rename, hide/unhide, reparent, and prune.

Like ``lightml.write.commands``, each function returns a command the writer runs inside BEGIN
IMMEDIATE; it decides from the projections and emits events. An edit that changes nothing
writes nothing. Every edit can be undone by the opposite edit, and prune by restore.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lightml.log import events as ev
from lightml.read import resolve
from lightml.write import symlinks
from lightml.write.commands import _optional_run_id, _reparented_since, delete_model
from lightml.defaults import PRUNE_GRACE_SECONDS
from lightml.errors import ConflictError, InvalidInputError
from lightml.write.validation import check_value
from lightml.log.writer import Command, WriteTransaction


def _model(tx: WriteTransaction, run_name: str | None, model_name: str) -> int:
    return resolve.model_id(tx.conn, model_name, _optional_run_id(tx, run_name), run_name)


def set_notes(run_name: str | None, model_name: str, notes: str | None) -> Command:
    def command(tx: WriteTransaction) -> bool:
        mid = _model(tx, run_name, model_name)
        (previous,) = tx.conn.execute("SELECT notes FROM model WHERE id = ?", (mid,)).fetchone()
        if previous == notes:
            return False
        tx.emit([(ev.MODEL_NOTES_SET, {"model_id": mid, "notes": notes, "previous": previous})])
        return True

    return command


def rename_model(run_name: str | None, old_name: str, new_name: str, registry_dir: Path) -> Command:
    def command(tx: WriteTransaction) -> bool:
        conn = tx.conn
        mid = _model(tx, run_name, old_name)
        if old_name == new_name:
            return False
        run_id, path = conn.execute("SELECT run_id, path FROM model WHERE id = ?", (mid,)).fetchone()
        if conn.execute("SELECT 1 FROM model WHERE model_name = ? AND run_id IS ?", (new_name, run_id)).fetchone():
            raise ConflictError(f"a model named {new_name!r} already exists in that run")
        tx.emit([(ev.MODEL_RENAMED, {"model_id": mid, "run_id": run_id, "model_name": new_name,
                                     "previous_name": old_name})])
        if path:
            def move_link() -> None:
                symlinks.remove(registry_dir, old_name, mid, path)
                symlinks.create(registry_dir, new_name, mid, path)
            tx.after_commit.append(move_link)
        return True

    return command


def set_hidden(run_name: str | None, model_name: str, hidden: bool) -> Command:
    def command(tx: WriteTransaction) -> bool:
        mid = _model(tx, run_name, model_name)
        (previous,) = tx.conn.execute("SELECT hidden FROM model WHERE id = ?", (mid,)).fetchone()
        if bool(previous) == hidden:
            return False
        tx.emit([(ev.MODEL_HIDDEN_SET, {"model_id": mid, "hidden": int(hidden), "previous": previous})])
        return True

    return command


def set_parent(run_name: str | None, model_name: str, parent_name: str | None) -> Command:
    """Give the model another parent, or none (``parent_name`` None). Refuses cycles."""

    def command(tx: WriteTransaction) -> bool:
        conn = tx.conn
        rid = _optional_run_id(tx, run_name)
        mid = resolve.model_id(conn, model_name, rid, run_name)
        parent = None if parent_name is None else resolve.parent_id(conn, parent_name, rid)
        if parent == mid:
            raise InvalidInputError(f"model {model_name!r} cannot be its own parent")
        node, seen = parent, set()
        while node is not None and node not in seen:  # walk up from the new parent
            if node == mid:
                raise ConflictError(
                    f"{parent_name!r} descends from {model_name!r}: making it the parent would create a cycle")
            seen.add(node)
            node = conn.execute("SELECT parent_id FROM model WHERE id = ?", (node,)).fetchone()[0]
        (previous,) = conn.execute("SELECT parent_id FROM model WHERE id = ?", (mid,)).fetchone()
        if previous == parent and not (parent is None and _relinkable_by_a_restore(conn, mid)):
            return False
        # (Saying "no parent" to a model a delete unlinked is recorded even though the row
        # does not change: it stops a later restore of that parent from re-linking it.)
        tx.emit([(ev.MODEL_REPARENTED, {"model_id": mid, "parent_id": parent, "previous_parent_id": previous})])
        return True

    return command


def _relinkable_by_a_restore(conn, model_id: int) -> bool:
    """Would restoring some deleted model re-link this one as its child? (As restore_model
    decides: a parent whose delete unlinked it, or the parent it had when it was deleted
    itself; unless it was reparented, or told "no parent", since that parent's delete.)"""
    parents = {pid for (pid,) in conn.execute(
        "SELECT json_extract(e.payload, '$.model_id') FROM events e, json_each(e.payload, '$.snapshot.children') AS child "
        "WHERE e.type = ? AND child.value = ?", (ev.MODEL_DELETED, model_id))}
    parents |= {pid for (pid,) in conn.execute(
        "SELECT json_extract(payload, '$.snapshot.model.parent_id') FROM events "
        "WHERE type = ? AND json_extract(payload, '$.model_id') = ?", (ev.MODEL_DELETED, model_id)) if pid is not None}
    for parent in parents:
        if conn.execute("SELECT 1 FROM model WHERE id = ?", (parent,)).fetchone():
            continue  # live: nothing to restore
        (deleted_seq,) = conn.execute(
            "SELECT max(seq) FROM events WHERE type = ? AND json_extract(payload, '$.model_id') = ?",
            (ev.MODEL_DELETED, parent)).fetchone()
        if deleted_seq is not None and not _reparented_since(conn, model_id, deleted_seq):
            return True
    return False




@dataclass
class PruneResult:
    """What prune removed (or, with ``dry_run``, would remove), and the models it kept only
    because they were registered (or restored) less than ``grace_seconds`` ago."""

    models: list[tuple[str, str | None]] = field(default_factory=list)  # (model, run)
    runs: list[str] = field(default_factory=list)
    dry_run: bool = False
    too_new: list[tuple[str, str | None]] = field(default_factory=list)  # (model, run)
    grace_seconds: float = PRUNE_GRACE_SECONDS

    def to_dict(self) -> dict:
        return {"models": [{"model": m, "run": r} for m, r in self.models], "runs": self.runs,
                "dry_run": self.dry_run, "kept_too_new": [{"model": m, "run": r} for m, r in self.too_new],
                "grace_seconds": self.grace_seconds}


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
        "SELECT json_extract(payload, '$.model_id'), max(at) FROM events WHERE type IN (?, ?) GROUP BY 1",
        (ev.MODEL_REGISTERED, ev.MODEL_RESTORED)).fetchall()
    times = {mid: _event_time(at) for mid, at in found if mid is not None}
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
            snapshot = dict(zip(("id", "run_name", "description", "metadata", "created_at"), row))
            tx.emit([(ev.RUN_DELETED, {"run_id": rid, "run_name": name, "snapshot": snapshot})])
            result.runs.append(name)
        return result

    return command
