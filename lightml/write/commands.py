"""Write commands: each returns a function run by the writer inside BEGIN IMMEDIATE.

A command reads the current state from the projections, decides (dedupe, name -> id,
next ids), and appends events with ``tx.emit``. Input that can be checked without the
database is checked by the caller before the command is queued (lightml.write.validation).
"""

from __future__ import annotations

from pathlib import Path

from lightml.log import events as ev
from lightml.read import resolve
from lightml.write import ids, symlinks
from lightml.errors import InvalidInputError, NotFoundError
from lightml.log.writer import Command, WriteTransaction


def sqlite_time(at: str) -> str:
    """Event time -> ``run.created_at`` as LightML 1.x wrote it (SQLite's CURRENT_TIMESTAMP)."""
    return f"{at[:10]} {at[11:19]}"


def iso_time(at: str) -> str:
    """Event time -> ``checkpoint.created_at`` as LightML 1.x wrote it (naive UTC isoformat)."""
    return at.rstrip("Z")


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
        rid = ids.run_id(tx, run_name)
        row = conn.execute("SELECT id FROM model WHERE model_name = ? AND run_id = ?", (model_name, rid)).fetchone()
        if row:
            return row[0]  # idempotent by (name, run)
        parent = None
        if parent_name is not None:
            parent = resolve.parent_id(conn, parent_name, rid)
        if parent_id is not None:
            if not ids.is_live(conn, parent_id):
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
        mid = ids.model_id(tx, run_name, model_name)
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


def add_schema_rules(rules: list[tuple[str, str]]) -> Command:
    def command(tx: WriteTransaction) -> int:
        existing = set(tx.conn.execute("SELECT family, metric_name FROM registry_schema"))
        new = [r for r in dict.fromkeys(rules) if r not in existing]
        if new:
            tx.emit([(ev.SCHEMA_RULE_ADDED, {"family": f, "metric_name": m}) for f, m in new])
        return len(new)

    return command
