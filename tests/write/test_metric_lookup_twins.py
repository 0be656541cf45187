"""The fast paths of the metric lookups, pinned to their slow twins.

``metric_log.existing_metrics`` answers "which of these (family, metric_name) pairs does
this model or checkpoint have?" in a few queries (the pairs as one JSON array through
``json_each``; a pre-probe of the families when there are at least four pairs per family;
one plain lookup for a single pair; a fallback when a name holds NUL, which SQLite's JSON
functions do not give back intact). ``_existing_metrics_one_by_one`` asks one query per
pair: the obviously right answer. And ``LogMetrics.prefetch`` (the writer's group path:
one lookup for a stretch of queued metric logs) must change nothing a caller can see
against running the same commands one at a time.
"""

from __future__ import annotations

import shutil
import sqlite3
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import projections
from lightml import LightMLHandle
from lightml.log import store
from lightml.log.events import METRIC_INSERTED, METRIC_OVERWRITTEN, decode_changes
from lightml.log.transaction import Actor, WriteTransaction
from lightml.results import METRIC_INSERTED as METRIC_INSERTED_RESULT
from lightml.runner import Registry
from lightml.write import commands, edits
from lightml.write.metric_log import (
    CheckpointTarget,
    LogMetrics,
    MetricInput,
    ModelTarget,
    existing_metrics,
    _existing_metrics_one_by_one,
)

