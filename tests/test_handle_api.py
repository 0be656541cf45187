"""The Python API, run side by side on both flavours: ``LightMLHandle`` and ``AsyncLightMLHandle``.

Every test that takes ``open_handle`` runs twice: once on the sync handle, once on the
async handle driven through a small adapter that runs each coroutine to completion on a
private event loop, so that one test body checks both I/O layers. The ``db`` fixture
verifies, after each test, that the read tables still match the event log.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import getpass
import inspect
import json
import os
import socket
import sqlite3
import subprocess
import sys
import textwrap
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from lightml import METRIC_INSERTED, METRIC_SKIPPED, METRIC_UPDATED, AsyncLightMLHandle, LightMLHandle
from lightml.errors import AmbiguousNameError, HandleClosedError, NotFoundError
from lightml.models.delete import DeleteResult
from lightml.registry import init_registry
from lightml.log.replay import verify


# -- the two flavours ------------------------------------------------------------------


class AsyncAdapter:
    """``AsyncLightMLHandle`` with the sync handle's face: each coroutine method is run to
    completion on one private event loop, so a test body can call either flavour."""

    def __init__(self, db, run_name=None, **kwargs):
        self._loop = asyncio.new_event_loop()
        self._handle = AsyncLightMLHandle(db, run_name, **kwargs)
        try:
            self._run(self._handle.open())
        except BaseException:
            self._loop.close()
            raise

    def _run(self, coro):
        return self._loop.run_until_complete(coro)

    def __getattr__(self, name):
        attr = getattr(self._handle, name)
        if inspect.iscoroutinefunction(attr):
            @functools.wraps(attr)
            def call(*args, **kwargs):
                return self._run(attr(*args, **kwargs))
            return call
        return attr

    def close(self):
        self._run(self._handle.close())

    def __enter__(self):
        self._run(self._handle.__aenter__())
        return self

    def __exit__(self, *exc):
        self._run(self._handle.__aexit__(*exc))

    def dispose(self):
        if not self._loop.is_closed():
            self.close()
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
            self._loop.close()


@pytest.fixture
def db(tmp_path):
    """The registry file of the test; after the test, its tables must match its log."""
    path = tmp_path / "reg.db"
    yield path
    if path.exists():
        with contextlib.closing(sqlite3.connect(path)) as conn:
            has_log = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'events'").fetchone()
        if has_log:
            result = verify(path)
            if not result.ok:
                pytest.fail(f"verify failed after the test: {result.differences}")


@pytest.fixture(params=["sync", "async"])
def flavour(request):
    return request.param


@pytest.fixture
def open_handle(flavour, db):
    """open_handle(db, run_name=None, **kw): a handle of the test's flavour, closed after the test."""
    opened = []

    def open_(path, run_name=None, **kwargs):
        if flavour == "sync":
            handle = LightMLHandle(path, run_name, **kwargs)
        else:
            handle = AsyncAdapter(path, run_name, **kwargs)
        opened.append(handle)
        return handle

    yield open_
    for handle in opened:
        if isinstance(handle, AsyncAdapter):
            handle.dispose()
        else:
            handle.close()


# -- reading the file directly -------------------------------------------------------------


def query(db, sql, params=()):
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute(sql, params).fetchall()


def events(db, event_type=None):
    sql = "SELECT seq, type, at, payload FROM events"
    if event_type is not None:
        return query(db, sql + " WHERE type = ? ORDER BY seq", (event_type,))
    return query(db, sql + " ORDER BY seq")


def n_events(db):
    return query(db, "SELECT count(*) FROM events")[0][0]


def last_seq(db):
    return query(db, "SELECT coalesce(max(seq), 0) FROM events")[0][0]


def model_row(db, model_id):
    rows = query(db, "SELECT id, model_name, path, parent_id, run_id FROM model WHERE id = ?", (model_id,))
    return rows[0] if rows else None


def symlinks_to(folder: Path, target: Path) -> list[Path]:
    if not folder.is_dir():
        return []
    return [p for p in folder.iterdir() if p.is_symlink() and Path(os.readlink(p)) == target]


# -- opening and closing -----------------------------------------------------------------------


def test_open_creates_missing_file_and_the_run(open_handle, db):
    assert not db.exists()
    h = open_handle(db, "run-1")
    assert db.exists()
    assert query(db, "SELECT run_name FROM run") == [("run-1",)]
    before = n_events(db)
    open_handle(db, "run-1")  # an existing run is reused, not created again
    assert n_events(db) == before
    assert query(db, "SELECT run_name FROM run") == [("run-1",)]
    assert h.run_name == "run-1"


def test_open_in_missing_folder_is_file_not_found(open_handle, tmp_path):
    missing = tmp_path / "nope" / "reg.db"
    with pytest.raises(FileNotFoundError):
        open_handle(missing, "r")
    assert not missing.parent.exists()


def test_context_manager_closes_and_closed_handle_refuses_use(open_handle, db):
    with open_handle(db, "r") as h:
        h.register_model("m", "hub/m")
        assert h.log_model_metric("m", "fam", "acc", 0.5) == METRIC_INSERTED
    for call in (
        lambda: h.model_exists("m"),
        lambda: h.log_model_metric("m", "fam", "acc2", 0.1),
        lambda: h.register_model("m2", "hub/m2"),
        lambda: h.search("*"),
    ):
        with pytest.raises(HandleClosedError):
            call()
    h.close()  # closing twice is harmless
    # what was written before close is there; what was refused is not
    assert query(db, "SELECT family, metric_name, value FROM metrics") == [("fam", "acc", 0.5)]
    assert query(db, "SELECT model_name FROM model") == [("m",)]


def test_close_then_reopen_sees_everything(open_handle, db):
    h = open_handle(db, "r")
    h.register_model("m", "hub/m")
    h.log_metrics("m", {"fam": {"a": 0.1, "b": 0.2}})
    h.close()
    with pytest.raises(HandleClosedError):
        h.metric_exists("m", "fam", "a")
    h2 = open_handle(db, "r")
    assert h2.metric_exists("m", "fam", "a") and h2.metric_exists("m", "fam", "b")


