"""``backup``: a consistent single-file copy of a registry, safe while writers run."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from lightml.log import opening, store
from lightml.errors import InvalidInputError, NotARegistryError


def backup(db: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Copy the registry ``db`` into the new file ``out`` and return its path.

    SQLite's online backup API copies one snapshot of the registry (log and tables
    together) while other processes keep writing. The copy is one complete file in
    rollback-journal mode (``journal_mode=DELETE``: no ``-wal`` or ``-shm`` to carry
    along); LightML puts it back in WAL mode the first time it opens it for writing. It
    is checked to open as a registry before this returns. ``out`` must not exist, and must
    not be the registry or one of its files.
    """
    source_path = Path(db).expanduser()
    out_path = store.new_database_path(out, source_path)
    source = opening.open_registry_readonly(source_path)
    partial = out_path.with_name(f".{out_path.name}.{os.getpid()}.partial")
    store.refuse_registry_file(partial, source_path, "the temporary copy", sqlite_file=True)
    try:
        _copy(source, partial)
        _check_is_registry(partial)
        if out_path.exists():  # created meanwhile: never replace someone's file
            raise InvalidInputError(f"{out_path} already exists; choose a new file for --out")
        os.replace(partial, out_path)
    finally:
        source.close()
        for suffix in ("", "-journal", "-wal", "-shm"):
            Path(f"{partial}{suffix}").unlink(missing_ok=True)
    return out_path


def _copy(source: sqlite3.Connection, target_path: Path) -> None:
    target = sqlite3.connect(target_path, isolation_level=None)
    try:
        source.backup(target)  # all pages in one step: one snapshot of the source
        target.execute("PRAGMA journal_mode = DELETE")
    finally:
        target.close()


def _check_is_registry(path: Path) -> None:
    conn = store.connect_readonly(path)
    try:
        if store.registry_format(conn) != store.FORMAT_VERSION:
            raise NotARegistryError(f"the copy {path} does not open as a LightML registry")
        if conn.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise NotARegistryError(f"the copy {path} failed SQLite's quick_check")
    finally:
        conn.close()


__all__ = ["backup"]
