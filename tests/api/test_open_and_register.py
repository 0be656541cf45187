"""Opening and closing a handle, registering models (paths, links, parents) and checkpoints.

Each test runs on both engines (``db``: a SQLite file, a PostgreSQL database); each that
takes ``open_handle`` on both flavours, ``LightMLHandle`` and ``AsyncLightMLHandle``
(through the one adapter in tests/conftest.py); after each test the registry ``db`` must
verify. The ``models/`` links live beside a SQLite file: their tests are SQLite's own.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lightml import METRIC_INSERTED, LightMLHandle
from lightml.errors import AmbiguousNameError, HandleClosedError, NotFoundError


# -- opening and closing ---------------------------------------------------------------------


def test_open_creates_missing_file_and_the_run(open_handle, db, n_events, query, registry_created):
    assert not registry_created(db)
    h = open_handle(db, "run-1")
    assert registry_created(db)
    assert query(db, "SELECT run_name FROM run") == [("run-1",)]
    before = n_events(db)
    open_handle(db, "run-1")  # an existing run is reused, not created again
    assert n_events(db) == before
    assert query(db, "SELECT run_name FROM run") == [("run-1",)]
    assert h.run_name == "run-1"


def test_open_in_missing_folder_is_file_not_found(open_handle, db, engine_name, tmp_path):
    """LightML makes a registry's file or tables, never the place they go in: a folder that
    does not exist (SQLite), a database that does not exist (PostgreSQL)."""
    if engine_name == "sqlite":
        missing = tmp_path / "nope" / "reg.db"
        with pytest.raises(FileNotFoundError, match="folder .* does not exist"):
            open_handle(missing, "r")
        assert not missing.parent.exists()
        return
    import psycopg

    missing = f"{db}_nope"
    with pytest.raises(FileNotFoundError, match="its database does not exist"):
        open_handle(missing, "r")
    with pytest.raises(psycopg.OperationalError, match="does not exist"):  # not created
        psycopg.connect(missing).close()


def test_context_manager_closes_and_closed_handle_refuses_use(open_handle, db, query):
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


# -- register_model --------------------------------------------------------------------------


def test_register_model_is_idempotent_by_name_and_run(open_handle, db, events, model_row, query):
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


def test_local_path_made_absolute_and_hub_id_kept(open_handle, db, tmp_path, monkeypatch, model_row):
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


@pytest.mark.sqlite_only("model links beside the registry file")
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


@pytest.mark.sqlite_only("model links beside the registry file")
def test_symlink_for_name_with_slash_is_safe(open_handle, db, tmp_path, symlinks_to, model_row):
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


@pytest.mark.sqlite_only("model links beside the registry file (here a file is in their folder's way)")
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


def test_parent_name_looked_up_in_run_then_across_runs(open_handle, db, model_row):
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


def test_ambiguous_or_unknown_parent_is_an_error_and_writes_nothing(open_handle, db, events):
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


def test_parent_id(open_handle, db, events, model_row):
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


def test_register_model_into_another_run_creates_it_with_the_model(db, events) -> None:
    with LightMLHandle(db) as h:  # a handle without a run
        with pytest.raises(NotFoundError, match="ghost"):
            h.register_model("m", "/x/m", parent_name="ghost", run_name="new-run")
        assert events(db, "run_created") == []  # the refused registration left no run behind
        mid = h.register_model("m", "/x/m", run_name="new-run")
        assert h.register_model("m", "/x/m", run_name="new-run") == mid  # idempotent, as in the handle's run
    with LightMLHandle(db, "new-run") as h:
        assert h.model_exists("m")


# -- checkpoints -----------------------------------------------------------------------------


def test_register_and_find_checkpoints(open_handle, db, tmp_path, query, events):
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
