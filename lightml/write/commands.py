"""Write commands: each returns a function run by the writer inside BEGIN IMMEDIATE.

A command reads the current state from the projections, decides (dedupe, name -> id,
next ids), and appends events with ``tx.emit``. Input that can be checked without the
database is checked by the caller before the command is queued (lightml.write.validation).

The ``ensure_*`` commands find a run, model or checkpoint by its natural key or register
it, and say which (``Ensured``): what ``scan`` and ``merge`` compose into their own
transactions. ``create_run``, ``register_model`` and ``register_checkpoint`` are the same
commands as the handles call them, returning the id.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

from lightml.errors import InvalidInputError, NotFoundError
from lightml.log import events as ev
from lightml.log.transaction import WriteTransaction
from lightml.log.writer import Command
from lightml.read import resolve
from lightml.write import ids, symlinks


class Ensured(NamedTuple):
    """What an ``ensure_*`` command found or made: the id, and whether it is new."""

    id: int
    created: bool


class _EventTime:
    """``created_at`` of a row registered now: derived from its event's time."""

    def __repr__(self) -> str:
        return "EVENT_TIME"


EVENT_TIME = _EventTime()


def sqlite_time(at: str) -> str:
    """Event time -> ``run.created_at`` as LightML 1.x wrote it (SQLite's CURRENT_TIMESTAMP)."""
    return f"{at[:10]} {at[11:19]}"


def iso_time(at: str) -> str:
    """Event time -> ``checkpoint.created_at`` as LightML 1.x wrote it (naive UTC isoformat)."""
    return at.rstrip("Z")


def ensure_run(run_name: str, description: str | None = None, metadata: str | None = None, *,
               created_at: str | None | _EventTime = EVENT_TIME) -> Command:
    """The run named ``run_name``, created if new (``created_at``: a time kept from elsewhere,
    as ``merge`` keeps the source's)."""

    def command(tx: WriteTransaction) -> Ensured:
        existing = resolve.run_id(tx.conn, run_name)
        if existing is not None:
            return Ensured(existing, False)
        rid = tx.next_id("run")
        at = tx.now()
        tx.emit([ev.run_created(
            run_id=rid, run_name=run_name, description=description, metadata=metadata,
            created_at=sqlite_time(at) if created_at is EVENT_TIME else created_at,
        )], at)
        return Ensured(rid, True)

    return command


def create_run(run_name: str, description: str | None = None, metadata: str | None = None) -> Command:
    ensure = ensure_run(run_name, description, metadata)
    return lambda tx: ensure(tx).id


def ensure_model(
    run_name: str | None, model_name: str, path: str | None, parent_name: str | None,
    parent_id: int | None, registry_dir: Path, create_run_if_new: bool = False, *,
    notes: str | None = None, hidden: int = 0,
) -> Command:
    """The model named ``model_name`` in the run, registered if new (idempotent by (name,
    run): an existing model is returned as it is). With ``create_run_if_new`` the run is
    created in the same transaction, so a refused registration leaves no empty run behind.
    ``notes`` and ``hidden`` are those of a model registered now (``merge`` keeps the
    source's)."""

    def command(tx: WriteTransaction) -> Ensured:
        conn = tx.conn
        if create_run_if_new:
            ensure_run(run_name)(tx)
        rid = ids.run_id(tx, run_name)
        row = conn.execute("SELECT id FROM model WHERE model_name = ? AND run_id = ?", (model_name, rid)).fetchone()
        if row:
            return Ensured(row[0], False)
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
        tx.emit([ev.model_registered(model_id=mid, model_name=model_name, path=path, parent_id=parent, run_id=rid,
                                     notes=notes, hidden=hidden)])
        if path:  # (a 1.x row brought in by merge may have none)
            tx.after_commit.append(lambda: symlinks.create(registry_dir, model_name, mid, path))
        return Ensured(mid, True)

    return command


def register_model(
    run_name: str | None, model_name: str, path: str, parent_name: str | None,
    parent_id: int | None, registry_dir: Path, create_run_if_new: bool = False,
) -> Command:
    """Register the model (or return its id): ``ensure_model``, returning the id."""
    ensure = ensure_model(run_name, model_name, path, parent_name, parent_id, registry_dir, create_run_if_new)
    return lambda tx: ensure(tx).id


def ensure_checkpoint(run_name: str | None, model_name: str, step: int | None, path: str | None, *,
                      created_at: str | None | _EventTime = EVENT_TIME) -> Command:
    """The model's checkpoint of that step and path, registered if new (``created_at``: a
    time kept from elsewhere, as ``merge`` keeps the source's)."""

    def command(tx: WriteTransaction) -> Ensured:
        conn = tx.conn
        mid = ids.model_id(tx, run_name, model_name)
        row = conn.execute(
            "SELECT id FROM checkpoint WHERE model_id = ? AND step = ? AND path IS ?", (mid, step, path)
        ).fetchone()
        if row:
            return Ensured(row[0], False)
        cid = tx.next_id("checkpoint")
        at = tx.now()
        tx.emit([ev.checkpoint_registered(
            checkpoint_id=cid, model_id=mid, step=step, path=path,
            created_at=iso_time(at) if created_at is EVENT_TIME else created_at,
        )], at)
        return Ensured(cid, True)

    return command


def register_checkpoint(run_name: str | None, model_name: str, step: int, path: str) -> Command:
    ensure = ensure_checkpoint(run_name, model_name, step, path)
    return lambda tx: ensure(tx).id


def add_schema_rules(rules: list[tuple[str, str]]) -> Command:
    def command(tx: WriteTransaction) -> int:
        existing = set(tx.conn.execute("SELECT family, metric_name FROM registry_schema"))
        new = [r for r in dict.fromkeys(rules) if r not in existing]
        if new:
            tx.emit([ev.schema_rule_added(family=f, metric_name=m) for f, m in new])
        return len(new)

    return command


def record_imported_files(model_id: int, files: list[tuple[str, str, int, int]]) -> Command:
    """Record the files (path, sha256, size, mtime_ns) ``scan`` imported for the model."""

    def command(tx: WriteTransaction) -> None:
        tx.emit([ev.file_imported(path=path, sha256=sha, size=size, mtime_ns=mtime_ns, model_id=model_id)
                 for path, sha, size, mtime_ns in files])

    return command
