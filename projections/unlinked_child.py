"""The ``unlinked_child`` table: the children each delete of a model unlinked.

One row per child per ``model_deleted`` event (its snapshot's ``children``), kept after a
restore: the relink rule asks which deleted parent a model had (``lightml.write.lifecycle``).
"""

from lightml.log.events import Change

TABLE = "unlinked_child"
DDL = """
CREATE TABLE unlinked_child (
    child_id  INTEGER NOT NULL,
    seq       INTEGER NOT NULL,
    parent_id INTEGER NOT NULL,
    PRIMARY KEY (child_id, seq)
) WITHOUT ROWID"""
INDEXES: list[str] = []


def on_model_deleted(conn, events: list[Change]) -> None:
    conn.executemany(
        "INSERT INTO unlinked_child (child_id, seq, parent_id) VALUES (?, ?, ?)",
        # dict.fromkeys: a child named twice in one snapshot (a hand-made log) is one row
        [(child, e.seq, e.payload["model_id"]) for e in events
         for child in dict.fromkeys(e.payload["snapshot"]["children"])],
    )
