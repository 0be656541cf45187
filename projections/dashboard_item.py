"""The ``dashboard_item`` table: the dashboard's saved charts, views and summary sets.

A removed item keeps its row (``removed_seq`` set) so that a restore brings it back as it was;
its name is free for another item meanwhile (names are unique among the live items of a kind).
``changed_seq`` is the event that last changed the item: who and when are in that event.
"""

from __future__ import annotations

from lightml.log.events import Change

TABLE = "dashboard_item"
DDL = """
CREATE TABLE dashboard_item (
    id          INTEGER PRIMARY KEY,
    kind        TEXT NOT NULL,
    name        TEXT NOT NULL,
    position    INTEGER NOT NULL,
    spec        TEXT NOT NULL,
    changed_seq INTEGER NOT NULL,
    removed_seq INTEGER
)"""
INDEXES = ["CREATE UNIQUE INDEX IF NOT EXISTS dashboard_item_live_name ON dashboard_item(kind, name) "
           "WHERE removed_seq IS NULL"]
# A row no sound event gives (replay checks the rebuilt table for one).
DAMAGED_ROW = "CASE WHEN json_valid(spec) THEN json_type(spec) <> 'object' ELSE 1 END"


def on_item_saved(conn, events: list[Change]) -> None:
    for event in events:
        p = event.payload
        conn.execute(
            "INSERT INTO dashboard_item (id, kind, name, position, spec, changed_seq, removed_seq) "
            "VALUES (?, ?, ?, ?, ?, ?, NULL) ON CONFLICT (id) DO UPDATE SET "
            "name = excluded.name, position = excluded.position, spec = excluded.spec, changed_seq = excluded.changed_seq",
            (p["item_id"], p["kind"], p["name"], p["position"], p["spec"], event.seq))


def on_item_removed(conn, events: list[Change]) -> None:
    conn.executemany("UPDATE dashboard_item SET removed_seq = ?, changed_seq = ? WHERE id = ?",
                     [(e.seq, e.seq, e.payload["item_id"]) for e in events])


def on_item_restored(conn, events: list[Change]) -> None:
    conn.executemany("UPDATE dashboard_item SET removed_seq = NULL, position = ?, changed_seq = ? WHERE id = ?",
                     [(e.payload["position"], e.seq, e.payload["item_id"]) for e in events])


def on_items_reordered(conn, events: list[Change]) -> None:
    for event in events:
        conn.executemany("UPDATE dashboard_item SET position = ? WHERE id = ?",
                         [(position, item_id) for position, item_id in enumerate(event.payload["item_ids"])])
