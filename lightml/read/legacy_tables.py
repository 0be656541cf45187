"""The read tables of a registry file as any LightML wrote them, 1.x included: the rows
``migrate`` turns into events and ``merge`` brings into another registry.

Files of LightML 1.2 have no ``model.notes`` and ``model.hidden``, older ones no
``detailed_scores``, and none before 2.x a ``score_docs``. This is the one adapter for all
of them: a missing column reads as its default, a missing table as no rows. Values are
as stored: a 1.x file holds whatever it was given (checking them is the caller's business).
"""

from __future__ import annotations

import sqlite3
from typing import Any, NamedTuple, TypeVar


class Run(NamedTuple):
    id: Any
    run_name: Any
    description: Any
    metadata: Any
    created_at: Any


class Model(NamedTuple):
    id: Any
    model_name: Any
    path: Any
    parent_id: Any
    notes: Any
    hidden: Any
    run_id: Any


class Checkpoint(NamedTuple):
    id: Any
    model_id: Any
    step: Any
    path: Any
    created_at: Any


class Metric(NamedTuple):
    id: Any
    model_id: Any
    checkpoint_id: Any
    family: Any
    metric_name: Any
    value: Any


class Scores(NamedTuple):
    metric_id: Any
    scores: Any
    n_samples: Any


class DocKeys(NamedTuple):
    metric_id: Any
    doc_keys: Any


class SchemaRule(NamedTuple):
    family: Any
    metric_name: Any


# The table each row type is read from, and the SQL value of a column the file lacks (NULL
# unless named here: a model of LightML 1.2 is shown).
TABLE: dict[type, str] = {Run: "run", Model: "model", Checkpoint: "checkpoint", Metric: "metrics",
                          Scores: "detailed_scores", DocKeys: "score_docs", SchemaRule: "registry_schema"}
_MISSING: dict[tuple[type, str], str] = {(Model, "hidden"): "0"}

# The tables of a LightML 1.x file (``migrate`` replaces them with a registry's).
V1_TABLES = ("detailed_scores", "metrics", "checkpoint", "model", "run", "registry_schema")

R = TypeVar("R", bound=tuple)


def rows(conn: sqlite3.Connection, kind: type[R]) -> list[R]:
    """Every row of ``kind``'s table, in rowid order (the order it was written in)."""
    table = TABLE[kind]
    present = {row[1] for row in conn.execute(f'PRAGMA table_info("{table}")')}
    if not present:
        return []
    select = ", ".join(f'"{column}"' if column in present else _MISSING.get((kind, column), "NULL")
                       for column in kind._fields)
    return list(map(kind._make, conn.execute(f'SELECT {select} FROM "{table}" ORDER BY rowid')))