# -- register_model ------------------------------------------------------------------------------


def test_register_model_is_idempotent_by_name_and_run(open_handle, db):
    h = open_handle(db, "r1")
    mid = h.register_model("m", "hub/m")
    assert isinstance(mid, int)
    assert h.register_model("m", "hub/m") == mid
    assert h.register_model("m", "hub/other-path") == mid  # same (name, run): same model
    assert len(events(db, "model_registered")) == 1
    other = h.register_model("m2", "hub/m")
    assert other != mid
    # the same name in another run is another model
    h2 = open_handle(db, "r2")
    in_r2 = h2.register_model("m", "hub/m")
    assert in_r2 not in (mid, other)
    assert model_row(db, mid)[1:] == ("m", "hub/m", None, query(db, "SELECT id FROM run WHERE run_name='r1'")[0][0])
    assert len(events(db, "model_registered")) == 3


def test_local_path_made_absolute_and_hub_id_kept(open_handle, db, tmp_path, monkeypatch):
    work = tmp_path / "work"
    (work / "ckpts" / "m1").mkdir(parents=True)
    monkeypatch.chdir(work)
    h = open_handle(db, "r")
    local = h.register_model("local", "ckpts/m1")
    as_path = h.register_model("as-pathlike", Path("ckpts") / "m1")
    hub = h.register_model("gpt2", "openai-community/gpt2")
    missing_abs = h.register_model("abs", str(tmp_path / "not-there"))
    assert model_row(db, local)[2] == str(work / "ckpts" / "m1")
    assert model_row(db, as_path)[2] == str(work / "ckpts" / "m1")
    assert model_row(db, hub)[2] == "openai-community/gpt2"
    assert model_row(db, missing_abs)[2] == str(tmp_path / "not-there")


def test_symlink_created_for_existing_local_path(open_handle, db, tmp_path):
    weights = tmp_path / "weights" / "m1"
    weights.mkdir(parents=True)
    h = open_handle(db, "r")
    h.register_model("m1", str(weights))
    link = tmp_path / "models" / "m1"
    assert link.is_symlink()
    assert Path(os.readlink(link)) == weights
    assert link.resolve() == weights.resolve()
    h.register_model("hub", "openai-community/gpt2")  # a hub id gets no link
    assert sorted(p.name for p in (tmp_path / "models").iterdir()) == ["m1"]


def test_symlink_for_name_with_slash_is_safe(open_handle, db, tmp_path):
    weights = tmp_path / "weights" / "llama"
    weights.mkdir(parents=True)
    h = open_handle(db, "r")
    mid = h.register_model("org/llama-7b", str(weights))
    models = tmp_path / "models"
    links = symlinks_to(models, weights)
    assert len(links) == 1
    assert links[0].parent == models  # no models/org/ folder
    assert not (models / "org").exists()
    assert model_row(db, mid)[1] == "org/llama-7b"


@pytest.mark.filterwarnings("ignore::RuntimeWarning")
def test_link_that_cannot_be_made_never_fails_the_call(open_handle, db, tmp_path):
    weights = tmp_path / "weights"
    weights.mkdir()
    (tmp_path / "models").write_text("a file where the links folder would go")
    h = open_handle(db, "r")
    mid = h.register_model("m", str(weights))
    assert isinstance(mid, int)
    assert h.model_exists("m")
    assert h.register_model("m", str(weights)) == mid


def test_parent_name_looked_up_in_run_then_across_runs(open_handle, db):
    a = open_handle(db, "A")
    base_a = a.register_model("base", "hub/base")
    only_a = a.register_model("only-in-A", "hub/x")
    b = open_handle(db, "B")
    base_b = b.register_model("base", "hub/base")
    # in B, 'base' means B's own base even though A has one too
    child_b = b.register_model("sft", "hub/sft", parent_name="base")
    assert model_row(db, child_b)[3] == base_b
    # a parent that lives only in another run is found across runs
    child_x = b.register_model("from-a", "hub/y", parent_name="only-in-A")
    assert model_row(db, child_x)[3] == only_a
    # in A, 'base' is A's
    child_a = a.register_model("sft", "hub/sft", parent_name="base")
    assert model_row(db, child_a)[3] == base_a


def test_ambiguous_or_unknown_parent_is_an_error_and_writes_nothing(open_handle, db):
    open_handle(db, "A").register_model("base", "hub/base")
    open_handle(db, "B").register_model("base", "hub/base")
    c = open_handle(db, "C")
    before = events(db)
    with pytest.raises(AmbiguousNameError) as info:
        c.register_model("child", "hub/child", parent_name="base")
    assert "'A/base'" in str(info.value) and "'B/base'" in str(info.value)
    with pytest.raises(NotFoundError, match="nope"):
        c.register_model("child", "hub/child", parent_name="nope")
    with pytest.raises(LookupError):
        c.register_model("child", "hub/child", parent_name="nope")
    assert events(db) == before
    assert not c.model_exists("child")


def test_parent_id(open_handle, db):
    h = open_handle(db, "r")
    base = h.register_model("base", "hub/base")
    child = h.register_model("child", "hub/child", parent_id=base)
    assert model_row(db, child)[3] == base
    both = h.register_model("child2", "hub/c2", parent_name="base", parent_id=base)
    assert model_row(db, both)[3] == base
    other = h.register_model("other", "hub/o")
    before = events(db)
    with pytest.raises(ValueError):
        h.register_model("child3", "hub/c3", parent_name="base", parent_id=other)  # they disagree
    with pytest.raises(LookupError):
        h.register_model("child3", "hub/c3", parent_id=other + 100)
    assert events(db) == before


# -- checkpoints ------------------------------------------------------------------------------------


