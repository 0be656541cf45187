"""Creating a registry: ``init_registry`` (the Python form of ``lightml init``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightml.log import network_fs, writer
from lightml.log.engine import engine_for
from lightml.runner import Registry
from lightml.write import builders
from lightml.errors import ConflictError, InvalidInputError
from lightml.write.validation import check_name


def _schema_rules(metrics_schema: Any) -> list[tuple[str, str]]:
    """LightML 1.2's shape: ``[{"family": "benchmarks_ita", "metrics": {"Hella": "float"}}]``."""
    if not isinstance(metrics_schema, list):
        raise InvalidInputError('metrics_schema must be a list like [{"family": F, "metrics": {name: "float"}}]')
    rules = []
    for i, entry in enumerate(metrics_schema):
        if not isinstance(entry, dict) or "family" not in entry or not isinstance(entry.get("metrics"), (dict, list)):
            raise InvalidInputError(f'metrics_schema[{i}] must be {{"family": F, "metrics": {{name: "float"}}}}')
        family = check_name(entry["family"], f"metrics_schema[{i}].family")
        for name in entry["metrics"]:
            rules.append((family, check_name(name, f"metric name in family {family!r}")))
    return rules


def init_registry(path: str | os.PathLike, name: str | None = None, overwrite: bool = False,
                  metrics_schema: list[dict[str, Any]] | None = None, *,
                  allow_network_filesystem: bool = False) -> Path | str:
    """Create ``<path>/<name>.db`` (folders as needed) and return its path.

    An existing registry is left alone (its path returned) unless ``overwrite``, which
    replaces it with an empty one. ``metrics_schema`` restricts which (family, metric)
    pairs can be logged. On a network filesystem it raises ``NetworkFilesystemError``
    before any folder or file is made or removed, unless ``allow_network_filesystem`` (or
    ``LIGHTML_ALLOW_NETWORK_FS=1``): only one machine will write it.

    ``path`` may instead be a ``postgresql://`` URL (and ``name`` omitted): the registry's
    tables are created in that empty database (or its ``?schema=``), an existing registry
    is left alone, and the URL is returned without its password. A database holding other
    tables is refused and left untouched; ``overwrite`` does not apply (drop the tables
    with PostgreSQL's own tools).
    """
    if engine_for(path).dialect != "sqlite":
        return _init_server_registry(path, name, overwrite, metrics_schema)
    if name is None:
        raise InvalidInputError("init_registry needs the registry's name (the file is <path>/<name>.db)")
    check_name(name, "registry name")
    if "/" in name or "\\" in name:
        raise InvalidInputError(f"registry name must not contain path separators: {name!r}")
    rules = _schema_rules(metrics_schema) if metrics_schema is not None else []
    folder = Path(path).expanduser()
    network_fs.refuse_writing(engine_for(folder / f"{name}.db"), allow=allow_network_filesystem)
    folder.mkdir(parents=True, exist_ok=True)
    db = (folder / f"{name}.db").resolve()
    if db.exists() and overwrite:
        if writer.has_writer(str(db)):
            raise ConflictError(f"{db} is open in this process; close its handles before overwriting it")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    _add_rules_and_close(Registry(db, allow_network_filesystem=allow_network_filesystem), rules)
    return db


def _init_server_registry(url, name, overwrite: bool, metrics_schema) -> str:
    if name is not None:
        raise InvalidInputError("a PostgreSQL registry has no name: give its URL only (the database names it)")
    if overwrite:
        raise InvalidInputError("overwrite does not apply to a PostgreSQL registry: drop its tables with "
                                "PostgreSQL's tools (psql), then init again")
    rules = _schema_rules(metrics_schema) if metrics_schema is not None else []
    registry = Registry(url)  # creates the schema in an empty database; refuses one holding other tables
    _add_rules_and_close(registry, rules)
    return registry.engine.location


def _add_rules_and_close(registry: Registry, rules: list[tuple[str, str]]) -> None:
    """The new registry's schema rules added (if any); the registry closed whatever happens."""
    try:
        if rules:
            registry.run(builders.add_schema_rules(rules))
    finally:
        registry.close()


__all__ = ["init_registry"]
