"""Read-model projections: how each event changes the documented read tables.

One module per table. ``apply(conn, events)`` runs inside the writer's transaction, so the
tables change together with the log; ``rebuild`` replays the log, chunk by chunk, into empty
tables. Projections are pure functions of the events: every id, timestamp and previous
value they store comes from an event payload.
"""

from __future__ import annotations

import sqlite3
import sys
from itertools import groupby
from operator import attrgetter
from typing import Callable, Collection, Iterable

from lightml.log import events as ev
from lightml.log.engine import dialect_of
from lightml.log.events import Change
from projections import (
    checkpoint,
    dashboard_item,
    detailed_scores,
    event_settings,
    guard,
    id_counter,
    imported_file,
    metric_history,
    metric_insert_range,
    metric_repeats,
    metrics,
    model,
    model_arrival,
    model_event,
    model_param,
    model_reparent,
    model_tag,
    model_tombstone,
    registry_schema,
    run,
    run_tombstone,
    score_docs,
    score_sources,
    settings,
    unlinked_child,
)

# Creation order respects foreign keys (run <- model <- checkpoint <- metrics <- scores).
MODULES = [
    run, model, checkpoint, metrics, detailed_scores, score_docs, score_sources, registry_schema, metric_insert_range,
    metric_history, id_counter, imported_file, model_event, model_tombstone, unlinked_child, run_tombstone,
    model_arrival, model_reparent, settings, event_settings, metric_repeats, model_param, model_tag, dashboard_item,
]
READ_TABLES: list[str] = [m.TABLE for m in MODULES]

# The tables that index the log itself (what restore, the relink rule, prune and the
# histories ask of it). An earlier build answered those questions by reading every payload,
# so a connection that cannot add such a table to its file builds it from the log
# (``build_tables``, see lightml/log/opening.py) instead of going without.
LOG_INDEXES: list[str] = [m.TABLE for m in (
    model_event, model_tombstone, unlinked_child, run_tombstone, model_arrival, model_reparent)]

Handler = Callable[[sqlite3.Connection, list[Change]], None]