def test_register_and_find_checkpoints(open_handle, db, tmp_path):
    h = open_handle(db, "r")
    h.register_model("m", "hub/m")
    c100 = h.register_checkpoint("m", 100, "hub/m/step100")
    assert isinstance(c100, int)
    assert h.register_checkpoint("m", 100, "hub/m/step100") == c100  # idempotent
    c200_a = h.register_checkpoint("m", 200, "runs/a/step200")
    c200_b = h.register_checkpoint("m", 200, "runs/b/step200")
    assert len({c100, c200_a, c200_b}) == 3
    assert h.find_checkpoint("m", 100) == c100
    assert h.find_checkpoint("m", 200, path_hint="runs/a") == c200_a
    assert h.find_checkpoint("m", 200, path_hint="runs/b") == c200_b
    assert h.find_checkpoint("m", 200) in (c200_a, c200_b)
    assert h.find_checkpoint("m", 200, path_hint="runs/zzz") is None
    assert h.find_checkpoint("m", 300) is None
    assert len(events(db, "checkpoint_registered")) == 3
    local = tmp_path / "ck"
    local.mkdir()
    c_local = h.register_checkpoint("m", 5, local)
    assert query(db, "SELECT model_id, step, path FROM checkpoint WHERE id = ?", (c_local,)) == [
        (h.register_model("m", "hub/m"), 5, str(local))
    ]


# -- metrics and the dedup table ----------------------------------------------------------------


def test_model_metric_dedup_table(open_handle, db):
    h = open_handle(db, "r")
    h.register_model("m", "hub/m")
    assert h.log_model_metric("m", "fam", "acc", 0.5) == METRIC_INSERTED
    n = n_events(db)
    assert h.log_model_metric("m", "fam", "acc", 0.9) == METRIC_SKIPPED
    assert n_events(db) == n  # skip appends nothing
    assert query(db, "SELECT value FROM metrics") == [(0.5,)]
    assert h.log_model_metric("m", "fam", "acc", 0.7, force=True) == METRIC_UPDATED
    overwrites = events(db, "metric_overwritten")
    assert len(overwrites) == 1 and n_events(db) == n + 1
    assert query(db, "SELECT value FROM metrics") == [(0.7,)]
    history = h.metric_history("m", "fam", "acc")
    assert [(e["action"], e["value"], e["previous_value"]) for e in history] == [
        ("inserted", 0.5, None), ("overwritten", 0.7, 0.5),
    ]
    # force on a metric that does not exist yet is an insert
    assert h.log_model_metric("m", "fam", "f1", 0.3, force=True) == METRIC_INSERTED
    assert h.log_model_metric("m", "fam", "acc", 0.7, force=True) == METRIC_UPDATED


def test_checkpoint_metric_dedup_table(open_handle, db):
    h = open_handle(db, "r")
    h.register_model("m", "hub/m")
    c1 = h.register_checkpoint("m", 10, "hub/m/10")
    c2 = h.register_checkpoint("m", 20, "hub/m/20")
    assert h.log_checkpoint_metric(c1, "fam", "loss", 2.0) == METRIC_INSERTED
    assert h.log_checkpoint_metric(c2, "fam", "loss", 1.0) == METRIC_INSERTED  # other checkpoint
    assert h.log_model_metric("m", "fam", "loss", 0.5) == METRIC_INSERTED  # model-level is separate
    n = n_events(db)
    assert h.log_checkpoint_metric(c1, "fam", "loss", 9.0) == METRIC_SKIPPED
    assert n_events(db) == n
    assert h.log_checkpoint_metric(c1, "fam", "loss", 1.5, force=True) == METRIC_UPDATED
    assert query(db, "SELECT checkpoint_id, value FROM metrics WHERE checkpoint_id IS NOT NULL ORDER BY 1") == [
        (c1, 1.5), (c2, 1.0),
    ]
    history = h.metric_history("m", "fam", "loss", step=10)
    assert [(e["action"], e["value"], e["previous_value"]) for e in history] == [
        ("inserted", 2.0, None), ("overwritten", 1.5, 2.0),
    ]


def test_scores_stored_as_json_with_n_samples(open_handle, db):
    import numpy as np

    h = open_handle(db, "r")
    h.register_model("m", "hub/m")
    h.register_model("other", "hub/o")
    h.log_model_metric("m", "fam", "acc", 0.5, scores=[1, 0, 1, 0])
    h.log_model_metric("m", "fam", "f1", 0.25, scores=np.array([0.5, 0.0, 0.25, 0.25]))
    h.log_model_metric("m", "fam", "bools", 0.5, scores=[True, False])
    h.log_model_metric("m", "fam", "plain", 0.1)
    rows = query(
        db, "SELECT m.metric_name, d.scores, d.n_samples FROM detailed_scores d "
        "JOIN metrics m ON m.id = d.metric_id ORDER BY m.metric_name",
    )
    assert [(name, json.loads(text), n) for name, text, n in rows] == [
        ("acc", [1, 0, 1, 0], 4), ("bools", [1, 0], 2), ("f1", [0.5, 0.0, 0.25, 0.25], 4),
    ]
    assert h.get_detailed_scores("m", "fam", "acc") == [1, 0, 1, 0]
    assert h.get_detailed_scores("m", "fam", "f1") == [0.5, 0.0, 0.25, 0.25]
    assert h.get_detailed_scores("m", "fam", "plain") is None
    assert h.get_detailed_scores("m", "fam", "nope") is None
    assert h.get_detailed_scores("other", "fam", "acc") is None
    with pytest.raises(LookupError):
        h.get_detailed_scores("ghost", "fam", "acc")
    # an overwrite with new scores replaces them
    assert h.log_model_metric("m", "fam", "acc", 0.75, scores=[1, 1, 1, 0], force=True) == METRIC_UPDATED
    assert h.get_detailed_scores("m", "fam", "acc") == [1, 1, 1, 0]
    # a skipped call leaves the stored scores alone
    assert h.log_model_metric("m", "fam", "acc", 0.0, scores=[0, 0, 0, 0]) == METRIC_SKIPPED
    assert h.get_detailed_scores("m", "fam", "acc") == [1, 1, 1, 0]


