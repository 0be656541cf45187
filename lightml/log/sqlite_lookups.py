"""SQLite's answers to the questions that need its JSON functions (``json_each``,
``json_extract``): which metrics of a target exist (a bulk log asks for thousands of pairs
at once), and every value the log gave a metric (merge reads a source registry's log)."""

from __future__ import annotations

import json
import sqlite3
from typing import TYPE_CHECKING

from lightml.log import events as ev

if TYPE_CHECKING:  # the adapter module is imported by engine_for: no import back at run time
    from lightml.log.engine import ExistingMetrics


def existing_metrics(conn, key_column: str, key: int, pairs: set[tuple[str, str]]) -> ExistingMetrics:
    """(family, metric_name) -> (metric id, value) for the pairs that already exist.

    The pairs go in as one JSON array, and each is looked up in the unique index: a
    query linear in the pairs asked for, however many metrics the target already has.
    A bulk call asks first which of its families the target has at all (new families,
    the usual case, then cost one probe each instead of one per metric).
    """
    if len(pairs) == 1:  # a single log_model_metric: one plain indexed lookup
        return existing_metrics_one_by_one(conn, key_column, key, pairs)
    families = list({family for family, _ in pairs})
    if len(families) * 4 <= len(pairs):
        families_json = _json_names(families)
        if families_json is None:
            return existing_metrics_one_by_one(conn, key_column, key, pairs)
        present = {family for (family,) in conn.execute(
            "SELECT wanted.value FROM json_each(?) AS wanted WHERE EXISTS (SELECT 1 FROM metrics AS m "
            f"WHERE m.{key_column} = ? AND m.{key_column} IS NOT NULL AND m.family = wanted.value)",
            (families_json, key))}
        if not present:
            return {}
        if len(present) < len(families):
            pairs = {pair for pair in pairs if pair[0] in present}
    pairs_json = _json_names(list(pairs))
    if pairs_json is None:
        return existing_metrics_one_by_one(conn, key_column, key, pairs)
    sql = (
        "SELECT m.family, m.metric_name, m.id, m.value FROM json_each(?) AS wanted CROSS JOIN metrics AS m "
        f"WHERE m.{key_column} = ? AND m.{key_column} IS NOT NULL "
        "AND m.family = json_extract(wanted.value, '$[0]') AND m.metric_name = json_extract(wanted.value, '$[1]')"
    )
    rows = conn.execute(sql, (pairs_json, key))
    return {(family, name): (mid, value) for family, name, mid, value in rows}


def _json_names(values: list) -> str | None:
    """The JSON text of names (or name pairs) for a lookup through json_each, or None when
    a name holds a NUL character, which SQLite's JSON functions do not give back intact
    (names from the API never do: only a merged 1.x file can bring one)."""
    text = json.dumps(values, ensure_ascii=False)  # (a lone surrogate passes here; SQLite refuses it)
    return None if "\\u0000" in text else text


def existing_metrics_one_by_one(conn, key_column: str, key: int, pairs: set[tuple[str, str]]) -> ExistingMetrics:
    """As ``existing_metrics``, with one query per pair."""
    sql = (f"SELECT id, value FROM metrics WHERE {key_column} = ? AND {key_column} IS NOT NULL "
           "AND family = ? AND metric_name = ?")
    existing = {}
    for family, name in pairs:
        row = conn.execute(sql, (key, family, name)).fetchone()
        if row is not None:
            existing[(family, name)] = row
    return existing


# One pass over the metric events, their items unpacked by SQLite.
_METRIC_VALUES = f"""
SELECT e.type, json_extract(item.value, '$.metric_id'), json_extract(item.value, '$.value'),
       json_extract(item.value, '$.original_at'), json_extract(item.value, '$.original_actor'),
       e.at, e.user, e.host, e.origin
FROM events e, json_each(e.payload, '$.metrics') AS item
WHERE e.type IN ('{ev.METRIC_INSERTED}', '{ev.METRIC_OVERWRITTEN}') ORDER BY e.seq"""


def metric_value_rows(conn) -> list[tuple] | None:
    """Every value the log gave a metric, in log order (see ``StorageEngine.metric_value_rows``)."""
    try:
        return conn.execute(_METRIC_VALUES).fetchall()
    except sqlite3.Error:
        return None
