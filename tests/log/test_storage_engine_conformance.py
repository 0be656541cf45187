"""The storage-engine contract (``lightml.log.engine.StorageEngine``), written once against
the interface and run against every adapter, as eventsourcing's ``tests/persistence.py``
runs one suite against every recorder.

Every test runs against SQLite and PostgreSQL (a database of the test run's own server; the
PostgreSQL cases skip, saying why, where there is none).
Nothing below speaks one engine's dialect: statements are the SQL every engine speaks,
errors are matched by LightML's own messages.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Callable

import pytest

from lightml import LightMLHandle
from lightml.errors import NotARegistryError, RegistryLockedError
from lightml.log import events as ev
from lightml.log import store
from lightml.log.engine import StorageEngine, engine_for
from lightml.log.replay import read_event_chunks
from lightml.log.transaction import Actor, WriteTransaction

ENGINES = ["sqlite", "postgresql"]

MICROSECOND_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$")
ALICE = Actor("alice", "lab-node-1", 4242, "api")


@pytest.fixture(params=ENGINES)
def new_registry(request, tmp_path: Path) -> Callable[[], StorageEngine]:
    """Makes the engine of a new, empty registry (nothing created yet) of the engine under test:
    a SQLite file, or a new PostgreSQL database on the test run's server."""
    numbers = itertools.count()
    server = request.getfixturevalue("postgres_server") if request.param == "postgresql" else None

    def make() -> StorageEngine:
        if request.param == "sqlite":
            return engine_for(tmp_path / f"registry-{next(numbers)}.db")
        url = server.create_database(f"{request.node.name}-{next(numbers)}")
        request.addfinalizer(lambda: server.drop_database(url))
        return engine_for(url)

    return make


@pytest.fixture
def registry(new_registry) -> StorageEngine:
    """An empty event-sourced registry (its schema created, no event yet)."""
    engine = new_registry()
    conn = engine.connect()
    try:
        store.ensure_schema(conn, engine.location)
    finally:
        conn.close()
    return engine


def _append(engine: StorageEngine, *events: ev.Event, actor: Actor = ALICE) -> None:
    conn = engine.connect()
    try:
        store.begin_write(conn)
        tx = WriteTransaction(conn)
        tx.actor = actor
        tx.emit(list(events))
        tx.commit()
    finally:
        conn.close()


def _log(engine: StorageEngine) -> list[tuple]:
    conn = engine.connect_readonly()
    try:
        return [tuple(row) for row in conn.execute(f"SELECT {store.EVENT_COLUMNS} FROM events ORDER BY seq")]
    finally:
        conn.close()


# -- the log ----------------------------------------------------------------------------------


def test_appended_events_read_back_in_order_with_their_actor_and_a_microsecond_utc_time(registry):
    before = datetime.now(timezone.utc)
    _append(registry, ev.schema_rule_added(family="fam", metric_name="acc"),
            ev.schema_rule_added(family="fam", metric_name="f1"))
    _append(registry, ev.schema_rule_added(family="qa", metric_name="em"), actor=Actor(None, None, 7, "cli"))

    rows = _log(registry)
    assert [row[:3] for row in rows] == [(1, ev.SCHEMA_RULE_ADDED, 1), (2, ev.SCHEMA_RULE_ADDED, 1),
                                         (3, ev.SCHEMA_RULE_ADDED, 1)]
    assert [row[5:] for row in rows] == [("alice", "lab-node-1", 4242, "api")] * 2 + [(None, None, 7, "cli")]
    times = [row[4] for row in rows]
    assert all(MICROSECOND_UTC.match(at) for at in times), times
    assert times[0] == times[1] <= times[2]  # one time per transaction; text order is time order
    first = datetime.strptime(times[0], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc)
    assert before - timedelta(seconds=1) <= first <= datetime.now(timezone.utc) + timedelta(seconds=1)

    conn = registry.connect_readonly()
    try:
        changes = [change for chunk in read_event_chunks(conn) for change in chunk]
    finally:
        conn.close()
    assert [(c.seq, c.type, c.payload) for c in changes] == [
        (1, ev.SCHEMA_RULE_ADDED, {"family": "fam", "metric_name": "acc"}),
        (2, ev.SCHEMA_RULE_ADDED, {"family": "fam", "metric_name": "f1"}),
        (3, ev.SCHEMA_RULE_ADDED, {"family": "qa", "metric_name": "em"}),
    ]


