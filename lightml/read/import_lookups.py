"""What ``scan`` and ``merge`` ask of the registry they write into: the files earlier scans
imported, the models of a run, and the metrics a model or checkpoint already has."""

from __future__ import annotations

import sqlite3


def imported_files(conn: sqlite3.Connection) -> dict[str, tuple[str, int, int, int]]:
    """path -> (sha256, size, mtime_ns, model id) of every file ``scan`` recorded."""
    return {path: (sha, size, mtime_ns, model_id) for path, sha, size, mtime_ns, model_id in conn.execute(
        "SELECT path, sha256, size, mtime_ns, model_id FROM imported_file")}


def models_of_run(conn: sqlite3.Connection, run_name: str) -> dict[str, int]:
    """model name -> id, for the models of the run (none if there is no such run)."""
    return dict(conn.execute("SELECT m.model_name, m.id FROM model m JOIN run r ON r.id = m.run_id "
                             "WHERE r.run_name = ?", (run_name,)))


def metric_names(conn: sqlite3.Connection, model_id: int) -> set[tuple[str, str]]:
    """The (family, metric_name) pairs the model has."""
    return set(conn.execute("SELECT family, metric_name FROM metrics WHERE model_id = ?", (model_id,)))


def values_and_whether_scored(conn: sqlite3.Connection, model_id: int) -> dict[tuple[str, str], tuple[float, bool]]:
    """(family, metric_name) -> (value, has per-sample scores) of the model's metrics (the
    scores themselves are not read)."""
    return {(family, name): (value, scored) for family, name, value, scored in conn.execute(
        "SELECT x.family, x.metric_name, x.value, d.metric_id IS NOT NULL FROM metrics x "
        "LEFT JOIN detailed_scores d ON d.metric_id = x.id WHERE x.model_id = ?", (model_id,))}


def values_and_scores(conn: sqlite3.Connection, key_column: str, key: int) -> dict[tuple[str, str], tuple]:
    """(family, metric_name) -> (value, scores JSON text or None) of the metrics of a model
    (``key_column`` "model_id") or of a checkpoint ("checkpoint_id")."""
    return {(family, name): (value, scores) for family, name, value, scores in conn.execute(
        f"SELECT m.family, m.metric_name, m.value, d.scores FROM metrics m "
        f"LEFT JOIN detailed_scores d ON d.metric_id = m.id WHERE m.{key_column} = ?", (key,))}
