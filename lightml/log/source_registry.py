"""Reading a registry file other than the one being written (the source of a ``merge``):
one consistent read-only snapshot of it, and every value its log gave its metrics."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Iterator, NamedTuple

from lightml.errors import NotARegistryError
from lightml.log import store
from lightml.log.engine import Connection, engine_of


@contextmanager
def snapshot(path: str | os.PathLike) -> Iterator[tuple[Connection, int]]:
    """A read-only connection to ``path`` inside one read transaction (every table and the
    log as of one moment, whatever another process writes meanwhile), with the file's
    format (1: LightML 1.x, 2+: event-sourced). An empty database is refused."""
    conn = store.connect_readonly(path)
    try:
        fmt = store.registry_format(conn)
        if fmt is None:
            raise NotARegistryError(f"{path} is an empty database, not a LightML registry")
        engine_of(conn).begin_snapshot(conn)
        yield conn, fmt
    finally:
        conn.close()


class MetricValue(NamedTuple):
    """One value a metric was given, as its event says: the metric item's ``value``,
    ``original_at`` and ``original_actor`` (those of a value merged from elsewhere) as
    stored, whatever their type (a damaged payload can hold anything), and the event's
    type, time and writer."""

    event_type: str
    metric_id: Any
    value: Any
    original_at: Any
    original_actor: Any
    at: str
    user: str | None
    host: str | None
    origin: str


def metric_values(conn: Connection) -> list[MetricValue] | None:
    """Every value the log gave a metric, in log order; None when the log cannot be read
    that way (a payload that is not JSON). (The engine unpacks the payloads: SQLite with
    ``json_each``.)"""
    rows = engine_of(conn).metric_value_rows(conn)
    return None if rows is None else list(map(MetricValue._make, rows))
