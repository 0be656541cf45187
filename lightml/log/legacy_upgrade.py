"""Turning a LightML 1.x file into an event-sourced registry in place (``lightml migrate``):
a consistent backup copy first, then one write transaction that reads the old tables,
replaces them with a registry's and appends the events synthesized from the old rows.

The transaction is built here, not by the writer: the writer serves registries, and the
file becomes one only when this transaction commits. (A 1.x registry is a SQLite file; the
connections and the copy are still asked of its storage engine, as everywhere.)
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Sequence, TypeVar

from lightml.errors import NotARegistryError
from lightml.log import store
from lightml.log.engine import Connection, engine_for
from lightml.log.sqlite_files import migration_backup_name
from lightml.log.transaction import Actor, WriteTransaction

Old = TypeVar("Old")
Result = TypeVar("Result")


def backup_copy(path: Path, stamp: str) -> Path:
    """A copy of ``path`` beside it (``sqlite_files.migration_backup_name``), consistent even
    if another process is writing."""
    backup = migration_backup_name(path, stamp)
    engine = engine_for(path)
    source = engine.connect_readonly()
    try:
        engine.copy_into_file(source, backup, single_file=False)
    finally:
        source.close()
    return backup


def upgrade_in_place(path: Path, read_old: Callable[[Connection], Old], old_tables: Sequence[str],
                     write_events: Callable[[WriteTransaction, Old], Result]) -> Result | None:
    """In one transaction: ``read_old`` the 1.x rows, drop ``old_tables``, create the event
    log and the read tables, and ``write_events`` (origin ``migrate``); foreign keys are
    checked once, before COMMIT. Returns what ``write_events`` returned, or None when the
    file is no longer a 1.x file (another process migrated it meanwhile). The file is left
    in WAL mode, as every registry is."""
    engine = engine_for(path)
    conn = engine.connect()
    try:
        engine.defer_reference_checks(conn)  # checked once, before COMMIT
        store.begin_write(conn)
        try:
            if store.registry_format(conn) != 1:
                engine.rollback(conn)
                return None
            old = read_old(conn)
            for table in old_tables:
                conn.execute(f'DROP TABLE IF EXISTS "{table}"')
            store.create_schema(conn)
            tx = WriteTransaction(conn)
            tx.actor = Actor.current("migrate")
            result = write_events(tx, old)
            tx.flush()
            problems = engine.reference_problems(conn)
            if problems:
                raise NotARegistryError(f"migration produced broken references: {problems[:3]}")
            store.commit_write(conn)
        except BaseException:
            engine.rollback(conn)
            raise
        engine.prepare_for_writing(conn)
    finally:
        conn.close()
    return result