def test_log_metrics_counts_and_one_transaction(open_handle, db):
    h = open_handle(db, "r")
    h.register_model("m", "hub/m")
    first = h.log_metrics("m", {"fam1": {"a": 0.1, "b": 0.2}, "fam2": {"c": 0.3}})
    assert first == {"inserted": 3, "updated": 0, "skipped": 0}
    start = last_seq(db)
    second = h.log_metrics("m", {"fam1": {"a": 0.9, "d": 0.4}, "fam2": {"c": 0.3}})
    assert second == {"inserted": 1, "updated": 0, "skipped": 2}
    assert last_seq(db) == start + 1  # one event for the inserts, none for the skips
    start = last_seq(db)
    third = h.log_metrics("m", {"fam1": {"a": 0.95, "e": 0.5}, "fam2": {"c": 0.35}}, force=True)
    assert third == {"inserted": 1, "updated": 2, "skipped": 0}
    new = [e for e in events(db) if e[0] > start]
    # the call's events: one contiguous range of seq, written at one moment (one transaction)
    assert [e[0] for e in new] == list(range(start + 1, start + 1 + len(new)))
    assert sorted(e[1] for e in new) == ["metric_inserted", "metric_overwritten"]
    assert len({e[2] for e in new}) == 1
    values = dict(((f, n), v) for f, n, v in query(db, "SELECT family, metric_name, value FROM metrics"))
    assert values == {
        ("fam1", "a"): 0.95, ("fam1", "b"): 0.2, ("fam1", "d"): 0.4, ("fam1", "e"): 0.5, ("fam2", "c"): 0.35,
    }


def test_bulk_relog_with_many_metrics_per_family_finds_what_exists(open_handle, db):
    """Bulk calls with several metrics per family first ask which families exist: metrics
    of a present family are found, those of new families inserted, on models and checkpoints."""
    h = open_handle(db, "r")
    h.register_model("m", "hub/m")
    ckpt = h.register_checkpoint("m", 100, "hub/m/ckpt-100")
    old = {f"old{k}": {f"x{i}": i / 10 for i in range(6)} for k in range(3)}
    assert h.log_metrics("m", old) == {"inserted": 18, "updated": 0, "skipped": 0}
    for i in range(6):
        h.log_checkpoint_metric(ckpt, "old0", f"x{i}", i / 10)
    # old1 gains one metric, new0/new1 are new, old0 and old2 exist whole
    again = {**old, "old1": {**old["old1"], "x6": 0.6}, **{f"new{k}": {f"y{i}": 1.0 for i in range(5)} for k in range(2)}}
    assert h.log_metrics("m", again) == {"inserted": 11, "updated": 0, "skipped": 18}
    assert h.log_metrics("m", {"old2": {f"x{i}": 0.5 for i in range(6)}}, force=True) == {
        "inserted": 0, "updated": 6, "skipped": 0}
    assert query(db, "SELECT count(*) FROM metrics WHERE model_id IS NOT NULL") == [(29,)]
    assert dict(query(db, "SELECT metric_name, value FROM metrics WHERE family = 'old2'")) == {
        f"x{i}": 0.5 for i in range(6)}
    # the checkpoint's metrics are its own: the model's old0 says nothing about them
    assert [h.log_checkpoint_metric(ckpt, "old0", f"x{i}", 0.9) for i in range(7)] == [METRIC_SKIPPED] * 6 + [METRIC_INSERTED]


def test_log_metrics_is_all_or_nothing(open_handle, db):
    h = open_handle(db, "r")
    h.register_model("m", "hub/m")
    before = events(db)
    with pytest.raises(ValueError):
        h.log_metrics("m", {"fam1": {"a": 0.1, "b": 0.2}, "fam2": {"c": float("nan")}})
    with pytest.raises(ValueError):
        h.log_metrics_flat("m", {"a": 0.1, "b": "high"}, "fam")
    assert events(db) == before
    assert query(db, "SELECT count(*) FROM metrics") == [(0,)]


def test_log_metrics_flat_counts(open_handle, db):
    h = open_handle(db, "r")
    h.register_model("m", "hub/m")
    assert h.log_metrics_flat("m", {"x": 1.0, "y": 2.0}, "fam") == {"inserted": 2, "updated": 0, "skipped": 0}
    start = last_seq(db)
    assert h.log_metrics_flat("m", {"x": 1.5, "y": 2.0, "z": 3}, "fam", force=True) == {
        "inserted": 1, "updated": 2, "skipped": 0,
    }
    new = [e for e in events(db) if e[0] > start]
    assert [e[0] for e in new] == list(range(start + 1, start + 1 + len(new)))
    assert len({e[2] for e in new}) == 1
    assert h.log_metrics_flat("m", {"x": 0.0, "z": 0.0}, "fam") == {"inserted": 0, "updated": 0, "skipped": 2}
    assert dict(query(db, "SELECT metric_name, value FROM metrics")) == {"x": 1.5, "y": 2.0, "z": 3.0}
    assert h.metric_history("m", "fam", "y")[-1]["action"] == "overwritten"  # forced, even if equal


# -- exists and search -------------------------------------------------------------------------------


def test_exists_queries(open_handle, db):
    a = open_handle(db, "A")
    a.register_model("m", "hub/m")
    a.log_model_metric("m", "fam", "acc", 0.5)
    b = open_handle(db, "B")
    b.register_model("n", "hub/n")
    # model_exists / metric_exists answer for any run (LightML 1.2); run_metric_exists for the handle's run
    for h in (a, b, open_handle(db)):
        assert h.model_exists("m") and h.model_exists("n")
        assert not h.model_exists("M")  # names are case-sensitive
        assert not h.model_exists("ghost")
        assert h.metric_exists("m", "fam", "acc")
        assert not h.metric_exists("m", "fam", "f1")
        assert not h.metric_exists("m", "other", "acc")
        assert not h.metric_exists("n", "fam", "acc")
    assert a.run_metric_exists("m", "fam", "acc")
    assert not a.run_metric_exists("m", "fam", "f1")
    assert not b.run_metric_exists("m", "fam", "acc")
    ck = a.register_checkpoint("m", 1, "hub/m/1")
    a.log_checkpoint_metric(ck, "fam", "ckpt_only", 0.1)
    assert not a.metric_exists("m", "fam", "ckpt_only")  # model-level metrics only
    # without a run: the default run ``benchmarks`` (as in LightML 1.4), which has no such model
    assert not open_handle(db).run_metric_exists("m", "fam", "acc")