# For each event type, the handlers in the order that keeps foreign keys valid at every
# statement: parents before children on insert, children before parents on delete.
# (The log's indexes have no foreign keys: they come last.)
HANDLERS: dict[str, list[Handler]] = {
    ev.RUN_CREATED: [run.on_run_created, id_counter.on_run_created],
    ev.MODEL_REGISTERED: [
        model.on_model_registered,
        id_counter.on_model_registered,
        model_event.on_event_about_a_model,
        model_arrival.on_model_arrived,
    ],
    ev.CHECKPOINT_REGISTERED: [
        checkpoint.on_checkpoint_registered,
        id_counter.on_checkpoint_registered,
        model_event.on_event_about_a_model,
    ],
    ev.METRIC_INSERTED: [
        metrics.on_metric_inserted,
        metric_repeats.on_metric_inserted,
        detailed_scores.on_metric_inserted,
        score_docs.on_metric_inserted,
        score_sources.on_metric_inserted,
        metric_insert_range.on_metric_inserted,
        event_settings.on_metric_event,
        model_event.on_event_about_a_model,
    ],
    ev.METRIC_OVERWRITTEN: [
        metric_repeats.on_metric_overwritten,  # (first: the metric's mean and scores are the repeats')
        metrics.on_metric_overwritten,
        detailed_scores.on_metric_overwritten,
        score_docs.on_metric_overwritten,
        score_sources.on_metric_overwritten,
        metric_history.on_metric_overwritten,
        event_settings.on_metric_event,
        model_event.on_event_about_a_model,
    ],
    ev.MODEL_DELETED: [
        metric_history.on_model_deleted,
        metric_repeats.on_model_deleted,
        model_param.on_model_deleted,
        model_tag.on_model_deleted,
        score_sources.on_model_deleted,
        score_docs.on_model_deleted,
        detailed_scores.on_model_deleted,
        metrics.on_model_deleted,
        checkpoint.on_model_deleted,
        imported_file.on_model_deleted,
        model.on_model_deleted,
        model_event.on_event_about_a_model,
        model_tombstone.on_model_deleted,
        unlinked_child.on_model_deleted,
    ],
    ev.MODEL_RESTORED: [
        model.on_model_restored,
        checkpoint.on_model_restored,
        metrics.on_model_restored,
        metric_repeats.on_model_restored,
        detailed_scores.on_model_restored,
        score_docs.on_model_restored,
        score_sources.on_model_restored,
        metric_history.on_model_restored,
        model_param.on_model_restored,
        model_tag.on_model_restored,
        model_event.on_event_about_a_model,
        model_arrival.on_model_arrived,
    ],
    ev.SCHEMA_RULE_ADDED: [registry_schema.on_schema_rule_added],
    ev.MODEL_NOTES_SET: [model.on_model_notes_set, model_event.on_event_about_a_model],
    ev.MODEL_RENAMED: [model.on_model_renamed, model_event.on_event_about_a_model],
    ev.MODEL_HIDDEN_SET: [model.on_model_hidden_set, model_event.on_event_about_a_model],
    ev.MODEL_REPARENTED: [
        model.on_model_reparented,
        model_event.on_event_about_a_model,
        model_reparent.on_model_reparented,
    ],
    ev.RUN_DELETED: [run.on_run_deleted, run_tombstone.on_run_deleted],
    ev.RUN_RESTORED: [run.on_run_restored],
    ev.FILE_IMPORTED: [imported_file.on_file_imported, model_event.on_event_about_a_model],
    ev.SETTINGS_RECORDED: [settings.on_settings_recorded],
    ev.MODEL_PARAMS_SET: [model_param.on_model_params_set, model_event.on_event_about_a_model],
    ev.MODEL_TAGS_SET: [model_tag.on_model_tags_set, model_event.on_event_about_a_model],
    ev.DASHBOARD_ITEM_SAVED: [dashboard_item.on_item_saved],
    ev.DASHBOARD_ITEM_REMOVED: [dashboard_item.on_item_removed],
    ev.DASHBOARD_ITEM_RESTORED: [dashboard_item.on_item_restored],
    ev.DASHBOARD_ITEMS_REORDERED: [dashboard_item.on_items_reordered],
}


def _table_of(handler: Handler) -> str:
    return sys.modules[handler.__module__].TABLE


def _tables_of(handlers: list[Handler]) -> frozenset[str]:
    return frozenset(_table_of(handler) for handler in handlers)


# Which read tables each event type changes, derived from HANDLERS (the one statement of it):
# the writer's id cache and the dashboard's pivot cache ask this instead of listing types.
TABLES_CHANGED: dict[str, frozenset[str]] = {event_type: _tables_of(handlers) for event_type, handlers in HANDLERS.items()}


def apply(conn: sqlite3.Connection, events: Iterable[Change], handlers: dict[str, list[Handler]] = HANDLERS) -> None:
    """Apply events, in log order, to the read tables (runs of one type go in one batch)."""
    for event_type, group in groupby(events, key=attrgetter("type")):
        batch = list(group)
        for handler in handlers[event_type]:
            handler(conn, batch)


def build_tables(conn: sqlite3.Connection, chunks: Iterable[list[Change]], tables: Collection[str]) -> None:
    """Fill ``tables`` (created empty by the caller, perhaps as TEMP tables) from the log,
    given as ``rebuild`` takes it, running only their own handlers."""
    handlers = {event_type: [h for h in hs if _table_of(h) in tables]
                for event_type, hs in HANDLERS.items()}
    for chunk in chunks:
        apply(conn, chunk, handlers)


def create_tables(conn: sqlite3.Connection, *, indexes: bool = True) -> None:
    """The read tables; with ``indexes``, their indexes and guards too (see ``guard``)."""
    for module in MODULES:
        conn.execute(module.DDL)
    if indexes:
        create_indexes(conn)
        create_guards(conn)


def create_guards(conn: sqlite3.Connection) -> None:
    """The triggers that refuse writes to the read tables from outside LightML's writer."""
    guard.create_guards(conn, READ_TABLES)