SETTINGS = settings(max_examples=80, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

# Names a registry can hold (a merged 1.x file can bring NUL; the API refuses it) and that
# JSON or SQL could mangle: NUL alone and inside, a literal backslash-u0000, quotes, non-BMP
# characters, JSON and SQL look-alikes, the empty string, a very long name.
NAMES = ["acc", "acc,none", "\x00", "a\x00b", "\\u0000", "it's", 'say "hi"', "😀", "𝔘nicode", "é", "é",
         "[1]", "null", "%_", "", " ", "\u2028", "x" * 5000]
LONE_SURROGATES = ["\ud800", "ok\udfff"]  # no UTF-8 text holds one: SQLite cannot be given it

names = st.sampled_from(NAMES) | st.text(max_size=8)

# The targets of the lookup registry: models 1-3 (3 has no metrics) and checkpoints 1-2 (of
# models 1 and 2: the same numbers, in the other key column), and ids that do not exist.
MODEL_TARGETS = {1: ModelTarget("r", "a"), 2: ModelTarget("r", "b")}
CHECKPOINT_TARGETS = {1: CheckpointTarget(1), 2: CheckpointTarget(2)}
LOOKUP_TARGETS = [("model_id", 1), ("model_id", 2), ("model_id", 3), ("model_id", 99),
                  ("checkpoint_id", 1), ("checkpoint_id", 2), ("checkpoint_id", 99)]


def _base_registry(db: Path) -> Path:
    with LightMLHandle(db, "r", synchronous="NORMAL") as handle:
        for model in ("a", "b", "c"):
            handle.register_model(model, f"org/{model}")
        handle.register_checkpoint("a", 10, "ckpt/a-10")
        handle.register_checkpoint("b", 10, "ckpt/b-10")
    return db


@pytest.fixture(scope="module")
def lookup_conn(tmp_path_factory):
    """A writer connection to a registry with models and checkpoints; each example adds its
    metrics in a write transaction and rolls it back."""
    conn = store.connect(_base_registry(tmp_path_factory.mktemp("lookups") / "registry.db"), synchronous="NORMAL")
    yield conn
    conn.close()


def _outcome(lookup, conn, key_column: str, key: int, pairs: set) -> tuple:
    try:
        return "answer", lookup(conn, key_column, key, set(pairs))
    except Exception as exc:
        return "error", type(exc)


def _has_surrogate(text: str) -> bool:
    return any("\ud800" <= c <= "\udfff" for c in text)


# A lookup: where, and which pairs (families with their names, so that a family often has
# many names: both sides of the pre-probe's "four pairs per family" line).
lookup_pairs = st.lists(st.tuples(names, st.lists(names, min_size=1, max_size=12, unique=True)),
                        min_size=1, max_size=8).map(lambda groups: {(f, n) for f, ns in groups for n in ns})
stored = st.lists(st.tuples(st.sampled_from(sorted(MODEL_TARGETS.items()) + sorted(CHECKPOINT_TARGETS.items())),
                            names, names), max_size=40)


@SETTINGS
@given(stored=stored, where=st.sampled_from(LOOKUP_TARGETS), pairs=lookup_pairs,
       surrogates=st.lists(st.tuples(st.sampled_from(["acc", "\x00"] + LONE_SURROGATES),
                                     st.sampled_from(["acc"] + LONE_SURROGATES)), max_size=2))
# One example per path, so that each is taken whatever hypothesis draws:
@example(stored=[((1, ModelTarget("r", "a")), "f", "m")], where=("model_id", 1), pairs={("f", "m")},
         surrogates=[])  # the single pair
@example(stored=[((1, ModelTarget("r", "a")), "f", "m"), ((1, CheckpointTarget(1)), "g", "m")],
         where=("model_id", 1), pairs={("f", n) for n in "mnop"} | {("g", n) for n in "mnop"},
         surrogates=[])  # pre-probe, some families present (g is the checkpoint's, not the model's)
@example(stored=[((1, ModelTarget("r", "a")), "f", "m")], where=("model_id", 1),
         pairs={("g", n) for n in "mnop"}, surrogates=[])  # pre-probe, no family present
@example(stored=[((2, ModelTarget("r", "b")), "f", "m"), ((2, ModelTarget("r", "b")), "g", "\x00")],
         where=("model_id", 2), pairs={("f", "m"), ("g", "\x00"), ("g", "m")}, surrogates=[])  # NUL in a pair
@example(stored=[((2, CheckpointTarget(2)), "a\x00b", "m")], where=("checkpoint_id", 2),
         pairs={("a\x00b", n) for n in "mnop"}, surrogates=[])  # NUL in a pre-probed family
@example(stored=[((1, ModelTarget("r", "a")), "f", "m")], where=("model_id", 1),
         pairs={("f", "m"), ("g", "n")}, surrogates=[("acc", "\ud800")])  # a surrogate, no pre-probe
def test_the_fast_lookup_answers_as_the_one_by_one_lookup(lookup_conn, stored, where, pairs, surrogates):
    conn = lookup_conn
    pairs = pairs | set(surrogates)
    with_surrogate = {pair for pair in pairs if _has_surrogate(pair[0] + pair[1])}
    store.begin_write(conn)
    try:
        tx = WriteTransaction(conn)
        tx.actor = Actor.current("api")
        for (_, target), family, name in stored:
            LogMetrics(target, [MetricInput(family, name, 0.5)], False, single=False)(tx)
        fast = _outcome(existing_metrics, conn, *where, pairs)
        slow = _outcome(_existing_metrics_one_by_one, conn, *where, pairs)
        slow_without = _outcome(_existing_metrics_one_by_one, conn, *where, pairs - with_surrogate)
        families_there = {f for (f,) in conn.execute(f"SELECT family FROM metrics WHERE {where[0]} = ?", (where[1],))}
    finally:
        conn.execute("ROLLBACK")
    if not with_surrogate:
        assert fast == slow
        assert slow[0] == "answer"
        return
    # A lone surrogate cannot be encoded for SQLite: the slow twin always fails on it.
    assert slow == ("error", UnicodeEncodeError)
    if fast[0] == "error":
        assert fast == slow
    else:
        # The fast path may not fail: when the family pre-probe finds that the target has
        # none of the families of those pairs, it drops them unasked.
        # Its answer is then still right for every other pair.
        assert not any(_has_surrogate(family) for family, _ in pairs)
        assert not {family for family, _ in with_surrogate} & families_there
        assert fast == slow_without


# -- LogMetrics.prefetch: the group path against the same commands one at a time ------------

PAIR_POOL = [("mmlu", "acc"), ("mmlu", "acc\x00"), ("\x00", "em"), ("it's", 'say "hi"'), ("😀", "𝔘"),
             ("gsm8k", "x" * 3000), ("gsm8k", "em"), ("gsm8k", "flex")]
SCHEMA = PAIR_POOL[:5]  # with rules, the other pairs are refused (SchemaViolationError)
COMMAND_TARGETS = [ModelTarget("r", "a"), ModelTarget("r", "b"), CheckpointTarget(1),
                   ModelTarget("r", "ghost"), CheckpointTarget(99)]  # the last two do not resolve

items = st.lists(
    st.builds(lambda pair, value, scored: MetricInput(*pair, value, *(("[1,0]", 2, '["d1","d2"]') if scored else ())),
              st.sampled_from(PAIR_POOL), st.sampled_from([0.25, 0.5, 0.75]), st.booleans()),
    min_size=1, max_size=6, unique_by=lambda item: item[:2])  # as every builder makes them (repeats: the test below)
metric_command = st.builds(lambda target, items, force, single: LogMetrics(target, items, force, single and len(items) == 1),
                           st.sampled_from(COMMAND_TARGETS), items, st.booleans(), st.booleans())
# A command that is not a metric log ends a stretch: the buffer is flushed, the prefetch forgotten.
other_command = st.sampled_from(["one", "two"]).map(lambda notes: edits.set_notes("r", "a", notes))
group = st.lists(metric_command | other_command, min_size=2, max_size=10)


def _registry_with_metrics(db: Path, with_schema: bool) -> Path:
    _base_registry(db)
    registry = Registry(db, "r", synchronous="NORMAL")
    try:
        if with_schema:  # (the API refuses NUL in a rule's names; a merged 1.x file's rules may hold it)
            registry.run(commands.add_schema_rules(SCHEMA))
        registry.run(LogMetrics(ModelTarget("r", "a"), [MetricInput(*PAIR_POOL[i], 0.1) for i in (0, 1, 3)],
                                False, single=False))
        registry.run(LogMetrics(CheckpointTarget(1), [MetricInput(*PAIR_POOL[2], 0.2)], False, single=False))
    finally:
        registry.close()
    return db


@pytest.fixture(scope="module")
def base_registries(tmp_path_factory) -> dict[bool, Path]:
    """Registries already holding metrics (NUL names too, as a merge can bring them), one
    without schema rules and one with."""
    folder = tmp_path_factory.mktemp("prefetch")
    return {with_schema: _registry_with_metrics(folder / f"schema-{with_schema}.db", with_schema)
            for with_schema in (False, True)}


def _described(result, error: BaseException | None) -> tuple:
    return (result, None) if error is None else (None, (type(error), str(error)))


def _as_a_group(db: Path, commands: list) -> list[tuple]:
    """The writer's group path: one queue item, one transaction, a prefetch per stretch."""
    registry = Registry(db, "r", synchronous="NORMAL")
    try:
        return [_described(*outcome) for outcome in registry.submit_many(commands).result()]
    finally:
        registry.close()


def _one_at_a_time(db: Path, commands: list) -> list[tuple]:
    """Each command in its own transaction: nothing prefetched, nothing merged."""
    registry = Registry(db, "r", synchronous="NORMAL")
    outcomes = []
    try:
        for command in commands:
            try:
                outcomes.append(_described(registry.run(command), None))
            except Exception as exc:
                outcomes.append(_described(None, exc))
    finally:
        registry.close()
    return outcomes


def _in_one_transaction_without_prefetch(db: Path, commands: list) -> list[tuple]:
    """The group's transaction as the writer runs it, minus the prefetch."""
    conn = store.connect(db, synchronous="OFF")  # a scratch copy: no fsync
    outcomes = []
    try:
        store.begin_write(conn)
        tx = WriteTransaction(conn)
        tx.actor = Actor.current("api")
        for command in commands:
            try:
                outcomes.append(_described(command.decide(tx) if isinstance(command, LogMetrics) else command(tx), None))
            except Exception as exc:
                outcomes.append(_described(None, exc))
        tx.flush()
        store.commit_write(conn)
    finally:
        conn.close()
    return outcomes


def _last_seq(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT max(seq) FROM events").fetchone()[0]
    finally:
        conn.close()


def _events_after(db: Path, seq: int) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        rows = conn.execute("SELECT seq, type, version, payload FROM events WHERE seq > ? ORDER BY seq", (seq,)).fetchall()
    finally:
        conn.close()
    return [(c.seq, c.type, c.payload) for c in decode_changes(rows)] if rows else []


def _metric_changes(events: list[tuple]) -> list[tuple]:
    """The events as one list of changes per metric, whichever event each is in."""
    flat = []
    for _, event_type, payload in events:
        if event_type in (METRIC_INSERTED, METRIC_OVERWRITTEN):
            target = (payload["model_id"], payload["checkpoint_id"], payload["step"])
            flat.extend((event_type, target, item) for item in payload["metrics"])
        else:
            flat.append((event_type, payload))
    return flat


def _rows(conn: sqlite3.Connection, table: str) -> list[tuple]:
    width = len(conn.execute(f'PRAGMA table_info("{table}")').fetchall())
    return conn.execute(f'SELECT * FROM "{table}" ORDER BY {", ".join(str(i + 1) for i in range(width))}').fetchall()


def _tables(db: Path) -> dict[str, list]:
    """The tables one transaction per command must leave as the group does ("all": every
    read table, for the twin in the same transaction)."""
    conn = sqlite3.connect(db)
    try:
        tables = {t: _rows(conn, t) for t in ("model", "metrics", "detailed_scores", "score_docs")}
        # What the log position does not change: which change, to which metric, of which values.
        tables["metric_history"] = sorted(conn.execute(
            "SELECT metric_id, action, value, previous_value FROM metric_history").fetchall(), key=repr)
        tables["metric ids given"] = sorted(i for first, last in conn.execute(
            "SELECT first_metric_id, last_metric_id FROM metric_insert_range") for i in range(first, last + 1))
        tables["all"] = {t: _rows(conn, t) for t in projections.READ_TABLES}
    finally:
        conn.close()
    return tables


@settings(SETTINGS, max_examples=25)
@given(commands=group, with_schema=st.booleans())
@example(commands=[LogMetrics(ModelTarget("r", "a"), [MetricInput("mmlu", "acc", 0.5)], True, True),
                   LogMetrics(ModelTarget("r", "a"), [MetricInput("mmlu", "acc", 0.75)], True, True),
                   LogMetrics(ModelTarget("r", "a"), [MetricInput("gsm8k", "em", 0.5)], False, True),
                   LogMetrics(ModelTarget("r", "a"), [MetricInput("gsm8k", "em", 0.25)], False, True)],
         with_schema=False)  # overwrite twice, insert then skip: the prefetch is stale after the first
def test_the_group_path_changes_nothing_a_caller_sees(base_registries, commands, with_schema):
    base = base_registries[with_schema]
    last_seq = _last_seq(base)
    with tempfile.TemporaryDirectory() as folder:
        grouped, alone, unprefetched = (shutil.copy(base, Path(folder) / f"{name}.db")
                                        for name in ("grouped", "alone", "unprefetched"))
        outcomes = _as_a_group(grouped, commands)
        assert _one_at_a_time(alone, commands) == outcomes
        assert _in_one_transaction_without_prefetch(unprefetched, commands) == outcomes
        events = _events_after(grouped, last_seq)
        # Same transaction without the prefetch: the very same events and tables.
        assert _events_after(unprefetched, last_seq) == events
        assert _tables(unprefetched) == _tables(grouped)
        # One transaction per command: the same changes, split into more events.
        assert _metric_changes(_events_after(alone, last_seq)) == _metric_changes(events)
        grouped_tables, alone_tables = _tables(grouped), _tables(alone)
        del grouped_tables["all"], alone_tables["all"]
        assert alone_tables == grouped_tables


def test_a_forced_command_that_repeats_a_metric_keeps_the_last_value_alone_and_in_a_group(base_registries, tmp_path):
    # No builder makes such a command (their items come from dicts); a hand-made one can. It
    # must not decide an overwrite listing one metric twice, which the projections refuse at
    # COMMIT, taking the other commands of its group down with it.
    db = shutil.copy(base_registries[False], tmp_path / "registry.db")
    fine = LogMetrics(ModelTarget("r", "b"), [MetricInput("gsm8k", "em", 0.5)], False, single=True)
    repeated = LogMetrics(ModelTarget("r", "a"), [MetricInput("mmlu", "acc", 0.25), MetricInput("mmlu", "acc", 0.75)],
                          True, single=False)
    alone_db = shutil.copy(db, tmp_path / "alone.db")
    alone = _one_at_a_time(alone_db, [fine, repeated])
    assert alone[0] == (METRIC_INSERTED_RESULT, None) and alone[1][1] is None
    assert _as_a_group(db, [fine, repeated]) == alone
    for path in (db, alone_db):
        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT m.value FROM metrics m JOIN model o ON o.id = m.model_id "
                                "WHERE o.model_name = 'a' AND m.family = 'mmlu' AND m.metric_name = 'acc'"
                                ).fetchall() == [(0.75,)]