def test_search_globs_match_other_characters_literally(open_handle, db):
    h = open_handle(db, "r")
    names = ["gpt2", "gpt2-large", "GPT2-upper", "50%_off", "50xyoff", "a_b", "axb", "m[1]", "m1", "it's \"q\"", "itxs xqx"]
    for name in names:
        h.register_model(name, f"hub/{len(name)}")
        h.log_model_metric(name, "bench_ita", "acc", 0.5)
    h.log_model_metric("gpt2", "benchXita", "acc", 0.1)
    h.log_model_metric("gpt2", "bench_ita", "f1", 0.2)

    def models(*args):
        return sorted({r["model"] for r in h.search(*args)})

    assert models("gpt2") == ["gpt2"]
    assert models("gpt2*") == ["gpt2", "gpt2-large"]  # case-sensitive: not GPT2-upper
    assert models("gpt?") == ["gpt2"]
    assert models("gp?") == []
    assert models("gpt?*") == ["gpt2", "gpt2-large"]
    assert models("50%_*") == ["50%_off"]
    assert models("50%_off") == ["50%_off"]
    assert models("a_b") == ["a_b"]
    assert models("a_*") == ["a_b"]
    assert models("a?b") == ["a_b", "axb"]
    assert models("m[1]*") == ["m[1]"]
    assert models("m[1]") == ["m[1]"]
    assert models("m[12]*") == []
    assert models("it's \"q\"") == ["it's \"q\""]
    assert models("it's*") == ["it's \"q\""]
    assert models("*") == sorted(names)
    rows = h.search("gpt2", "bench_*")
    assert sorted((r["family"], r["metric"]) for r in rows) == [("bench_ita", "acc"), ("bench_ita", "f1")]
    rows = h.search("gpt2", "bench?ita", "acc")
    assert sorted((r["family"], r["value"]) for r in rows) == [("benchXita", 0.1), ("bench_ita", 0.5)]
    assert h.search("gpt2", "bench_ita", "f1") == [
        {"model": "gpt2", "family": "bench_ita", "metric": "f1", "value": 0.2, "run": "r"},
    ]
    assert h.search("gpt2") == [{"model": "gpt2"}]  # without family/metric: the models


def test_search_across_runs_reports_the_run(open_handle, db):
    a = open_handle(db, "A")
    a.register_model("m", "hub/m")
    a.log_model_metric("m", "fam", "acc", 0.1)
    b = open_handle(db, "B")
    b.register_model("m", "hub/m")
    b.log_model_metric("m", "fam", "acc", 0.2)
    reader = open_handle(db)
    assert sorted((r["run"], r["value"]) for r in reader.search("m", "fam")) == [("A", 0.1), ("B", 0.2)]
    assert sorted((r["run"], r["value"]) for r in reader.search("*", None, "acc")) == [("A", 0.1), ("B", 0.2)]
    assert reader.search("m") == [{"model": "m"}]  # one entry per name


# -- name resolution ------------------------------------------------------------------------------------


def test_name_resolution_without_a_run(open_handle, db):
    a = open_handle(db, "run-A")
    a.register_model("unique", "hub/u")
    a.log_model_metric("unique", "fam", "acc", 0.5, scores=[1, 0])
    a.register_model("shared", "hub/s")
    a.log_model_metric("shared", "fam", "acc", 0.1, scores=[0, 0])
    b = open_handle(db, "run-B")
    b.register_model("shared", "hub/s")
    b.log_model_metric("shared", "fam", "acc", 0.9, scores=[1, 1])
    reader = open_handle(db)
    assert reader.get_detailed_scores("unique", "fam", "acc") == [1, 0]
    assert [e["value"] for e in reader.metric_history("unique", "fam", "acc")] == [0.5]
    for call in (
        lambda: reader.get_detailed_scores("shared", "fam", "acc"),
        lambda: reader.metric_history("shared", "fam", "acc"),
        lambda: reader.find_checkpoint("shared", 1),
    ):
        with pytest.raises(AmbiguousNameError) as info:
            call()
        assert "'run-A/shared'" in str(info.value) and "'run-B/shared'" in str(info.value)
    # a handle with a run prefers its run; RUN/MODEL and MODEL@RUN name another run's model
    assert a.get_detailed_scores("shared", "fam", "acc") == [0, 0]
    assert b.get_detailed_scores("shared", "fam", "acc") == [1, 1]
    assert b.get_detailed_scores("run-A/shared", "fam", "acc") == [0, 0]
    assert [e["value"] for e in b.metric_history("shared@run-A", "fam", "acc")] == [0.1]
    assert b.get_detailed_scores("unique", "fam", "acc") == [1, 0]  # only in run-A: found from run-B
    with pytest.raises(LookupError):
        reader.get_detailed_scores("ghost", "fam", "acc")


def test_writes_without_a_run_use_the_benchmarks_run(open_handle, db):
    open_handle(db, "r").register_model("m", "hub/m")
    writer = open_handle(db)  # as in LightML 1.4: the default run is "benchmarks"
    before = events(db)
    for call in (  # 'm' is in run 'r', not in 'benchmarks': refused, and no empty run is left
        lambda: writer.register_checkpoint("m", 1, "hub/m/1"),
        lambda: writer.log_model_metric("m", "fam", "acc", 0.5),
        lambda: writer.log_metrics("m", {"fam": {"acc": 0.5}}),
        lambda: writer.log_metrics_flat("m", {"acc": 0.5}, "fam"),
    ):
        with pytest.raises(LookupError, match="benchmarks"):
            call()
    assert events(db) == before
    writer.register_model("x", "hub/x")
    assert writer.log_model_metric("x", "fam", "acc", 0.5)
    assert writer.run_metric_exists("x", "fam", "acc")
    assert open_handle(db, "benchmarks").run_metric_exists("x", "fam", "acc")


