"""projections.apply and projections.rebuild: the read tables applied event by event on a
live file are, row for row and ids included, those rebuilt from the log, in any chunking,
and those LightML's writer made (which applies events in groups)."""

from __future__ import annotations

import pytest

import projections

# The read tables the log of ``every_event_registry`` leaves rows in.
TABLES_WITH_ROWS = ["run", "model", "checkpoint", "metrics", "detailed_scores", "score_docs", "score_sources",
                    "registry_schema", "metric_insert_range", "metric_history", "id_counter", "imported_file",
                    "dashboard_item"]


def test_the_registry_used_here_holds_every_event_type(bench, every_event_registry):
    # If a new event type is added, extend conftest._every_event so the rebuild covers it.
    assert {change.type for change in bench.log_of(every_event_registry)} == set(projections.HANDLERS)


@pytest.mark.parametrize("chunk", [None, 1, 3], ids=["one-chunk", "chunks-of-1", "chunks-of-3"])
def test_applying_events_one_by_one_equals_rebuilding_from_the_log(bench, every_event_registry, chunk):
    changes = bench.log_of(every_event_registry)
    live = bench.state(bench.live(changes))
    rebuilt = bench.state(bench.rebuilt(changes, chunk))
    assert live == rebuilt
    assert [table for table in TABLES_WITH_ROWS if not live[table]] == []  # nothing compared vacuously


def test_the_writers_tables_equal_the_tables_applied_one_by_one(bench, every_event_registry):
    changes = bench.log_of(every_event_registry)
    assert bench.registry_state(every_event_registry) == bench.state(bench.live(changes))


def test_rebuild_replaces_whatever_the_tables_held(bench, every_event_registry):
    changes = bench.log_of(every_event_registry)
    conn = bench.live(changes)
    expected = bench.state(conn)
    conn.execute("BEGIN IMMEDIATE")
    assert projections.rebuild(conn, [changes[:5], changes[5:]]) == len(changes)  # over full tables
    conn.execute("COMMIT")
    assert bench.state(conn) == expected
