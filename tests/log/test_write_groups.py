"""Group commit: the commands queued together share one transaction, and each one's
failure undoes that command only (its events, its buffered events, its ids, its hooks);
the transaction's read cache forgets an answer when an event changes its table."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lightml import LightMLHandle
from lightml.errors import NotFoundError, SchemaViolationError
from lightml.log.replay import verify
from lightml.log.transaction import ReadCache
from lightml.runner import Registry
from lightml.write import builders


def _rows(registry: Registry, sql: str) -> list[tuple]:
    return registry.read(lambda c: c.execute(sql).fetchall())


def test_a_failing_command_rolls_back_only_itself_and_leaves_no_gap_in_ids(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "main.db", "r")
    scope = registry.scope
    hooks_run: list[str] = []

    def register_and_log(name: str, *, fail: bool):
        def command(tx) -> int:
            model_id = builders.register_model(scope, name, f"hub/{name}")(tx)  # appended in the savepoint
            builders.log_model_metric(scope, name, "fam", "acc", 0.5).decide(tx)  # held in the buffer
            tx.after_commit.append(lambda: hooks_run.append(name))
            if fail:
                raise ValueError(f"{name} refused")
            return model_id

        return command

    try:
        outcomes = registry.submit_many([
            register_and_log("first", fail=False),
            register_and_log("doomed", fail=True),
            register_and_log("second", fail=False),
        ]).result()
        (first, ok1), (_, error), (second, ok2) = outcomes
        assert ok1 is None and ok2 is None and isinstance(error, ValueError)
        assert second == first + 1  # the doomed model's id was given back
        assert _rows(registry, "SELECT m.model_name, x.id FROM metrics x JOIN model m ON m.id = x.model_id "
                               "ORDER BY x.id") == [("first", 1), ("second", 2)]
        assert _rows(registry, "SELECT count(*) FROM events WHERE payload LIKE '%doomed%'") == [(0,)]
        assert hooks_run == ["first", "second"]
    finally:
        registry.close()
    assert verify(tmp_path / "main.db").ok


def test_a_failing_metric_log_in_a_stretch_of_them_leaves_the_others(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "main.db", "r")
    scope = registry.scope
    try:
        registry.run(builders.register_model(scope, "org/m", "hub/m"))
        outcomes = registry.submit_many([
            builders.log_model_metric(scope, "org/m", "fam", "a", 0.1),
            builders.log_model_metric(scope, "org/missing", "fam", "a", 0.2),
            builders.log_model_metric(scope, "org/m", "fam", "b", 0.3),
        ]).result()
        assert [type(error) for _, error in outcomes] == [type(None), NotFoundError, type(None)]
        assert _rows(registry, "SELECT metric_name, id, value FROM metrics ORDER BY id") == [("a", 1, 0.1), ("b", 2, 0.3)]
    finally:
        registry.close()


def test_an_id_read_in_the_group_is_forgotten_when_an_event_changes_its_table(tmp_path: Path) -> None:
    """The cache knows the model's id after the first log; the rename changes the model
    table, so the next log of the old name looks again and finds nothing."""
    registry = Registry(tmp_path / "main.db", "r")
    scope = registry.scope
    try:
        registry.run(builders.register_model(scope, "org/m", "hub/m"))
        outcomes = registry.submit_many([
            builders.log_model_metric(scope, "org/m", "fam", "a", 0.1),
            builders.rename_model(scope, "org/m", "org/renamed"),
            builders.log_model_metric(scope, "org/m", "fam", "b", 0.2),
            builders.log_model_metric(scope, "org/renamed", "fam", "c", 0.3),
        ]).result()
        assert [type(error) for _, error in outcomes] == [type(None), type(None), NotFoundError, type(None)]
        assert _rows(registry, "SELECT metric_name FROM metrics ORDER BY id") == [("a",), ("c",)]
    finally:
        registry.close()


def test_the_read_cache_refuses_a_table_that_is_not_a_read_table() -> None:
    cache = ReadCache()
    with pytest.raises(ValueError, match="modle"):
        cache.put("key", 1, frozenset({"modle"}))  # never changed by any event: it would never be forgotten
    assert "key" not in cache


def _in_another_process(db: str, code: str) -> None:
    """Run ``code`` with ``handle`` open on ``db`` in a new interpreter: another writer."""
    program = f"import lightml\nhandle = lightml.LightMLHandle({db!r}, run_name='r')\n{code}\nhandle.close()\n"
    subprocess.run([sys.executable, "-c", program], check=True, timeout=120)


def test_a_writer_forgets_what_it_knew_when_another_writer_changed_the_registry(any_engine_db: str) -> None:
    """A writer's next transaction reuses what its last one looked up (ids, schema rules,
    counters) only when no one wrote since: another process's delete, re-register and
    schema rule are seen by the very next call."""
    handle = LightMLHandle(any_engine_db, run_name="r")
    try:
        handle.register_model("m", "hub/m")
        handle.log_model_metric("m", "fam", "acc", 0.5)  # this writer now knows m's id, and no schema rules
        handle.log_model_metric("m", "fam", "f1", 0.25)
        _in_another_process(any_engine_db, "handle.delete_model('m')\nhandle.register_model('m', 'hub/m-again')")
        handle.log_model_metric("m", "fam", "acc", 0.75)  # to the new model: its first acc, and no f1
        assert [(row["action"], row["value"]) for row in handle.metric_history("m", "fam", "acc")] == [
            ("inserted", 0.75)]
        assert not handle.metric_exists("m", "fam", "f1")
        _in_another_process(any_engine_db, "handle.add_schema_rule('fam', 'acc')")
        with pytest.raises(SchemaViolationError):
            handle.log_model_metric("m", "fam", "em", 1.0)
        assert not handle.metric_exists("m", "fam", "em")
    finally:
        handle.close()