def test_a_handle_in_one_run_does_not_write_to_a_model_of_another(open_handle, db):
    open_handle(db, "A").register_model("m", "hub/m")
    b = open_handle(db, "B")
    before = events(db)
    with pytest.raises(LookupError, match="'A'"):  # the message says where it is
        b.log_model_metric("m", "fam", "acc", 0.5)
    with pytest.raises(LookupError):
        b.register_checkpoint("m", 1, "hub/m/1")
    assert events(db) == before


# -- delete and restore ---------------------------------------------------------------------------------


def _lineage(h, tmp_path):
    weights = tmp_path / "weights" / "base"
    weights.mkdir(parents=True)
    base = h.register_model("base", str(weights))
    child = h.register_model("child", "hub/child", parent_name="base")
    c1 = h.register_checkpoint("base", 10, "hub/base/10")
    c2 = h.register_checkpoint("base", 20, "hub/base/20")
    h.log_model_metric("base", "fam", "acc", 0.5, scores=[1, 0])
    h.log_model_metric("base", "fam", "f1", 0.4)
    h.log_checkpoint_metric(c1, "fam", "acc", 0.3, scores=[0, 1])
    h.log_checkpoint_metric(c2, "fam", "acc", 0.35)
    h.log_model_metric("child", "fam", "acc", 0.6)
    return weights, base, child, c1, c2


def test_delete_model_cascades_and_unlinks_children(open_handle, db, tmp_path):
    h = open_handle(db, "r")
    weights, base, child, c1, c2 = _lineage(h, tmp_path)
    assert symlinks_to(tmp_path / "models", weights)
    n = n_events(db)
    result = h.delete_model("base")
    assert isinstance(result, DeleteResult)
    assert (result.model_name, result.checkpoints_deleted, result.metrics_deleted) == ("base", 2, 4)
    assert n_events(db) == n + 1
    assert events(db)[-1][:2] == (result.seq, "model_deleted")
    assert not h.model_exists("base")
    assert model_row(db, base) is None
    assert query(db, "SELECT count(*) FROM checkpoint") == [(0,)]
    assert query(db, "SELECT model_id, value FROM metrics") == [(child, 0.6)]
    assert query(db, "SELECT count(*) FROM detailed_scores") == [(0,)]
    assert model_row(db, child)[3] is None  # child kept, unlinked
    assert h.model_exists("child")
    assert not symlinks_to(tmp_path / "models", weights)
    assert weights.is_dir()  # the model's own files are never touched
    with pytest.raises(ValueError):
        h.delete_model("base")  # already gone
    with pytest.raises(ValueError):
        h.delete_model("never-existed")
    assert n_events(db) == n + 1


def test_delete_model_without_a_run(open_handle, db):
    a = open_handle(db, "A")
    a.register_model("solo", "hub/s")
    a.register_model("twin", "hub/t")
    open_handle(db, "B").register_model("twin", "hub/t")
    reader = open_handle(db)
    assert reader.delete_model("solo").model_name == "solo"
    before = events(db)
    with pytest.raises(AmbiguousNameError) as info:
        reader.delete_model("twin")
    assert "'A'" in str(info.value) and "'B'" in str(info.value)
    assert events(db) == before
    assert a.delete_model("twin").checkpoints_deleted == 0  # a run's handle says which
    assert query(db, "SELECT r.run_name FROM model m JOIN run r ON r.id = m.run_id") == [("B",)]


def test_restore_model_brings_everything_back(open_handle, db, tmp_path):
    h = open_handle(db, "r")
    weights, base, child, c1, c2 = _lineage(h, tmp_path)
    tables = ("model", "checkpoint", "metrics", "detailed_scores")
    before = {t: sorted(query(db, f"SELECT * FROM {t}")) for t in tables}
    h.delete_model("base")
    assert h.restore_model("base") == base
    after = {t: sorted(query(db, f"SELECT * FROM {t}")) for t in tables}
    assert after == before  # same rows, same ids, parent link of the child restored
    assert model_row(db, child)[3] == base
    assert h.find_checkpoint("base", 10) == c1
    assert h.get_detailed_scores("base", "fam", "acc") == [1, 0]
    assert symlinks_to(tmp_path / "models", weights)
    assert [e["action"] for e in h.metric_history("base", "fam", "acc")] == ["inserted", "deleted", "restored"]
    with pytest.raises(ValueError):
        h.restore_model("base")  # not deleted any more
    with pytest.raises(ValueError):
        h.restore_model("never-existed")
    # ids are never reused: a model registered after a delete gets a new id
    h.delete_model("child")
    new = h.register_model("newcomer", "hub/n")
    assert new > child


def test_deleting_a_model_keeps_the_link_another_live_model_uses(open_handle, db, tmp_path):
    """Two runs register model 'm' from the same folder: one link serves both. Deleting
    run A's model must not take the link away from run B's, which still lives there."""
    weights = tmp_path / "weights"
    weights.mkdir()
    a = open_handle(db, "A")
    a.register_model("m", str(weights))
    b = open_handle(db, "B")
    b.register_model("m", str(weights))
    assert symlinks_to(tmp_path / "models", weights)
    a.delete_model("m")
    assert query(db, "SELECT r.run_name, m.path FROM model m JOIN run r ON r.id = m.run_id") == [("B", str(weights))]
    assert symlinks_to(tmp_path / "models", weights), "run B's live model 'm' lost its models/ link"


# -- metric_history ------------------------------------------------------------------------------------------


