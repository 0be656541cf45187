"""``backup``: a consistent single-file copy of a registry, safe while writers run."""

from __future__ import annotations

import os
from pathlib import Path

from lightml.log import opening, store
from lightml.errors import InvalidInputError, NotARegistryError
from lightml.log.engine import engine_for, engine_of
from lightml.log.sqlite_engine import SQLiteEngine
from lightml.log.sqlite_files import companion_files


def backup(db: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Copy the registry ``db`` into the new file ``out`` and return its path.

    The registry's engine copies one snapshot of it (log and tables together) while other
    processes keep writing (``StorageEngine.copy_into_file``: SQLite's online backup API).
    The copy is one complete SQLite file in rollback-journal mode (``journal_mode=DELETE``:
    no ``-wal`` or ``-shm`` to carry along); LightML puts it back in WAL mode the first
    time it opens it for writing. It is checked to open as a registry before this returns.
    ``out`` must not exist, and must not be the registry or one of its files.
    """
    location = engine_for(db).location
    out_path = store.new_database_path(out, location)
    source = opening.open_registry_readonly(location)
    partial = out_path.with_name(f".{out_path.name}.{os.getpid()}.partial")
    store.refuse_registry_file(partial, location, "the temporary copy", sqlite_file=True)
    try:
        engine_of(source).copy_into_file(source, partial, single_file=True)
        _check_is_registry(partial)
        if out_path.exists():  # created meanwhile: never replace someone's file
            raise InvalidInputError(f"{out_path} already exists; choose a new file for --out")
        os.replace(partial, out_path)
    finally:
        source.close()
        for leftover in (partial, *companion_files(partial)):
            leftover.unlink(missing_ok=True)
    return out_path


def _check_is_registry(path: Path) -> None:
    copy = SQLiteEngine(path)  # the copy is a SQLite file, whatever the registry's engine
    conn = copy.connect_readonly()
    try:
        if store.registry_format(conn) != store.FORMAT_VERSION:
            raise NotARegistryError(f"the copy {path} does not open as a LightML registry")
        if not copy.quick_check(conn):
            raise NotARegistryError(f"the copy {path} failed SQLite's quick_check")
    finally:
        conn.close()


__all__ = ["backup"]