@pytest.mark.parametrize("statement", [
    "UPDATE events SET type = 'tampered'",
    "DELETE FROM events",
    f"INSERT INTO events ({store.EVENT_COLUMNS}) VALUES (1, 'tampered', 1, '{{}}', 'x', NULL, NULL, NULL, 'api')",
], ids=["update", "delete", "replace"])
def test_the_database_refuses_to_change_an_appended_event(registry, statement):
    _append(registry, ev.schema_rule_added(family="fam", metric_name="acc"))
    before = _log(registry)
    conn = registry.connect()
    try:
        with pytest.raises(Exception, match="append-only"):
            conn.execute(statement)
        store.begin_write(conn)  # LightML's own transactions may not either
        with pytest.raises(Exception, match="append-only"):
            conn.execute(statement)  # (PostgreSQL sends a write with the next answered statement)
            store.commit_write(conn)
        registry.rollback(conn)
    finally:
        conn.close()
    assert _log(registry) == before


# -- the decide lock --------------------------------------------------------------------------


def test_the_decide_lock_serializes_two_writers_deciding_the_next_position(registry):
    """Each writer reads the log's last position inside its transaction and appends after
    it: the second's lock (before any read or mark) waits for the first's COMMIT, so it
    reads what the first wrote, and both appends land, one after the other."""
    first, second = registry.connect(), registry.connect()
    first_holds_the_lock, moments, seen = threading.Event(), {}, {}

    def write_second() -> None:
        try:
            first_holds_the_lock.wait()
            store.begin_immediate(second)  # the lock alone: waits for the first writer's COMMIT
            moments["second locked"] = time.monotonic()
            seen["last seq"] = second.execute("SELECT max(seq) FROM events").fetchone()[0]
            registry.mark_write(second)
            tx = WriteTransaction(second)  # decides its position after the first's event
            tx.actor = ALICE
            tx.emit([ev.schema_rule_added(family="second", metric_name="m")])
            tx.commit()
        except Exception as exc:  # reported by the main thread
            seen["error"] = exc
            registry.rollback(second)

    thread = threading.Thread(target=write_second)
    try:
        store.begin_write(first)
        tx = WriteTransaction(first)
        tx.actor = ALICE
        thread.start()
        first_holds_the_lock.set()
        time.sleep(0.3)  # the second writer is waiting now
        tx.emit([ev.schema_rule_added(family="first", metric_name="m")])
        moments["first commits"] = time.monotonic()
        tx.commit()
    finally:
        registry.rollback(first)  # (after a failure: lets the second writer in, so that it ends)
        first_holds_the_lock.set()
        if thread.ident is not None:
            thread.join(timeout=60)
        first.close()
        second.close()
    assert "error" not in seen, seen.get("error")
    assert moments["second locked"] >= moments["first commits"] and seen["last seq"] == 1
    assert [(row[0], row[3]) for row in _log(registry)] == [
        (1, '{"family":"first","metric_name":"m"}'), (2, '{"family":"second","metric_name":"m"}')]


def test_a_writer_waits_for_the_lock_up_to_its_timeout_then_gets_registry_locked_error(registry):
    holder, waiter = registry.connect(), registry.connect(timeout=0.3)
    try:
        store.begin_write(holder)
        started = time.monotonic()
        with pytest.raises(RegistryLockedError, match="locked by another writer .*nothing was written"):
            store.begin_write(waiter)
        assert time.monotonic() - started >= 0.25  # it waited, rather than failing at once
        assert store.try_begin_write(waiter, 0.3) is False  # the non-waiting form: False at once
        store.commit_write(holder)
        assert store.try_begin_write(waiter, 0.3) is True  # free again
        store.commit_write(waiter)
    finally:
        holder.close()
        waiter.close()


# -- the guards -------------------------------------------------------------------------------


def test_a_read_table_refuses_a_write_outside_a_marked_transaction(registry):
    insert = "INSERT INTO registry_schema (family, metric_name) VALUES ('fam', 'acc')"
    conn = registry.connect()
    try:
        with pytest.raises(Exception, match="a LightML 1.x client cannot write to it"):
            conn.execute(insert)  # outside any transaction
        store.begin_immediate(conn)  # the lock alone is not the mark
        with pytest.raises(Exception, match="a LightML 1.x client cannot write to it"):
            conn.execute(insert)  # (PostgreSQL sends a write with the next answered statement)
            conn.execute("SELECT 1")
        registry.rollback(conn)
        store.begin_write(conn)  # the marked transaction may
        conn.execute(insert)
        assert conn.execute("SELECT family, metric_name FROM registry_schema").fetchall() == [("fam", "acc")]
        registry.rollback(conn)  # (the rows of a read table come from events: leave none behind)
    finally:
        conn.close()


