"""Builders make commands without a registry: input is checked and the command is built
before anything is opened or queued; the runner runs the very same command later."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from lightml import METRIC_INSERTED
from lightml.defaults import DEFAULT_RUN
from lightml.errors import InvalidInputError
from lightml.runner import Registry
from lightml.write import builders
from lightml.write.metric_log import CheckpointTarget, LogMetrics, MetricInput, ModelTarget


def test_a_builder_makes_a_command_without_touching_a_file(tmp_path: Path) -> None:
    folder = tmp_path / "no-registry-here"  # does not exist: a builder must not need it
    no_run = builders.Scope(None, folder)
    in_run = builders.Scope("sweep-1", folder)

    single = builders.log_model_metric(no_run, "org/m", "fam", "acc", 0.5)
    assert isinstance(single, LogMetrics)
    assert single.target == ModelTarget(DEFAULT_RUN, "org/m")  # no run: writes go to the default run
    assert single.items == [MetricInput("fam", "acc", 0.5)]
    assert (single.force, single.single) == (False, True)

    bulk = builders.log_metrics(in_run, "org/m", {"fam": {"acc": 1, "f1": 0.25}}, force=True)
    assert bulk.target == ModelTarget("sweep-1", "org/m")
    assert bulk.items == [MetricInput("fam", "acc", 1.0), MetricInput("fam", "f1", 0.25)]
    assert (bulk.force, bulk.single) == (True, False)

    scored = builders.log_checkpoint_metric(7, "fam", "acc", 0.5, scores=[1, 0], doc_ids=["a", "b"])
    assert scored.target == CheckpointTarget(7)
    assert scored.items == [MetricInput("fam", "acc", 0.5, "[1,0]", 2, '["a","b"]')]

    for command in (builders.register_model(in_run, "org/m", "hub/m"), builders.delete_model(in_run, "org/m"),
                    builders.set_notes(in_run, "org/m", "note"), builders.prune(in_run)):
        assert callable(command)
    assert list(tmp_path.iterdir()) == []  # nothing made: no folder, no database, no link


def test_bad_input_is_refused_while_building(tmp_path: Path) -> None:
    scope = builders.Scope("r", tmp_path)
    with pytest.raises(InvalidInputError):
        builders.log_model_metric(scope, "org/m", "fam", "acc", math.nan)
    with pytest.raises(InvalidInputError):
        builders.log_metrics(scope, "org/m", {"fam": [0.5]})
    with pytest.raises(InvalidInputError):
        builders.set_hidden(scope, "org/m", "yes")
    assert list(tmp_path.iterdir()) == []


def test_the_runner_runs_what_a_builder_made(tmp_path: Path) -> None:
    db = tmp_path / "main.db"
    scope = builders.Scope("r", tmp_path)
    register = builders.register_model(scope, "org/m", "hub/m")
    log = builders.log_model_metric(scope, "org/m", "fam", "acc", 0.5)
    registry = Registry(db, "r")
    try:
        assert registry.scope == scope  # a handle's builders get the same scope
        model_id = registry.run(register)
        assert registry.run(log) == METRIC_INSERTED
        assert registry.read(lambda c: c.execute("SELECT model_id, value FROM metrics").fetchall()) == [(model_id, 0.5)]
    finally:
        registry.close()
