"""projections.run: the ``run`` rows that run_created, run_deleted and run_restored make."""

from __future__ import annotations

import re

from lightml.log import events as ev


def _prune_a_run(handle) -> None:
    """Run "scratch" holds one empty model: prune deletes both; restoring the model brings the run back."""
    handle.register_model("kept", "org/kept")
    handle.log_model_metric("kept", "f", "m", 0.5)
    handle.register_model("empty", "org/empty", run_name="scratch")
    handle.prune(grace_seconds=0)
    handle.restore_model("empty", run_name="scratch")


def test_run_created_inserts_the_run_with_its_id_and_a_1x_style_timestamp(bench):
    changes = bench.log(lambda h: h.register_model("m", "org/m", run_name="other"))
    before, after, event = bench.step(changes, ev.RUN_CREATED, "run")
    created_at = event.payload["created_at"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", created_at)  # SQLite's CURRENT_TIMESTAMP shape
    assert before == [(1, "r", None, None, bench.of_type(changes, ev.RUN_CREATED)[0].payload["created_at"])]
    assert after == before + [(2, "other", None, None, created_at)]


def test_run_deleted_removes_only_that_run(bench):
    changes = bench.log(_prune_a_run)
    before, after, event = bench.step(changes, ev.RUN_DELETED, "run")
    assert event.payload["run_name"] == "scratch"
    assert [row[:2] for row in before] == [(1, "r"), (2, "scratch")]
    assert after == before[:1]


def test_run_restored_puts_back_the_row_prune_removed_under_its_old_id(bench):
    changes = bench.log(_prune_a_run)
    deleted_at = max(i for i, c in enumerate(changes) if c.type == ev.RUN_DELETED)
    row_before_delete = bench.rows(bench.live(changes[:deleted_at]), "run")
    before, after, event = bench.step(changes, ev.RUN_RESTORED, "run")
    assert event.payload["run_id"] == 2
    assert [row[1] for row in before] == ["r"]
    assert after == row_before_delete  # the same row, created_at included
