"""Model edits, each one event: notes, rename, hide/unhide, reparent, parameters and tags.

Like ``lightml.write.commands``, each function returns a command the writer runs inside BEGIN
IMMEDIATE; it decides from the projections and emits events. An edit that changes nothing
writes nothing. Every edit can be undone by the opposite edit, and prune by restore.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lightml.log import events as ev
from lightml.read import params, resolve
from lightml.write import ids, symlinks
from lightml.write.lifecycle import relinkable_by_a_restore
from lightml.write.validation import settings_text
from lightml.errors import ConflictError, InvalidInputError
from lightml.log.transaction import WriteTransaction
from lightml.log.writer import Command


def _model(tx: WriteTransaction, run_name: str | None, model_name: str) -> int:
    return resolve.model_id(tx.conn, model_name, ids.optional_run_id(tx, run_name), run_name)


def set_notes(run_name: str | None, model_name: str, notes: str | None) -> Command:
    def command(tx: WriteTransaction) -> bool:
        mid = _model(tx, run_name, model_name)
        (previous,) = tx.conn.execute("SELECT notes FROM model WHERE id = ?", (mid,)).fetchone()
        if previous == notes:
            return False
        tx.emit([ev.model_notes_set(model_id=mid, notes=notes, previous=previous)])
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
        tx.emit([ev.model_renamed(model_id=mid, run_id=run_id, model_name=new_name, previous_name=old_name)])
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
        tx.emit([ev.model_hidden_set(model_id=mid, hidden=int(hidden), previous=previous)])
        return True

    return command


def set_parent(run_name: str | None, model_name: str, parent_name: str | None) -> Command:
    """Give the model another parent, or none (``parent_name`` None). Refuses cycles."""

    def command(tx: WriteTransaction) -> bool:
        conn = tx.conn
        rid = ids.optional_run_id(tx, run_name)
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
        if previous == parent and not (parent is None and relinkable_by_a_restore(conn, mid)):
            return False
        # (Saying "no parent" to a model a delete unlinked is recorded even though the row
        # does not change: it stops a later restore of that parent from re-linking it.)
        tx.emit([ev.model_reparented(model_id=mid, parent_id=parent, previous_parent_id=previous)])
        return True

    return command


def change_params(tx: WriteTransaction, model_id: int, updates: dict[str, Any]) -> bool:
    """Set the keys of ``updates`` (checked by ``validation.check_params``; a value None removes
    its key); one event when something changes."""
    before = params.current_params(tx.conn, model_id)
    after = {key: value for key, value in {**before, **updates}.items() if value is not None}
    # (compared as stored: 1 and True, or 0.0 and -0.0, are not the same parameter)
    after_text, before_text = settings_text(after, "params"), settings_text(before, "params")
    if after_text == before_text:
        return False
    tx.emit([ev.model_params_set(model_id=model_id, params=after_text, previous=before_text)])
    return True


def change_tags(tx: WriteTransaction, model_id: int, add: list[str] = (), remove: list[str] = ()) -> bool:
    before = params.current_tags(tx.conn, model_id)
    after = sorted((set(before) | set(add)) - set(remove))
    if after == before:
        return False
    tx.emit([ev.model_tags_set(model_id=model_id, tags=after, previous=before)])
    return True


def set_params(run_name: str | None, model_name: str, updates: dict[str, Any]) -> Command:
    return lambda tx: change_params(tx, _model(tx, run_name, model_name), updates)


def change_model_tags(run_name: str | None, model_name: str, add: list[str], remove: list[str]) -> Command:
    return lambda tx: change_tags(tx, _model(tx, run_name, model_name), add, remove)
