"""``legacy_tables.rows``: the one adapter for the tables of any LightML file (what migrate and
merge read): a column the file lacks reads as its default, a table it lacks as no rows."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from lightml.handle import LightMLHandle
from lightml.read import legacy_tables
from lightml.read.legacy_tables import DocKeys, Model, Run, Scores


def test_a_lightml_12_file_reads_with_defaults_for_what_it_lacks(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "v12.db") as conn:
        # Columns in another order than LightML's own: read by name.
        conn.execute("CREATE TABLE model (run_id INTEGER, id INTEGER PRIMARY KEY, model_name TEXT, parent_id INTEGER, "
                     "path TEXT)")
        conn.executemany("INSERT INTO model VALUES (?, ?, ?, ?, ?)", [(1, 5, "b", None, "/b"), (1, 2, "a", 5, None)])
        assert legacy_tables.rows(conn, Model) == [
            Model(id=2, model_name="a", path=None, parent_id=5, notes=None, hidden=0, run_id=1),
            Model(id=5, model_name="b", path="/b", parent_id=None, notes=None, hidden=0, run_id=1),
        ]
        assert legacy_tables.rows(conn, Scores) == []  # no detailed_scores table before 1.2
        assert legacy_tables.rows(conn, DocKeys) == []


def test_a_registry_reads_as_its_tables(tmp_path: Path) -> None:
    db = tmp_path / "r.db"
    with LightMLHandle(db, "r") as h:
        h.register_model("m", "/m")
        h.set_hidden("m", True)
        h.log_model_metric("m", "f", "acc", 0.5, scores=[1, 0], doc_ids=["x", "y"])
    with sqlite3.connect(db) as conn:
        (run,) = legacy_tables.rows(conn, Run)
        assert (run.id, run.run_name) == (1, "r")
        assert legacy_tables.rows(conn, Model) == [Model(1, "m", "/m", None, None, 1, 1)]
        assert legacy_tables.rows(conn, Scores) == [Scores(1, "[1,0]", 2)]
        assert legacy_tables.rows(conn, DocKeys) == [DocKeys(1, '["x","y"]')]