def unguarded_tables(conn: sqlite3.Connection) -> list[str]:
    return guard.unguarded_tables(conn, READ_TABLES)


# Declared column type -> the storage classes a value of it may have (NULL aside). SQLite
# stores what it is given where it cannot convert it, e.g. text in a REAL column.
_STORAGE_CLASSES = {"INTEGER": ("integer",), "REAL": ("real",), "TEXT": ("text",)}
_FLOAT_MAX = 1.7976931348623157e308


def first_mistyped_value(conn: sqlite3.Connection) -> str | None:
    """A read-table value whose storage class is not its column's, or an infinite REAL
    ("table.column = value"), or None. A rebuilt table holds one only if an event carried a value of the wrong type:
    one scan per table, the cheap check that replay makes after every rebuild."""
    postgres = dialect_of(conn) == "postgresql"
    for table in READ_TABLES:
        checks = [(name, _STORAGE_CLASSES[kind.upper()]) for name, kind in _declared_types(conn, table)
                  if kind.upper() in _STORAGE_CLASSES]
        if not checks:
            continue
        columns = ", ".join(f'"{name}"' for name, _ in checks)
        # (PostgreSQL's columns hold only values of their type: there only infinity can be wrong.)
        wrong = "FALSE" if postgres else " OR ".join(
            f"""typeof("{name}") NOT IN ('{classes[0]}', 'null')""" for name, classes in checks)
        # Infinity is a REAL SQLite keeps (NaN it turns into NULL), and no value may be one.
        wrong += "".join(f' OR abs("{name}") > {_FLOAT_MAX!r}' for name, classes in checks if classes == ("real",))
        row = conn.execute(f'SELECT {columns} FROM main."{table}" WHERE {wrong} LIMIT 1').fetchone()
        if row is not None:
            name, value = next((name, value) for (name, classes), value in zip(checks, row)
                               if value is not None and (_storage_class(value) not in classes
                                                         or (type(value) is float and abs(value) > _FLOAT_MAX)))
            return f"{table}.{name} = {value!r}"
    for module in MODULES:
        damaged = None if postgres else getattr(module, "DAMAGED_ROW", None)  # (SQLite's JSON functions)
        if damaged is not None:
            row = conn.execute(f'SELECT rowid FROM main."{module.TABLE}" WHERE {damaged} LIMIT 1').fetchone()
            if row is not None:
                return f"{module.TABLE} row {row[0]} (a value that is not what its event type holds)"
    return None


_PG_TYPES = {"bigint": "INTEGER", "integer": "INTEGER", "double precision": "REAL", "text": "TEXT"}


def _declared_types(conn, table: str) -> list[tuple[str, str]]:
    """(column, declared type as SQLite names it) of a read table."""
    if dialect_of(conn) == "postgresql":
        return [(name, _PG_TYPES.get(kind, kind)) for name, kind in conn.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ? ORDER BY ordinal_position", (table,))]
    return [(name, kind) for _, name, kind, *_ in conn.execute(f'PRAGMA main.table_info("{table}")')]


def _storage_class(value: object) -> str:
    return {int: "integer", float: "real", str: "text"}.get(type(value), "blob")


def create_indexes(conn: sqlite3.Connection) -> None:
    for module in MODULES:
        for statement in module.INDEXES:
            conn.execute(statement)


def drop_tables(conn: sqlite3.Connection) -> None:
    for module in reversed(MODULES):
        conn.execute(f'DROP TABLE IF EXISTS main."{module.TABLE}"')


def rebuild(conn: sqlite3.Connection, chunks: Iterable[list[Change]]) -> int:
    """Drop and rebuild every read table from the log, given as lists of events in log
    order; returns how many were applied.

    Runs in the caller's transaction. Secondary indexes are built after the rows, which is
    several times faster than maintaining them row by row, and so are the guards (the
    caller's transaction need not be marked as LightML's own while it fills the tables).
    """
    drop_tables(conn)
    create_tables(conn, indexes=False)
    count = 0
    for chunk in chunks:
        apply(conn, chunk)
        count += len(chunk)
    create_indexes(conn)
    create_guards(conn)
    return count
