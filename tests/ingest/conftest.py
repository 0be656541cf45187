"""What the merge tests share: a LightML 1.x file to merge from, a way to change a source's
read tables behind its log, and the rows a merge is judged by."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def one_model_1x_file() -> Callable[[Path], Path]:
    """``one_model_1x_file(path)``: a LightML 1.x database there (read tables only, no
    detailed_scores): run 1 'r' with model 1 'm'."""

    def make(path: Path) -> Path:
        with sqlite3.connect(path) as conn:
            conn.executescript("""
                CREATE TABLE run (id INTEGER PRIMARY KEY, run_name TEXT, description TEXT, metadata TEXT,
                                  created_at TEXT);
                CREATE TABLE model (id INTEGER PRIMARY KEY, model_name TEXT, path TEXT, parent_id INTEGER,
                                    run_id INTEGER);
                CREATE TABLE checkpoint (id INTEGER PRIMARY KEY, model_id INTEGER, step INTEGER, path TEXT,
                                         created_at TEXT);
                CREATE TABLE metrics (id INTEGER PRIMARY KEY, model_id INTEGER, checkpoint_id INTEGER, family TEXT,
                                      metric_name TEXT, value REAL);
                INSERT INTO run VALUES (1, 'r', NULL, NULL, '2024-01-01 00:00:00');
                INSERT INTO model VALUES (1, 'm', 'org/m', NULL, 1);""")
        return path

    return make


@pytest.fixture
def tamper() -> Callable[[sqlite3.Connection, str], None]:
    """``tamper(conn, sql)``: change a read table behind the log, as a broken or foreign tool
    could: without the triggers that keep LightML 1.x clients out."""

    def run(conn: sqlite3.Connection, sql: str) -> None:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'").fetchall():
            conn.execute(f'DROP TRIGGER "{name}"')
        conn.execute(sql)

    return run


@pytest.fixture
def models_and_metrics() -> Callable[[Path], dict[str, list]]:
    """``models_and_metrics(db)``: every model (name, run, parent, notes) and every model metric
    (model, family, metric, value, scores), ordered."""

    def read(db: Path) -> dict[str, list]:
        with sqlite3.connect(db) as conn:
            return {
                "models": conn.execute("SELECT m.model_name, r.run_name, p.model_name, m.notes FROM model m "
                                       "JOIN run r ON r.id = m.run_id LEFT JOIN model p ON p.id = m.parent_id "
                                       "ORDER BY 1, 2").fetchall(),
                "metrics": conn.execute("SELECT mo.model_name, x.family, x.metric_name, x.value, d.scores "
                                        "FROM metrics x JOIN model mo ON mo.id = x.model_id "
                                        "LEFT JOIN detailed_scores d ON d.metric_id = x.id "
                                        "ORDER BY 1, 2, 3").fetchall(),
            }

    return read
