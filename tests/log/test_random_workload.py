"""Random workloads against one registry: after every step the log and the tables agree.

A hypothesis state machine drives the public sync API (and, for group commit, the async
one) with registrations, metric logs with and without force, bulk logs, deletes and
restores. A plain-Python shadow model predicts every outcome. After each step:

* ``verify(db).ok``: the live read tables equal a rebuild from the log;
* ``replay(db, out=new)`` gives read tables identical (types and ids included) to the live ones;
* replaying the log only up to the previous step gives the registry as it was then;
* the metrics of every live model are exactly the shadow model's.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine, initialize, invariant, precondition, rule, run_state_machine_as_test,
)

import projections
from lightml import METRIC_INSERTED, METRIC_SKIPPED, METRIC_UPDATED, AsyncLightMLHandle, LightMLHandle
from lightml.errors import ConflictError, InvalidInputError, NotFoundError
from lightml.log.replay import replay, verify

RUN = "run"
NAMES = ["base", "sft", "org/llama-3 8b", "modèle-ü"]
FAMILIES = ["mmlu", "gsm8k", "hellaswag"]
METRICS = ["acc", "acc_norm", "f1"]
STEPS = [0, 100, 200]

names = st.sampled_from(NAMES)
families = st.sampled_from(FAMILIES)
metric_names = st.sampled_from(METRICS)
values = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.integers(min_value=-10**6, max_value=10**6),
    st.sampled_from([0.0, -0.0, 0.5, 1.0, 1e-300, 1.7976931348623157e308]),
)
score_lists = st.none() | st.lists(
    st.one_of(st.sampled_from([0, 1]), st.floats(min_value=-1e6, max_value=1e6, allow_nan=False)),
    min_size=1, max_size=5,
)
bulk_metrics = st.dictionaries(families, st.dictionaries(metric_names, values, min_size=1), min_size=1)


def table_rows(conn: sqlite3.Connection, table: str) -> list[tuple]:
    """Every row, in a total order, as reprs: 1 vs 1.0 or 0.0 vs -0.0 count as different."""
    n_columns = len(conn.execute(f'PRAGMA table_info("{table}")').fetchall())
    order = ", ".join(str(i) for i in range(1, n_columns + 1))
    return [tuple(map(repr, row)) for row in conn.execute(f'SELECT * FROM "{table}" ORDER BY {order}')]


def read_tables(db: Path) -> dict[str, list[tuple]]:
    conn = sqlite3.connect(db)
    try:
        return {table: table_rows(conn, table) for table in projections.READ_TABLES}
    finally:
        conn.close()


def max_seq(db: Path) -> int:
    conn = sqlite3.connect(db)
    try:
        return conn.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0]
    finally:
        conn.close()


def remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)


def mostly_from(pool, fallback=names):
    """Usually a name from ``pool`` (live or deleted models), sometimes any name."""
    if not pool:
        return fallback
    return st.one_of(st.sampled_from(sorted(pool)), st.sampled_from(sorted(pool)), st.sampled_from(sorted(pool)),
                     fallback)


def expected_outcome(existing: dict, key: tuple, value: float, force: bool) -> str:
    if key not in existing:
        existing[key] = value
        return METRIC_INSERTED
    if force:
        existing[key] = value
        return METRIC_UPDATED
    return METRIC_SKIPPED


class RegistryMachine(RuleBasedStateMachine):
    def __init__(self, base: Path) -> None:
        super().__init__()
        self.dir = base
        self.db = base / "main.db"
        self.handle = LightMLHandle(self.db, RUN)
        # Shadow model. live: name -> {"id", "metrics": {(family, metric): value},
        # "checkpoints": {checkpoint_id: {"key": (step, path), "metrics": {...}}}}
        self.live: dict[str, dict] = {}
        self.last_deleted: dict[str, dict] = {}  # name -> state at its latest delete
        self.all_checkpoint_ids: set[int] = set()
        self.max_model_id = 0
        self.replays = itertools.count()
        self.previous: tuple[int, dict] | None = None  # (max seq, read tables) after the last step

    def teardown(self) -> None:
        self.handle.close()

    # -- rules ------------------------------------------------------------------------------

    @initialize()
    def register_base(self):
        self.register_model("base", None)
        self._register_checkpoint("base", 0, "a")

    @rule(data=st.data())
    def register_new_model(self, data):
        name = data.draw(names, label="name")
        parent = data.draw(st.none() | mostly_from(self.live), label="parent")
        self.register_model(name, parent)

    def register_model(self, name, parent):
        if name in self.live:
            assert self.handle.register_model(name, f"hub/{name}", parent_name=parent) == self.live[name]["id"]
            return
        if parent is not None and parent not in self.live:
            with pytest.raises(NotFoundError):
                self.handle.register_model(name, f"hub/{name}", parent_name=parent)
            return
        model_id = self.handle.register_model(name, f"hub/{name}", parent_name=parent)
        assert model_id > self.max_model_id, "a model id was reused"
        self.max_model_id = model_id
        self.live[name] = {"id": model_id, "metrics": {}, "checkpoints": {}}

    @rule(data=st.data(), step=st.sampled_from(STEPS), variant=st.sampled_from(["a", "b"]))
    def register_checkpoint(self, data, step, variant):
        self._register_checkpoint(data.draw(mostly_from(self.live), label="model"), step, variant)

    def _register_checkpoint(self, name, step, variant):
        path = f"hub/{name}@{step}-{variant}"
        if name not in self.live:
            with pytest.raises(NotFoundError):
                self.handle.register_checkpoint(name, step, path)
            return
        checkpoints = self.live[name]["checkpoints"]
        cid = self.handle.register_checkpoint(name, step, path)
        known = [c for c, state in checkpoints.items() if state["key"] == (step, path)]
        if known:
            assert cid == known[0]
        else:
            assert cid not in self.all_checkpoint_ids, "a checkpoint id was reused"
            checkpoints[cid] = {"key": (step, path), "metrics": {}}
            self.all_checkpoint_ids.add(cid)

    @rule(data=st.data(), family=families, metric=metric_names, value=values, scores=score_lists, force=st.booleans())
    def log_model_metric(self, data, family, metric, value, scores, force):
        name = data.draw(mostly_from(self.live), label="model")
        if name not in self.live:
            with pytest.raises(NotFoundError):
                self.handle.log_model_metric(name, family, metric, value, scores=scores, force=force)
            return
        outcome = self.handle.log_model_metric(name, family, metric, value, scores=scores, force=force)
        assert outcome == expected_outcome(self.live[name]["metrics"], (family, metric), float(value), force)

    @precondition(lambda self: self.all_checkpoint_ids)
    @rule(data=st.data(), family=families, metric=metric_names, value=values, scores=score_lists,
          force=st.booleans())
    def log_checkpoint_metric(self, data, family, metric, value, scores, force):
        live_ids = {cid for m in self.live.values() for cid in m["checkpoints"]}
        cid = data.draw(mostly_from(live_ids, st.sampled_from(sorted(self.all_checkpoint_ids))), label="checkpoint_id")
        owner = next((m for m in self.live.values() if cid in m["checkpoints"]), None)
        if owner is None:  # its model is deleted
            with pytest.raises(NotFoundError):
                self.handle.log_checkpoint_metric(cid, family, metric, value, scores=scores, force=force)
            return
        outcome = self.handle.log_checkpoint_metric(cid, family, metric, value, scores=scores, force=force)
        existing = owner["checkpoints"][cid]["metrics"]
        assert outcome == expected_outcome(existing, (family, metric), float(value), force)

    @precondition(lambda self: any(m["metrics"] for m in self.live.values()))
    @rule(data=st.data(), value=values, scores=score_lists)
    def force_overwrite_existing(self, data, value, scores):
        name = data.draw(st.sampled_from(sorted(n for n, m in self.live.items() if m["metrics"])), label="model")
        family, metric = data.draw(st.sampled_from(sorted(self.live[name]["metrics"])), label="metric")
        previous = self.live[name]["metrics"][(family, metric)]
        assert self.handle.log_model_metric(name, family, metric, value, scores=scores, force=True) == METRIC_UPDATED
        self.live[name]["metrics"][(family, metric)] = float(value)
        history = self.handle.metric_history(name, family, metric)
        assert history[-1]["action"] == "overwritten"
        assert history[-1]["value"] == float(value)
        assert history[-1]["previous_value"] == previous
        if scores is None:
            assert self.handle.get_detailed_scores(name, family, metric) is None
        else:
            assert self.handle.get_detailed_scores(name, family, metric) == [
                int(s) if isinstance(s, int) else float(s) for s in scores]

    @rule(data=st.data(), metrics=bulk_metrics, force=st.booleans())
    def log_metrics(self, data, metrics, force):
        name = data.draw(mostly_from(self.live), label="model")
        if name not in self.live:
            with pytest.raises(NotFoundError):
                self.handle.log_metrics(name, metrics, force=force)
            return
        result = self.handle.log_metrics(name, metrics, force=force)
        counts = {METRIC_INSERTED: 0, METRIC_UPDATED: 0, METRIC_SKIPPED: 0}
        existing = self.live[name]["metrics"]
        for family, items in metrics.items():
            for metric, value in items.items():
                counts[expected_outcome(existing, (family, metric), float(value), force)] += 1
        assert result == {"inserted": counts[METRIC_INSERTED], "updated": counts[METRIC_UPDATED],
                          "skipped": counts[METRIC_SKIPPED]}

    @rule(data=st.data())
    def concurrent_logs(self, data):
        """Coroutines that queue together share a transaction; a failing one undoes only itself."""

        calls = data.draw(st.lists(st.tuples(mostly_from(self.live), families, metric_names, values, st.booleans()),
                                   min_size=2, max_size=8), label="calls")

        async def batch():
            async with AsyncLightMLHandle(self.db, RUN) as ah:
                return await asyncio.gather(
                    *(ah.log_model_metric(n, f, m, v, force=force) for n, f, m, v, force in calls),
                    return_exceptions=True,
                )

        results = asyncio.run(batch())
        for (name, family, metric, value, force), result in zip(calls, results):
            if name not in self.live:
                assert isinstance(result, NotFoundError), result
            else:
                assert result == expected_outcome(self.live[name]["metrics"], (family, metric), float(value), force)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def delete_model(self, data):
        name = data.draw(mostly_from(self.live), label="model")
        if name not in self.live:
            with pytest.raises(NotFoundError):
                self.handle.delete_model(name)
            return
        state = self.live.pop(name)
        result = self.handle.delete_model(name)
        assert result.checkpoints_deleted == len(state["checkpoints"])
        assert result.metrics_deleted == len(state["metrics"]) + sum(
            len(c["metrics"]) for c in state["checkpoints"].values())
        self.last_deleted[name] = copy.deepcopy(state)
        assert not self.handle.model_exists(name)

    @precondition(lambda self: self.last_deleted)
    @rule(data=st.data())
    def restore_model(self, data):
        name = data.draw(mostly_from(set(self.last_deleted)), label="model")
        if name not in self.last_deleted:
            with pytest.raises(NotFoundError):
                self.handle.restore_model(name)
        elif name in self.live:  # restored already, or registered again since the delete
            with pytest.raises(ConflictError):
                self.handle.restore_model(name)
        else:
            state = copy.deepcopy(self.last_deleted[name])
            assert self.handle.restore_model(name) == state["id"]
            self.live[name] = state

    @precondition(lambda self: self.live)
    @rule(data=st.data(), notes=st.none() | st.sampled_from(["", "first try", "beta 0.1 'quoted'"]))
    def set_notes(self, data, notes):
        name = data.draw(st.sampled_from(sorted(self.live)), label="model")
        before = self._column(name, "notes")
        assert self.handle.set_notes(name, notes) == (before != (notes or None))
        assert self._column(name, "notes") == (notes or None)

    @precondition(lambda self: self.live)
    @rule(data=st.data(), hidden=st.booleans())
    def set_hidden(self, data, hidden):
        name = data.draw(st.sampled_from(sorted(self.live)), label="model")
        before = self._column(name, "hidden")
        assert self.handle.set_hidden(name, hidden) == (before != int(hidden))
        assert self._column(name, "hidden") == int(hidden)

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def set_parent(self, data):
        name = data.draw(st.sampled_from(sorted(self.live)), label="model")
        parent = data.draw(st.none() | st.sampled_from(sorted(self.live)), label="parent")
        mid = self.live[name]["id"]
        ancestors_of_parent = self._ancestors(self.live[parent]["id"]) if parent is not None else []
        if parent is not None and (parent == name or mid in ancestors_of_parent):
            with pytest.raises((ConflictError, InvalidInputError)):
                self.handle.set_parent(name, parent)
            return
        self.handle.set_parent(name, parent)
        expected = None if parent is None else self.live[parent]["id"]
        assert self._column(name, "parent_id") == expected

    @precondition(lambda self: self.live)
    @rule(data=st.data())
    def rename_model(self, data):
        old = data.draw(st.sampled_from(sorted(self.live)), label="old")
        new = data.draw(names, label="new")
        if new in self.live and new != old:
            with pytest.raises(ConflictError):
                self.handle.rename_model(old, new)
            return
        if new in self.last_deleted or old in self.last_deleted:
            return  # keeps the shadow's "restore by name" bookkeeping simple
        assert self.handle.rename_model(old, new) == (old != new)
        self.live[new] = self.live.pop(old)

    def _column(self, name, column):
        conn = sqlite3.connect(self.db)
        try:
            return conn.execute(f"SELECT {column} FROM model WHERE id = ?", (self.live[name]["id"],)).fetchone()[0]
        finally:
            conn.close()

    def _ancestors(self, model_id):
        conn = sqlite3.connect(self.db)
        try:
            chain, node = [model_id], model_id
            while True:
                (node,) = conn.execute("SELECT parent_id FROM model WHERE id = ?", (node,)).fetchone()
                if node is None:
                    return chain
                chain.append(node)
        finally:
            conn.close()

    # -- invariants -------------------------------------------------------------------------

    @invariant()
    def log_and_tables_agree(self):
        result = verify(self.db)
        assert result.ok, result.differences

        live = read_tables(self.db)
        out = self.dir / f"replay-{next(self.replays)}.db"
        replay(self.db, out=out)
        try:
            assert read_tables(out) == live
        finally:
            remove_db(out)

        if self.previous is not None:  # the past, from the log alone
            seq, tables = self.previous
            past = self.dir / f"replay-{next(self.replays)}.db"
            replay(self.db, out=past, upto=seq)
            try:
                assert read_tables(past) == tables
            finally:
                remove_db(past)
        self.previous = (max_seq(self.db), live)

    @invariant()
    def metrics_match_shadow(self):
        conn = sqlite3.connect(self.db)
        try:
            names_live = {name for (name,) in conn.execute("SELECT model_name FROM model")}
            assert names_live == set(self.live)
            for name, state in self.live.items():
                rows = conn.execute(
                    "SELECT family, metric_name, value FROM metrics WHERE model_id = ?", (state["id"],)).fetchall()
                assert {(f, m): v for f, m, v in rows} == state["metrics"]
                checkpoint_ids = {cid for (cid,) in conn.execute(
                    "SELECT id FROM checkpoint WHERE model_id = ?", (state["id"],))}
                assert checkpoint_ids == set(state["checkpoints"])
                for cid, checkpoint in state["checkpoints"].items():
                    rows = conn.execute(
                        "SELECT family, metric_name, value FROM metrics WHERE checkpoint_id = ?", (cid,)).fetchall()
                    assert {(f, m): v for f, m, v in rows} == checkpoint["metrics"]
        finally:
            conn.close()


def test_random_workload_keeps_log_and_tables_in_agreement(tmp_path):
    examples = itertools.count()

    def machine() -> RegistryMachine:
        folder = tmp_path / f"example-{next(examples)}"
        folder.mkdir()
        return RegistryMachine(folder)

    run_state_machine_as_test(
        machine,
        settings=settings(
            max_examples=20, stateful_step_count=20, deadline=None, database=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
