"""A SQLite registry as files: the URI a reader opens (read-only media included), the
``-wal`` a killed writer left behind, and which files on disk are the registry's."""

from __future__ import annotations

import fnmatch
import os
import sqlite3
import sys
from pathlib import Path

from lightml.errors import NotARegistryError

# The files SQLite keeps beside a database while it is open (or after a crash).
COMPANIONS = ("-wal", "-shm", "-journal")


def companion_files(path: str | os.PathLike) -> list[Path]:
    return [Path(f"{path}{suffix}") for suffix in COMPANIONS]


def readonly_uri(path: str | os.PathLike) -> str:
    """The URI every read-only connection to the registry uses.

    ``mode=ro`` normally. A WAL file on read-only media (its folder cannot be written, and
    its ``-wal``/``-shm`` are not there to be used) cannot be read that way: SQLite needs to
    create a ``-shm``. Then the file is opened ``immutable=1`` (valid because nobody can
    write there); a one-line note on stderr says so, once per file and process. An immutable
    read ignores the ``-wal``, so a ``-wal`` holding data (a writer killed before it could
    checkpoint) is read as SQLite can on such media, and refused if it cannot: never stale
    values without a word.
    """
    resolved = Path(path).expanduser().resolve()
    plain = resolved.as_uri() + "?mode=ro"
    if not _needs_immutable(resolved):
        return plain
    if _wal_holds_data(resolved):
        if _readable(plain):  # SQLite reads a -wal beside a read-only -shm (3.22+)
            return plain
        raise NotARegistryError(
            f"{resolved} is on read-only media and its -wal holds changes not yet in the .db, which "
            "cannot be read there; copy the folder to writable storage (the copy reads in full)")
    _note_immutable_once(resolved)
    return resolved.as_uri() + "?immutable=1"


def _wal_holds_data(path: Path) -> bool:
    try:
        return Path(f"{path}-wal").stat().st_size > 0
    except OSError:
        return False


def _readable(uri: str) -> bool:
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=0)
    except sqlite3.Error:
        return False
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        return True
    except sqlite3.Error:
        return False
    finally:
        conn.close()


def _needs_immutable(path: Path) -> bool:
    if os.access(path.parent, os.W_OK):  # the usual case, checked first: one system call
        return False
    if not _is_wal_file(path):  # a rollback-journal file needs no -shm
        return False
    shm, wal = Path(f"{path}-shm"), Path(f"{path}-wal")
    return not (shm.exists() and wal.exists() and os.access(shm, os.R_OK | os.W_OK))


def _is_wal_file(path: Path) -> bool:
    """Bytes 18-19 of the header are 2 in WAL mode (SQLite's file format)."""
    try:
        with open(path, "rb") as f:
            header = f.read(20)
    except OSError:
        return False
    return len(header) == 20 and header[18] == 2


_noted_immutable: set[Path] = set()


def _note_immutable_once(path: Path) -> None:
    if path in _noted_immutable:
        return
    _noted_immutable.add(path)
    sys.stderr.write(f"lightml: warning: {path} is on read-only media (its folder cannot be written): "
                     "reading it as an immutable file\n")


def fold_leftover_wal(path: str | os.PathLike) -> None:
    """If the file's ``-wal`` holds data and the folder can be written, open and close a
    read-write connection: when no other connection has the file open (the process that
    wrote it is gone without closing), SQLite's last close checkpoints the ``-wal`` into the
    ``.db`` and removes it. With others connected it does nothing (they will), and it never
    waits or fails the caller."""
    wal = Path(f"{path}-wal")
    try:
        if wal.stat().st_size == 0 or not os.access(wal.parent, os.W_OK) or not os.access(path, os.W_OK):
            return
    except OSError:  # no -wal: nothing to fold
        return
    try:
        conn = sqlite3.connect(Path(os.path.abspath(path)).as_uri() + "?mode=rw", uri=True, timeout=0,
                               isolation_level=None)
    except sqlite3.Error:
        return
    try:
        conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # opens the WAL
    except sqlite3.Error:
        pass
    finally:
        conn.close()


# -- "Is this path the registry or one of its files?" -------------------------------------


def migration_backup_name(path: Path, stamp: str) -> Path:
    """Where ``lightml migrate`` keeps the original of ``path``."""
    return path.with_name(f"{path.stem}.backup-{stamp}{path.suffix or '.db'}")


def is_registry_file(candidate: str | os.PathLike, db: str | os.PathLike) -> bool:
    """Is ``candidate`` the registry ``db`` itself, its ``-wal``/``-shm``/``-journal``, or a
    backup ``migrate`` made of it? By resolved path (symlinks followed) and, for files that
    exist, by inode (a hard link or another spelling of the same file)."""
    target = Path(os.path.abspath(Path(candidate).expanduser())).resolve()
    live = Path(os.path.abspath(Path(db).expanduser())).resolve()
    own = [live, *companion_files(live)]
    if target in own:
        return True
    backup_pattern = migration_backup_name(live, "*").name
    if target.parent == live.parent and fnmatch.fnmatchcase(target.name, backup_pattern):
        return True
    try:
        target_stat = target.stat()
    except OSError:  # does not exist: only its name could have matched
        return False
    others = own + [p for p in live.parent.glob(backup_pattern)]
    for other in others:
        try:
            if os.path.samestat(target_stat, other.stat()):
                return True
        except OSError:
            continue
    return False