def test_metric_history_entries(open_handle, db):
    h = open_handle(db, "r")
    h.register_model("m", "hub/m")
    ck = h.register_checkpoint("m", 500, "hub/m/500")
    h.log_model_metric("m", "fam", "acc", 0.5)
    h.log_model_metric("m", "fam", "acc", 0.6)  # skipped: not in the history
    h.log_model_metric("m", "fam", "acc", 0.7, force=True)
    h.log_checkpoint_metric(ck, "fam", "acc", 0.2)
    h.log_checkpoint_metric(ck, "fam", "acc", 0.25, force=True)
    history = h.metric_history("m", "fam", "acc")
    assert len(history) == 2
    seqs = {e[0]: e[1] for e in events(db)}
    me = f"{getpass.getuser()}@{socket.gethostname()} (api)"
    for entry in history:
        assert {"seq", "at", "action", "value", "previous_value", "actor"} <= set(entry)
        assert seqs[entry["seq"]] in ("metric_inserted", "metric_overwritten")
        at = datetime.fromisoformat(entry["at"].replace("Z", "+00:00"))
        assert at.utcoffset() == timedelta(0)
        assert entry["actor"] == me
    assert history[0]["seq"] < history[1]["seq"]
    assert history[0]["at"] <= history[1]["at"]
    assert [(e["action"], e["value"], e["previous_value"]) for e in history] == [
        ("inserted", 0.5, None), ("overwritten", 0.7, 0.5),
    ]
    at_step = h.metric_history("m", "fam", "acc", step=500)
    assert [(e["action"], e["value"], e["previous_value"]) for e in at_step] == [
        ("inserted", 0.2, None), ("overwritten", 0.25, 0.2),
    ]
    assert h.metric_history("m", "fam", "acc", step=999) == []
    assert h.metric_history("m", "fam", "nope") == []
    with pytest.raises(LookupError):
        h.metric_history("ghost", "fam", "acc")


def test_metric_history_of_a_deleted_model_stays_readable(open_handle, db):
    h = open_handle(db, "r")
    h.register_model("m", "hub/m")
    h.log_model_metric("m", "fam", "acc", 0.5)
    h.delete_model("m")
    assert [(e["action"], e["value"], e["previous_value"]) for e in h.metric_history("m", "fam", "acc")] == [
        ("inserted", 0.5, None), ("deleted", None, 0.5),
    ]


# -- registry schema --------------------------------------------------------------------------------------


def test_registry_schema_restricts_what_can_be_logged(open_handle, tmp_path):
    path = init_registry(tmp_path, "reg", metrics_schema=[{"family": "benchmarks_ita", "metrics": {"Hella": "float"}}])
    assert path == (tmp_path / "reg.db").resolve()
    h = open_handle(path, "r")
    h.register_model("m", "hub/m")
    assert h.log_model_metric("m", "benchmarks_ita", "Hella", 0.5) == METRIC_INSERTED
    before = events(path)
    for call in (
        lambda: h.log_model_metric("m", "benchmarks_ita", "Arc", 0.5),
        lambda: h.log_model_metric("m", "other", "Hella", 0.5),
        lambda: h.log_metrics("m", {"benchmarks_ita": {"Hella": 0.9, "Arc": 0.5}}, force=True),
        lambda: h.log_metrics_flat("m", {"Arc": 0.5}, "benchmarks_ita"),
    ):
        with pytest.raises(ValueError, match="not found in registry schema"):
            call()
    ck = h.register_checkpoint("m", 1, "hub/m/1")
    before = events(path)
    with pytest.raises(ValueError, match="not found in registry schema"):
        h.log_checkpoint_metric(ck, "benchmarks_ita", "Arc", 0.5)
    assert events(path) == before
    assert query(path, "SELECT family, metric_name, value FROM metrics") == [("benchmarks_ita", "Hella", 0.5)]
    assert verify(path).ok


# -- event loops, concurrency, exit --------------------------------------------------------------------------


def test_sync_handle_works_inside_a_running_event_loop(db):
    async def notebook_cell():
        assert asyncio.get_running_loop().is_running()
        with LightMLHandle(db, "r") as h:
            h.register_model("m", "hub/m")
            assert h.log_model_metric("m", "fam", "acc", 0.5) == METRIC_INSERTED
            assert h.log_metrics("m", {"fam": {"f1": 0.1}}) == {"inserted": 1, "updated": 0, "skipped": 0}
            return [(r["metric"], r["value"]) for r in h.search("m", "fam")]

    assert sorted(asyncio.run(notebook_cell())) == [("acc", 0.5), ("f1", 0.1)]


def test_async_handle_context_manager_and_use_after_close(db):
    async def main():
        async with AsyncLightMLHandle(db, "r") as h:
            await h.register_model("m", "hub/m")
            assert await h.log_model_metric("m", "fam", "acc", 0.5) == METRIC_INSERTED
        with pytest.raises(HandleClosedError):
            await h.model_exists("m")
        with pytest.raises(HandleClosedError):
            await h.log_model_metric("m", "fam", "f1", 0.5)
        never_opened = AsyncLightMLHandle(db, "r")
        await never_opened.close()
        with pytest.raises(HandleClosedError):
            await never_opened.model_exists("m")
        lazy = AsyncLightMLHandle(db, "r")  # the first call opens it
        try:
            return await lazy.metric_exists("m", "fam", "acc")
        finally:
            await lazy.close()

    assert asyncio.run(main()) is True
    assert query(db, "SELECT metric_name FROM metrics") == [("acc",)]


def test_group_commit_100_concurrent_coroutines_all_land(db):
    async def main():
        async with AsyncLightMLHandle(db, "r") as h:
            await h.register_model("m", "hub/m")
            before = n_events(db)
            outcomes = await asyncio.gather(*(h.log_model_metric("m", "fam", f"metric_{i}", i / 100) for i in range(100)))
            return before, outcomes

    before, outcomes = asyncio.run(main())
    assert outcomes == [METRIC_INSERTED] * 100
    # One transaction, and the hundred calls' metrics in one event, in call order.
    assert n_events(db) == before + 1
    (payload,) = [json.loads(row[3]) for row in events(db, "metric_inserted")]
    assert [m["metric_name"] for m in payload["metrics"]] == [f"metric_{i}" for i in range(100)]
    assert dict(query(db, "SELECT metric_name, value FROM metrics")) == {f"metric_{i}": i / 100 for i in range(100)}
    assert len(query(db, "SELECT DISTINCT id FROM metrics")) == 100
    assert verify(db).ok


