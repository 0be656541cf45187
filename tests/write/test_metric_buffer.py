"""The metric buffer: metric events decided in a transaction are held back and appended
together, but never after an event that came later (log order), and never lost at COMMIT."""

from __future__ import annotations

from pathlib import Path

from lightml.log import events as ev
from lightml.log.replay import verify
from lightml.runner import Registry
from lightml.write import builders


def _log(registry: Registry) -> list[tuple[str, str]]:
    """(type, payload) of every event after the run's creation, in log order."""
    return registry.read(lambda c: c.execute(
        "SELECT type, payload FROM events WHERE type != 'run_created' ORDER BY seq").fetchall())


def test_buffered_metrics_go_before_a_later_event_of_the_same_command(tmp_path: Path) -> None:
    registry = Registry(tmp_path / "main.db", "r")
    try:
        registry.run(builders.register_model(registry.scope, "org/m", "hub/m"))
        log = builders.log_model_metric(registry.scope, "org/m", "fam", "acc", 0.5)

        def decide_then_emit(tx) -> None:
            log.decide(tx)  # held in the transaction's metric buffer, not appended yet
            tx.emit([(ev.SCHEMA_RULE_ADDED, {"family": "fam", "metric_name": "acc"})])

        registry.run(decide_then_emit)
        assert [t for t, _ in _log(registry)] == [ev.MODEL_REGISTERED, ev.METRIC_INSERTED, ev.SCHEMA_RULE_ADDED]
    finally:
        registry.close()
    assert verify(tmp_path / "main.db").ok


def test_a_group_keeps_log_order_around_a_command_that_is_not_a_metric_log(tmp_path: Path) -> None:
    """Neighbouring metric logs of one target share an event; a registration between them
    is appended between them, and what is still held at the end is committed."""
    registry = Registry(tmp_path / "main.db", "r")
    scope = registry.scope
    try:
        registry.run(builders.register_model(scope, "org/m", "hub/m"))
        outcomes = registry.submit_many([
            builders.log_model_metric(scope, "org/m", "fam", "a", 0.1),
            builders.log_model_metric(scope, "org/m", "fam", "b", 0.2),
            builders.register_model(scope, "org/n", "hub/n"),
            builders.log_model_metric(scope, "org/m", "fam", "c", 0.3),
        ]).result()
        assert [error for _, error in outcomes] == [None] * 4
        log = _log(registry)
        assert [t for t, _ in log] == [ev.MODEL_REGISTERED, ev.METRIC_INSERTED, ev.MODEL_REGISTERED,
                                       ev.METRIC_INSERTED]
        assert '"metric_name":"a"' in log[1][1] and '"metric_name":"b"' in log[1][1]
        assert '"metric_name":"c"' in log[3][1]
        ids = registry.read(lambda c: c.execute("SELECT metric_name, id FROM metrics ORDER BY id").fetchall())
        assert ids == [("a", 1), ("b", 2), ("c", 3)]
    finally:
        registry.close()
    assert verify(tmp_path / "main.db").ok
