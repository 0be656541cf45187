"""Creating a registry: ``init_registry`` (the Python form of ``lightml init``)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightml.log import writer
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


def init_registry(path: str | os.PathLike, name: str, overwrite: bool = False,
                  metrics_schema: list[dict[str, Any]] | None = None) -> Path:
    """Create ``<path>/<name>.db`` (folders as needed) and return its path.

    An existing registry is left alone (its path returned) unless ``overwrite``, which
    replaces it with an empty one. ``metrics_schema`` restricts which (family, metric)
    pairs can be logged.
    """
    check_name(name, "registry name")
    if "/" in name or "\\" in name:
        raise InvalidInputError(f"registry name must not contain path separators: {name!r}")
    rules = _schema_rules(metrics_schema) if metrics_schema is not None else []
    folder = Path(path).expanduser()
    folder.mkdir(parents=True, exist_ok=True)
    db = (folder / f"{name}.db").resolve()
    if db.exists() and overwrite:
        if writer.has_writer(str(db)):
            raise ConflictError(f"{db} is open in this process; close its handles before overwriting it")
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    registry = Registry(db)
    try:
        if rules:
            registry.run(builders.add_schema_rules(rules))
    finally:
        registry.close()
    return db


__all__ = ["init_registry"]
