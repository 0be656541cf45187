"""Which registry a command uses when --db is not given.

Order: ``--db``, then the ``LIGHTML_DB`` environment variable, then a ``.lightml`` file in
the current folder (a line ``db=path``, relative to that folder), then the only ``*.db``
file in the current folder.
"""

from __future__ import annotations

import os
from pathlib import Path

from lightml.errors import InvalidInputError

HOW_TO = "pass --db, set LIGHTML_DB, or write 'db=path/to/registry.db' in a .lightml file here"


def _from_dotfile(folder: Path) -> str | None:
    dotfile = folder / ".lightml"
    if not dotfile.is_file():
        return None
    for line in dotfile.read_text(encoding="utf-8").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() == "db" and value.strip():
            if "://" in value:  # a server's registry: a URL, not a path relative to this folder
                return value.strip()
            return str(folder / Path(value.strip()).expanduser())
    raise InvalidInputError(f"{dotfile} has no 'db=...' line ({HOW_TO})")


def resolve_db(given: str | None, cwd: Path | None = None) -> str:
    if given:
        return given
    from_env = os.environ.get("LIGHTML_DB")
    if from_env:
        return from_env
    folder = cwd or Path.cwd()
    from_dotfile = _from_dotfile(folder)
    if from_dotfile:
        return from_dotfile
    candidates = sorted(p.name for p in folder.glob("*.db") if p.is_file())
    if len(candidates) == 1:
        return str(folder / candidates[0])
    if candidates:
        raise InvalidInputError(f"several registries here ({', '.join(candidates)}): {HOW_TO}")
    raise InvalidInputError(f"no registry given and none found here: {HOW_TO}")


def existing_registry(db: str) -> str:
    """``db``, if the registry exists: the commands that write never create a registry by
    accident (a typo in --db); ``lightml init`` does."""
    from lightml.log.engine import engine_for

    engine = engine_for(db)
    if engine.dialect == "sqlite":
        if not Path(db).expanduser().is_file():
            raise FileNotFoundError(f"registry not found: {db} (create one with: lightml init)")
        return db
    try:
        engine.connect_readonly().close()
    except FileNotFoundError as exc:
        raise FileNotFoundError(f"{exc} (create one with: lightml init --db {engine.location})") from None
    return db