def test_batched_calls_merge_only_neighbouring_events_of_one_target(db):
    """What one transaction of batched calls appends: an event per run of neighbouring
    calls with the same type and target; a metric changed twice gets two events, so its
    history keeps both changes."""
    async def main():
        async with AsyncLightMLHandle(db, "r") as h:
            await h.register_model("a", "hub/a")
            await h.register_model("b", "hub/b")
            await h.log_model_metric("a", "fam", "acc", 0.1)
            before = last_seq(db)
            outcomes = await asyncio.gather(
                h.log_model_metric("a", "fam", "x", 1.0),
                h.log_model_metric("a", "fam", "y", 2.0),
                h.log_model_metric("b", "fam", "x", 3.0),
                h.log_model_metric("a", "fam", "acc", 0.2, force=True),
                h.log_model_metric("a", "fam", "acc", 0.3, force=True),
                h.log_model_metric("a", "fam", "x", 9.0),  # exists by now: skipped
                h.log_model_metric("a", "fam", "z", 4.0),
            )
            return before, outcomes

    before, outcomes = asyncio.run(main())
    assert outcomes == [METRIC_INSERTED] * 3 + [METRIC_UPDATED] * 2 + [METRIC_SKIPPED, METRIC_INSERTED]
    model_ids = dict(query(db, "SELECT model_name, id FROM model"))
    appended = [(kind, json.loads(payload)) for seq, kind, _, payload in events(db) if seq > before]
    assert [(kind, p["model_id"], [(m["metric_name"], m["value"]) for m in p["metrics"]]) for kind, p in appended] == [
        ("metric_inserted", model_ids["a"], [("x", 1.0), ("y", 2.0)]),
        ("metric_inserted", model_ids["b"], [("x", 3.0)]),
        ("metric_overwritten", model_ids["a"], [("acc", 0.2)]),
        ("metric_overwritten", model_ids["a"], [("acc", 0.3)]),
        ("metric_inserted", model_ids["a"], [("z", 4.0)]),
    ]
    with LightMLHandle(db, "r") as h:
        history = h.metric_history("a", "fam", "acc")
    assert [(row["action"], row["value"], row["previous_value"]) for row in history] == [
        ("inserted", 0.1, None), ("overwritten", 0.2, 0.1), ("overwritten", 0.3, 0.2)]
    assert verify(db).ok


def test_concurrent_logs_of_one_metric_insert_it_once(db):
    async def main():
        async with AsyncLightMLHandle(db, "r") as h:
            await h.register_model("m", "hub/m")
            return await asyncio.gather(*(h.log_model_metric("m", "fam", "acc", i / 100) for i in range(50)))

    outcomes = asyncio.run(main())
    assert outcomes.count(METRIC_INSERTED) == 1
    assert outcomes.count(METRIC_SKIPPED) == 49
    assert len(events(db, "metric_inserted")) == 1
    assert query(db, "SELECT count(*) FROM metrics") == [(1,)]


def test_a_name_sqlite_cannot_store_fails_only_its_own_call(db):
    """A lone surrogate (half of a UTF-16 pair) is refused at the call, so the calls batched
    with it still land."""
    async def main():
        async with AsyncLightMLHandle(db, "r") as h:
            await h.register_model("m", "hub/m")
            return await asyncio.gather(h.log_model_metric("m", "fam", "good", 1.0),
                                        h.log_model_metric("m", "fam\udc80", "bad", 1.0),
                                        h.log_model_metric("m", "fam", "bad\ud800", 1.0),
                                        return_exceptions=True)

    good, *bad = asyncio.run(main())
    assert good == METRIC_INSERTED
    assert all(isinstance(e, ValueError) and "lone surrogate" in str(e) for e in bad)
    assert query(db, "SELECT family, metric_name FROM metrics") == [("fam", "good")]


def test_one_failing_coroutine_does_not_undo_the_others(db):
    async def main():
        async with AsyncLightMLHandle(db, "r") as h:
            await h.register_model("m", "hub/m")
            calls = [h.log_model_metric("m", "fam", f"x{i}", 0.5) for i in range(20)]
            calls.insert(7, h.log_model_metric("ghost", "fam", "x", 0.5))
            calls.insert(12, h.register_model("child", "hub/c", parent_name="nope"))
            return await asyncio.gather(*calls, return_exceptions=True)

    results = asyncio.run(main())
    errors = [r for r in results if isinstance(r, BaseException)]
    assert len(errors) == 2 and all(isinstance(e, LookupError) for e in errors)
    assert [r for r in results if not isinstance(r, BaseException)] == [METRIC_INSERTED] * 20
    assert query(db, "SELECT count(*) FROM metrics") == [(20,)]
    assert query(db, "SELECT model_name FROM model") == [("m",)]


@pytest.mark.parametrize("flavour_script", ["sync", "async"])
def test_handle_never_closed_loses_nothing_and_exits(db, flavour_script):
    scripts = {
        "sync": """
            import sys
            from lightml import LightMLHandle
            h = LightMLHandle(sys.argv[1], "r")
            h.register_model("m", "hub/m")
            for i in range(20):
                h.log_model_metric("m", "fam", f"x{i}", i / 10)
            print("done")
        """,
        "async": """
            import asyncio, sys
            from lightml import AsyncLightMLHandle
            async def main():
                h = AsyncLightMLHandle(sys.argv[1], "r")
                await h.register_model("m", "hub/m")
                await asyncio.gather(*(h.log_model_metric("m", "fam", f"x{i}", i / 10) for i in range(20)))
            asyncio.run(main())
            print("done")
        """,
    }
    proc = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(scripts[flavour_script]), str(db)],
        capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "done"
    assert query(db, "SELECT count(*) FROM metrics") == [(20,)]


def test_register_model_into_another_run_creates_it_with_the_model(tmp_path: Path) -> None:
    db = tmp_path / "reg.db"
    with LightMLHandle(db) as h:  # a handle without a run
        with pytest.raises(NotFoundError, match="ghost"):
            h.register_model("m", "/x/m", parent_name="ghost", run_name="new-run")
        with sqlite3.connect(db) as conn:  # the refused registration left no run behind
            assert conn.execute("SELECT count(*) FROM events WHERE type = 'run_created'").fetchone() == (0,)
        mid = h.register_model("m", "/x/m", run_name="new-run")
        assert h.register_model("m", "/x/m", run_name="new-run") == mid  # idempotent, as in the handle's run
    with LightMLHandle(db, "new-run") as h:
        assert h.model_exists("m")
