"""projections.metric_insert_range: which event inserted which metric ids, (first id, last id, seq)."""

from __future__ import annotations

import sqlite3

from lightml.ingest.migrate import migrate
from lightml.log import events as ev


def test_a_single_metric_and_a_bulk_call_each_make_one_range_row(bench):
    changes = bench.log(lambda h: (h.register_model("a", "org/a"), h.log_model_metric("a", "f", "m", 0.5),
                                   h.log_metrics_flat("a", {"x": 1.0, "y": 2.0, "z": 3.0}, "g")))
    single, bulk = bench.of_type(changes, ev.METRIC_INSERTED)
    assert bench.rows(bench.live(changes), "metric_insert_range") == [(1, 1, single.seq), (2, 4, bulk.seq)]


def test_overwrites_add_no_range(bench):
    changes = bench.log(lambda h: (h.register_model("a", "org/a"), h.log_model_metric("a", "f", "m", 0.5),
                                   h.log_model_metric("a", "f", "m", 0.75, force=True)))
    before, after, _ = bench.step(changes, ev.METRIC_OVERWRITTEN, "metric_insert_range")
    assert before == after == [(1, 1, bench.of_type(changes, ev.METRIC_INSERTED)[0].seq)]


def test_ids_that_are_not_consecutive_give_one_row_per_run_of_ids(bench, tmp_path):
    # Only a migrated 1.x registry has them: two models' metrics interleaved by id.
    db = tmp_path / "v1.db"
    conn = sqlite3.connect(db)
    conn.executescript("""
        CREATE TABLE run (id INTEGER PRIMARY KEY, run_name TEXT UNIQUE, description TEXT, metadata TEXT,
                          created_at TEXT);
        CREATE TABLE model (id INTEGER PRIMARY KEY, model_name TEXT, path TEXT, parent_id INTEGER,
                            run_id INTEGER, UNIQUE(model_name, run_id));
        CREATE TABLE metrics (id INTEGER PRIMARY KEY, model_id INTEGER, checkpoint_id INTEGER,
                              family TEXT, metric_name TEXT, value REAL);
        INSERT INTO run VALUES (1, 'r', NULL, NULL, '2024-03-01 10:00:00');
        INSERT INTO model VALUES (1, 'a', 'org/a', NULL, 1), (2, 'b', 'org/b', NULL, 1);
        INSERT INTO metrics VALUES (1, 1, NULL, 'f', 'm1', 0.1), (2, 1, NULL, 'f', 'm2', 0.2),
                                   (3, 2, NULL, 'f', 'm1', 0.3), (5, 1, NULL, 'f', 'm3', 0.5),
                                   (6, 1, NULL, 'f', 'm4', 0.6), (7, 2, NULL, 'f', 'm2', 0.7),
                                   (9, 1, NULL, 'f', 'm5', 0.9);
    """)
    conn.commit()
    conn.close()
    migrate(db)
    changes = bench.log_of(db)
    of_a, of_b = bench.of_type(changes, ev.METRIC_INSERTED)
    assert [m["metric_id"] for m in of_a.payload["metrics"]] == [1, 2, 5, 6, 9]
    assert bench.rows(bench.live(changes), "metric_insert_range") == [
        (1, 2, of_a.seq), (3, 3, of_b.seq), (5, 6, of_a.seq), (7, 7, of_b.seq), (9, 9, of_a.seq)]


def test_a_model_delete_keeps_the_ranges(bench):
    # Ids are never given again: the ranges say which ids were ever given, deleted or not.
    changes = bench.log(lambda h: (h.register_model("a", "org/a"), h.log_metrics_flat("a", {"x": 1.0, "y": 2.0}, "g"),
                                   h.delete_model("a")))
    before, after, _ = bench.step(changes, ev.MODEL_DELETED, "metric_insert_range")
    assert before == after == [(1, 2, bench.of_type(changes, ev.METRIC_INSERTED)[0].seq)]