def test_a_readonly_connection_cannot_write(registry):
    conn = registry.connect_readonly()
    try:
        for statement in ("INSERT INTO lightml_meta (key, value) VALUES ('k', 'v')", "CREATE TABLE extra (x INTEGER)",
                          "DELETE FROM lightml_meta"):
            with pytest.raises(Exception):
                conn.execute(statement)
    finally:
        conn.close()
    writer = registry.connect()
    try:
        assert store.table_names(writer) >= {"events", "lightml_meta"} and "extra" not in store.table_names(writer)
        assert writer.execute("SELECT count(*) FROM lightml_meta WHERE key = 'k'").fetchone()[0] == 0
    finally:
        writer.close()


def test_a_readonly_connection_to_a_missing_registry_fails_and_creates_nothing(new_registry):
    engine = new_registry()
    with pytest.raises(FileNotFoundError, match="registry not found"):
        engine.connect_readonly()
    conn = engine.connect()
    try:
        assert store.registry_format(conn) is None  # still empty
    finally:
        conn.close()


# -- the format checks ------------------------------------------------------------------------


def test_an_empty_database_gets_the_schema_once(new_registry):
    engine = new_registry()
    conn = engine.connect()
    try:
        assert store.registry_format(conn) is None
        store.ensure_schema(conn, engine.location)
        assert store.registry_format(conn) == store.FORMAT_VERSION
        assert store.missing_read_tables(conn) == []
        store.ensure_schema(conn, engine.location)  # a second time changes nothing
        assert store.registry_format(conn) == store.FORMAT_VERSION
    finally:
        conn.close()


def test_the_format_checks_refuse_a_database_that_is_not_a_registry_and_leave_it_alone(new_registry):
    engine = new_registry()
    conn = engine.connect()
    try:
        conn.execute("CREATE TABLE notes (body TEXT)")
        with pytest.raises(NotARegistryError, match="not a LightML registry: it has tables notes but no event log"):
            store.ensure_schema(conn, engine.location)
        assert store.table_names(conn) == {"notes"}
    finally:
        conn.close()


def test_the_format_checks_refuse_a_registry_of_a_newer_lightml(registry):
    conn = registry.connect()
    try:
        store.begin_write(conn)
        conn.execute("UPDATE lightml_meta SET value = ? WHERE key = 'format_version'", (str(store.FORMAT_VERSION + 1),))
        store.commit_write(conn)
    finally:
        conn.close()
    for connect in (registry.connect, registry.connect_readonly):
        conn = connect()
        try:
            assert store.registry_format(conn) == store.FORMAT_VERSION + 1
            with pytest.raises(NotARegistryError, match=rf"newer LightML \(format {store.FORMAT_VERSION + 1}; "
                                                        rf"this one reads {store.FORMAT_VERSION}\); upgrade"):
                store.check_format(conn, registry.location)
        finally:
            conn.close()


# -- the dialect's lookups --------------------------------------------------------------------


def test_the_metric_lookup_and_its_one_by_one_twin_give_the_same_answer(registry):
    with LightMLHandle(registry.location, "r") as handle:
        handle.register_model("m", "org/m")
        handle.log_metrics("m", {"fam": {f"metric{i}": i / 10 for i in range(8)}, "qa": {"em": 0.5}})
    asked = {("fam", f"metric{i}") for i in range(0, 12, 2)} | {("qa", "em"), ("qa", "f1"), ("new", "x")}
    conn = registry.connect_readonly()
    try:
        model_id = conn.execute("SELECT id FROM model WHERE model_name = 'm'").fetchone()[0]
        fast = registry.existing_metrics(conn, "model_id", model_id, set(asked))
        slow = registry.existing_metrics_one_by_one(conn, "model_id", model_id, set(asked))
    finally:
        conn.close()
    assert {pair: value for pair, (_, value) in fast.items()} == {
        ("fam", "metric0"): 0.0, ("fam", "metric2"): 0.2, ("fam", "metric4"): 0.4, ("fam", "metric6"): 0.6,
        ("qa", "em"): 0.5}
    assert {pair: tuple(found) for pair, found in fast.items()} == {pair: tuple(found) for pair, found in slow.items()}


