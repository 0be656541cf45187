"""The ``event_settings`` table: which settings the values of a metric event were produced
with, one row per metric event that says (its ``settings``: family -> settings ids, as JSON).

Nothing is stored per metric: a value's settings are those of the event that last set it
(its ``metric_insert_range`` row, or its latest ``overwritten`` row in ``metric_history``),
so 1,000 values logged in one call cost one row here. See ``lightml.read.settings``.
"""

import json

from lightml.log.events import Change

TABLE = "event_settings"
DDL = """
CREATE TABLE event_settings (
    seq      INTEGER PRIMARY KEY,
    settings TEXT NOT NULL
)"""
INDEXES: list[str] = []
DAMAGED_ROW = "CASE WHEN json_valid(settings) THEN json_type(settings) <> 'object' ELSE 1 END"


def on_metric_event(conn, events: list[Change]) -> None:
    rows = [(e.seq, json.dumps(e.payload["settings"], separators=(",", ":"), ensure_ascii=False))
            for e in events if "settings" in e.payload]
    if rows:
        conn.executemany("INSERT INTO event_settings (seq, settings) VALUES (?, ?)", rows)
