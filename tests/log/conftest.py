"""What the log tests share: a LightML 1.4 registry migrated to 2.x (as a 1.x client left it),
and dumps of a file's rows to compare before and after."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

import projections
from lightml.ingest.migrate import migrate

# LightML 1.4's own DDL (database.py), and rows as its handle writes them.
V14_DDL = """
CREATE TABLE run (id INTEGER PRIMARY KEY, run_name TEXT NOT NULL UNIQUE, description TEXT, metadata TEXT,
                  created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE model (id INTEGER PRIMARY KEY, model_name TEXT NOT NULL, path TEXT NOT NULL, parent_id INTEGER,
                    notes TEXT, hidden INTEGER NOT NULL DEFAULT 0, run_id INTEGER NOT NULL,
                    FOREIGN KEY(parent_id) REFERENCES model(id) ON DELETE SET NULL,
                    FOREIGN KEY(run_id) REFERENCES run(id) ON DELETE CASCADE, UNIQUE(model_name, run_id));
CREATE TABLE checkpoint (id INTEGER PRIMARY KEY, model_id INTEGER NOT NULL, step INTEGER NOT NULL,
                         path TEXT NOT NULL, created_at TEXT NOT NULL,
                         FOREIGN KEY(model_id) REFERENCES model(id) ON DELETE CASCADE);
CREATE TABLE registry_schema (family TEXT NOT NULL, metric_name TEXT NOT NULL, PRIMARY KEY (family, metric_name));
CREATE TABLE metrics (id INTEGER PRIMARY KEY, model_id INTEGER, checkpoint_id INTEGER, family TEXT NOT NULL,
                      metric_name TEXT NOT NULL, value REAL NOT NULL,
                      FOREIGN KEY(model_id) REFERENCES model(id) ON DELETE CASCADE,
                      FOREIGN KEY(checkpoint_id) REFERENCES checkpoint(id) ON DELETE CASCADE);
CREATE TABLE detailed_scores (metric_id INTEGER NOT NULL PRIMARY KEY, scores TEXT NOT NULL,
                              n_samples INTEGER NOT NULL,
                              FOREIGN KEY(metric_id) REFERENCES metrics(id) ON DELETE CASCADE);
INSERT INTO run (id, run_name, created_at) VALUES (1, 'r', '2024-01-01 00:00:00');
INSERT INTO model (id, model_name, path, parent_id, run_id) VALUES (1, 'm', 'hub/m', NULL, 1);
INSERT INTO model (id, model_name, path, parent_id, run_id) VALUES (2, 'child', 'hub/child', 1, 1);
INSERT INTO checkpoint VALUES (1, 1, 100, 'hub/m/ck100', '2024-01-01T00:00:00');
INSERT INTO metrics VALUES (1, 1, NULL, 'fam', 'acc', 0.5);
INSERT INTO metrics VALUES (2, 1, NULL, 'fam', 'f1', 0.25);
INSERT INTO metrics VALUES (3, NULL, 1, 'fam', 'acc', 0.4);
INSERT INTO detailed_scores VALUES (1, '[1, 0]', 2);
"""



@pytest.fixture
def make_migrated_registry(verify_at_teardown) -> Callable[[Path], Path]:
    """``make_migrated_registry(path)``: the rows of ``V14_DDL`` written by LightML 1.4 there
    (the same registry as ``make_small_registry``), migrated."""

    def make(db: Path) -> Path:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            conn.executescript(V14_DDL)
        assert migrate(db).migrated
        return verify_at_teardown(db)

    return make


@pytest.fixture
def dump() -> Callable[[Path], dict[str, list]]:
    """``dump(db)``: every row of the log and of every read table (sorted), read without LightML."""

    def read(db: Path) -> dict[str, list]:
        with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
            return {table: sorted(conn.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)
                    for table in ["events", *projections.READ_TABLES]}

    return read


@pytest.fixture
def dump_tables() -> Callable[..., dict[str, list[tuple]]]:
    """``dump_tables(db, tables=None)``: every row of the tables named (default: every table,
    events included), ordered by all columns, read with plain sqlite3."""

    def read(db: Path, tables: list[str] | None = None) -> dict[str, list[tuple]]:
        conn = sqlite3.connect(db)
        try:
            names = tables or [r[0] for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
            rows = {}
            for name in names:
                n_columns = len(conn.execute(f'PRAGMA table_info("{name}")').fetchall())
                order = ", ".join(str(i) for i in range(1, n_columns + 1))
                rows[name] = conn.execute(f'SELECT * FROM "{name}" ORDER BY {order}').fetchall()
            return rows
        finally:
            conn.close()

    return read