def test_the_metric_values_of_the_log_read_back_in_log_order(registry):
    with LightMLHandle(registry.location, "r") as handle:
        handle.register_model("m", "org/m")
        handle.log_model_metric("m", "fam", "acc", 0.25)
        handle.log_model_metric("m", "fam", "acc", 0.75, force=True)
    conn = registry.connect_readonly()
    try:
        rows = registry.metric_value_rows(conn)
    finally:
        conn.close()
    assert rows is not None
    assert [(row[0], row[1], row[2]) for row in rows] == [(ev.METRIC_INSERTED, 1, 0.25),
                                                         (ev.METRIC_OVERWRITTEN, 1, 0.75)]


def test_a_checkpoint_never_runs_inside_a_transaction_and_never_raises(registry):
    conn = registry.connect()
    try:
        assert registry.checkpoint(conn) in (True, False)
        store.begin_write(conn)
        assert registry.checkpoint(conn) is False
        registry.rollback(conn)
    finally:
        conn.close()


# -- a damaged log ----------------------------------------------------------------------------


def _log_one_metric(engine: StorageEngine) -> None:
    """Events #1-#3: run r, model m in it, its fam/acc = 0.5."""
    with LightMLHandle(engine.db, "r") as h:
        h.register_model("m", "org/m")
        h.log_model_metric("m", "fam", "acc", 0.5)


def _append_raw(engine: StorageEngine, seq: int, event_type: str, payload: str) -> None:
    """An event appended behind LightML's back (as a tool with the database's own driver could)."""
    conn = engine.connect()
    try:
        conn.execute(f"INSERT INTO events ({store.EVENT_COLUMNS}) VALUES (?, ?, 1, ?, ?, 'x', 'h', 1, 'api')",
                     (seq, event_type, payload, "2026-12-03T00:00:00.000000Z"))
    finally:
        conn.close()


@pytest.mark.parametrize("damage, named", [
    ("not of its shape", r"damaged log: event #4 \(metric_inserted\) payload does not match its schema"),
    ("a taken metric id", r"damaged log: event #1 \(run_created\) \(or a later one up to #4\) cannot be applied"),
])
def test_a_damaged_event_is_named_by_replay_and_verify_and_nothing_is_rebuilt(registry, damage, named):
    from lightml.log.replay import DamagedLogError, replay, verify

    _log_one_metric(registry)
    good = _log(registry)
    payload = json.loads(good[-1][3])
    if damage == "not of its shape":
        payload = {"model_id": payload["model_id"]}
    else:  # the shape is right, but metric id 1 is taken: only applying it shows the damage
        payload["metrics"][0]["metric_name"] = "other"
    _append_raw(registry, 4, ev.METRIC_INSERTED, json.dumps(payload))
    with pytest.raises(DamagedLogError, match=named):
        replay(registry.db)
    result = verify(registry.db)
    assert not result.ok and result.differences
    with LightMLHandle(registry.db, "r") as h:  # the read tables are as they were
        assert [e["value"] for e in h.metric_history("m", "fam", "acc")] == [0.5]


def test_a_log_whose_rows_break_a_reference_is_refused_by_replay_and_nothing_is_rebuilt(registry):
    from lightml.log.replay import replay

    _log_one_metric(registry)
    payload = json.loads(_log(registry)[-1][3])
    payload["model_id"] = 99  # no such model: the references are checked once, after the rows
    payload["metrics"][0]["metric_id"] += 1
    _append_raw(registry, 4, ev.METRIC_INSERTED, json.dumps(payload))
    with pytest.raises(NotARegistryError, match="broken references"):
        replay(registry.db)
    with LightMLHandle(registry.db, "r") as h:  # the read tables are as they were
        assert [e["value"] for e in h.metric_history("m", "fam", "acc")] == [0.5]


def test_after_a_replay_the_read_tables_still_refuse_a_broken_reference(registry):
    from lightml.log.replay import replay

    _log_one_metric(registry)
    replay(registry.db)  # (its rebuild adds the references after the rows)
    conn = registry.connect()
    try:
        store.begin_write(conn)
        with pytest.raises(Exception, match="(?i)foreign key"):
            conn.execute("INSERT INTO metrics (id, model_id, checkpoint_id, family, metric_name, value) "
                         "VALUES (99, 42, NULL, 'fam', 'f1', 0.5)")
            conn.execute("SELECT 1")  # (PostgreSQL sends a write with the next answered statement)
        registry.rollback(conn)
    finally:
        conn.close()
