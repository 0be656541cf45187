"""Model edits as events: notes, rename, hide, reparent, prune; history; undo; both handles."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from pathlib import Path

import pytest

from lightml import verify
from lightml.async_handle import AsyncLightMLHandle
from lightml.errors import AmbiguousNameError, ConflictError, InvalidInputError, NotFoundError
from lightml.handle import LightMLHandle


@pytest.fixture
def db(tmp_path: Path) -> Path:
    path = tmp_path / "reg.db"
    with LightMLHandle(path, "r1") as h:
        h.register_model("base", "org/base")
        h.register_model("sft", "org/sft", parent_name="base")
        h.register_model("dpo", "org/dpo", parent_name="sft")
        h.log_model_metric("base", "f", "acc", 0.5)
        h.log_model_metric("sft", "f", "acc", 0.6)
        h.log_model_metric("dpo", "f", "acc", 0.7)
    return path


def model_row(db: Path, name: str) -> tuple:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT notes, hidden, parent_id, id FROM model WHERE model_name = ?", (name,)).fetchone()


def event_types(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [t for (t,) in conn.execute("SELECT type FROM events ORDER BY seq")]


def test_notes_hide_rename_reparent_each_write_one_event(db: Path) -> None:
    with LightMLHandle(db, "r1") as h:
        before = len(event_types(db))
        assert h.set_notes("sft", "lr 2e-5, 3 epochs") is True
        assert h.set_notes("sft", "lr 2e-5, 3 epochs") is False  # no change, no event
        assert h.set_hidden("base") is True
        assert h.set_hidden("base", True) is False
        assert h.rename_model("dpo", "dpo-v2") is True
        assert h.set_parent("dpo-v2", "base") is True
        assert h.set_parent("dpo-v2", "base") is False
        assert event_types(db)[before:] == ["model_notes_set", "model_hidden_set", "model_renamed", "model_reparented"]
        assert model_row(db, "sft")[0] == "lr 2e-5, 3 epochs"
        assert model_row(db, "base")[1] == 1
        assert model_row(db, "dpo-v2")[2] == model_row(db, "base")[3]
        assert not h.model_exists("dpo") and h.metric_exists("dpo-v2", "f", "acc")
        # undo each with the opposite edit
        assert h.set_notes("sft", None) and model_row(db, "sft")[0] is None
        assert h.set_hidden("base", False) and h.rename_model("dpo-v2", "dpo") and h.set_parent("dpo", "sft")
        assert h.set_parent("dpo", None) and model_row(db, "dpo")[2] is None
        history = h.model_history("dpo")
    assert [e["type"] for e in history] == ["model_registered", "metric_inserted", "model_renamed",
                                           "model_reparented", "model_renamed", "model_reparented", "model_reparented"]
    assert history[2]["what"] == "dpo -> dpo-v2" and history[-1]["what"].endswith("-> none")
    assert verify(db).ok


def test_edit_errors_change_nothing(db: Path) -> None:
    before = event_types(db)
    with LightMLHandle(db, "r1") as h:
        with pytest.raises(ConflictError, match="cycle"):
            h.set_parent("base", "dpo")  # dpo descends from base
        with pytest.raises(InvalidInputError, match="own parent"):
            h.set_parent("sft", "sft")
        with pytest.raises(ConflictError, match="already exists"):
            h.rename_model("dpo", "sft")
        with pytest.raises(NotFoundError):
            h.set_notes("ghost", "x")
        with pytest.raises(NotFoundError, match="parent model 'ghost'"):
            h.set_parent("sft", "ghost")
        with pytest.raises(InvalidInputError):
            h.set_hidden("sft", "yes")
        with pytest.raises(InvalidInputError):
            h.rename_model("sft", "  ")
        with pytest.raises(InvalidInputError):
            h.set_notes("sft", 42)
    assert event_types(db) == before


def test_rename_moves_the_models_symlink(tmp_path: Path) -> None:
    weights = tmp_path / "weights"
    weights.mkdir()
    db = tmp_path / "reg.db"
    with LightMLHandle(db, "r") as h:
        h.register_model("local", weights)
        assert (tmp_path / "models" / "local").is_symlink()
        h.rename_model("local", "renamed")
    assert not (tmp_path / "models" / "local").exists()
    assert os.readlink(tmp_path / "models" / "renamed") == str(weights)


def test_names_in_several_runs_need_the_run(db: Path) -> None:
    with LightMLHandle(db, "r2") as h:
        h.register_model("base", "org/base-2")
    with LightMLHandle(db) as h:
        with pytest.raises(AmbiguousNameError, match="several runs"):
            h.set_notes("base", "x")
    with LightMLHandle(db, "r2") as h:
        assert h.set_notes("base", "the r2 one")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT notes FROM model m JOIN run r ON r.id = m.run_id WHERE r.run_name = 'r2'"
                            ).fetchone() == ("the r2 one",)


def test_restore_does_not_relink_a_child_reparented_since_the_delete(db: Path) -> None:
    with LightMLHandle(db, "r1") as h:
        h.delete_model("sft")  # dpo is unlinked
        h.set_parent("dpo", None)  # ... and the user says so explicitly
        h.restore_model("sft")
        assert model_row(db, "dpo")[2] is None
        h.set_parent("dpo", "sft")
        h.delete_model("sft")
        h.restore_model("sft")  # no edit in between this time: the delete's unlink is undone
    assert model_row(db, "dpo")[2] == model_row(db, "sft")[3]
    assert verify(db).ok


def test_prune_removes_empty_models_and_runs_reversibly(db: Path) -> None:
    with LightMLHandle(db, "scratch") as h:
        h.register_model("empty", "org/empty")
    with LightMLHandle(db, "r1") as h:
        h.register_model("leaf", "org/leaf", parent_name="dpo")
        h.register_model("anchor", "org/anchor")  # no metrics, but a parent of someone: kept
        h.register_model("child", "org/child", parent_name="anchor")
        h.log_model_metric("child", "f", "acc", 0.1)
    with LightMLHandle(db) as h:
        preview = h.prune(dry_run=True, grace_seconds=0)
        assert preview.models == [("leaf", "r1"), ("empty", "scratch")] and preview.runs == ["scratch"]
        before = len(event_types(db))
        result = h.prune(grace_seconds=0)
        assert result.to_dict() == {"models": [{"model": "leaf", "run": "r1"}, {"model": "empty", "run": "scratch"}],
                                    "runs": ["scratch"], "dry_run": False, "kept_too_new": [],
                                    "grace_seconds": 0.0}
        assert event_types(db)[before:] == ["model_deleted", "model_deleted", "run_deleted"]
        assert not h.model_exists("empty") and h.model_exists("anchor")
        assert h.prune(grace_seconds=0).models == []
        assert verify(db).ok
        h.restore_model("empty")  # its run comes back with it, same id
        assert event_types(db)[-2:] == ["run_restored", "model_restored"]
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM run WHERE run_name = 'scratch'").fetchone() == (1,)
    assert verify(db).ok


def test_prune_preview_writes_nothing(db: Path) -> None:
    with LightMLHandle(db, "r1") as h:
        h.register_model("leaf", "org/leaf")
        before = event_types(db)
        assert h.prune(dry_run=True, grace_seconds=0).models == [("leaf", "r1")]
    assert event_types(db) == before


def test_async_handle_edits(db: Path) -> None:
    async def main():
        async with AsyncLightMLHandle(db, "r1") as h:
            results = await asyncio.gather(h.set_notes("sft", "n"), h.set_hidden("dpo"), h.set_parent("dpo", None))
            renamed = await h.rename_model("base", "base-model")
            preview = await h.prune(dry_run=True)
            history = await h.model_history("base-model")
        return results, renamed, preview, history

    results, renamed, preview, history = asyncio.run(main())
    assert results == [True, True, True] and renamed is True and preview.models == []
    assert history[-1]["type"] == "model_renamed"
    assert model_row(db, "dpo")[1:3] == (1, None)
    assert verify(db).ok


def test_model_history_of_a_deleted_model(db: Path) -> None:
    with LightMLHandle(db, "r1") as h:
        h.set_notes("dpo", "bad run")
        h.delete_model("dpo")
        history = h.model_history("dpo")
    assert [e["type"] for e in history][-2:] == ["model_notes_set", "model_deleted"]
    assert all(e["actor"].endswith("(api)") for e in history)


def test_saying_no_parent_twice_writes_one_event(db: Path) -> None:
    with LightMLHandle(db, "r1") as h:
        h.delete_model("sft")  # dpo is unlinked
        before = len(event_types(db))
        assert h.set_parent("dpo", None)  # recorded: a restore of sft must not re-link it
        assert not h.set_parent("dpo", None)  # already recorded: nothing to write
        assert len(event_types(db)) == before + 1


def test_prune_keeps_a_run_that_never_had_a_model(db: Path) -> None:
    with LightMLHandle(db, "about-to-be-used"):
        pass  # a script opened its run and has not registered anything yet
    with LightMLHandle(db) as h:
        assert h.prune(dry_run=True, grace_seconds=0).runs == []
        assert h.prune(grace_seconds=0).runs == []
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM run WHERE run_name = 'about-to-be-used'").fetchone() == (1,)


def test_restore_a_name_pruned_from_two_runs(db: Path) -> None:
    for run in ("s1", "s2"):
        with LightMLHandle(db, run) as h:
            h.register_model("empty", f"org/empty-{run}")
    with LightMLHandle(db) as h:
        assert sorted(h.prune(grace_seconds=0).runs) == ["s1", "s2"]
        with pytest.raises(ConflictError, match="several runs \\('s1', 's2'\\); say which run"):
            h.restore_model("empty")
        h.restore_model("empty", run_name="s2")  # the pruned run is named: it comes back with it
        with pytest.raises(NotFoundError, match="no run 'nowhere'"):
            h.restore_model("empty", run_name="nowhere")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT r.run_name, m.path FROM model m JOIN run r ON r.id = m.run_id "
                            "WHERE m.model_name = 'empty'").fetchall() == [("s2", "org/empty-s2")]
    assert verify(db).ok


def test_cli_restore_into_a_pruned_run(db: Path) -> None:
    import subprocess
    import sys

    with LightMLHandle(db, "scratch") as h:
        h.register_model("empty", "org/empty")
    with LightMLHandle(db) as h:
        h.prune(grace_seconds=0)
    out = subprocess.run([sys.executable, "-m", "lightml", "restore", "--db", str(db), "--model", "empty",
                          "--run", "scratch"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM run WHERE run_name = 'scratch'").fetchone() == (1,)
    assert verify(db).ok


def test_restore_by_an_old_name_ignores_a_superseded_delete(db: Path) -> None:
    with LightMLHandle(db, "r1") as h:
        h.delete_model("dpo")
        h.restore_model("dpo")
        h.log_model_metric("dpo", "f", "new", 0.9)
        h.rename_model("dpo", "dpo-v2")
        h.delete_model("dpo-v2")
        # the first delete's snapshot is stale (no "new" metric, old name): it is not restorable
        with pytest.raises(NotFoundError, match="no deleted model 'dpo'"):
            h.restore_model("dpo")
        h.restore_model("dpo-v2")
        assert h.metric_exists("dpo-v2", "f", "new")
    assert verify(db).ok


def test_a_pruned_model_goes_back_into_its_run_made_again(db: Path) -> None:
    with LightMLHandle(db, "sweep") as h:
        h.register_model("empty", "org/empty")
        h.register_model("other", "org/other")
    with LightMLHandle(db) as h:
        assert h.prune(grace_seconds=0).runs == ["sweep"]
    with LightMLHandle(db, "sweep") as h:  # a script opens the run again: a new run of that name
        h.register_model("fresh", "org/fresh")
        h.restore_model("empty")  # into the live "sweep"
    with LightMLHandle(db) as h:
        h.restore_model("other", run_name="sweep")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM run WHERE run_name = 'sweep'").fetchone() == (1,)
        assert conn.execute("SELECT m.model_name FROM model m JOIN run r ON r.id = m.run_id "
                            "WHERE r.run_name = 'sweep' ORDER BY 1").fetchall() == [("empty",), ("fresh",), ("other",)]
    assert verify(db).ok


def test_no_parent_is_remembered_for_a_model_deleted_with_its_parent_gone(db: Path) -> None:
    with LightMLHandle(db, "r1") as h:
        h.delete_model("dpo")
        h.delete_model("sft")
        h.restore_model("dpo")  # sft is still deleted: dpo comes back without a parent
        assert model_row(db, "dpo")[2] is None
        assert h.set_parent("dpo", None)  # recorded: restoring sft must not re-link it
        assert not h.set_parent("dpo", None)
        h.restore_model("sft")
    assert model_row(db, "dpo")[2] is None
    assert verify(db).ok


def test_prune_keeps_a_model_a_running_eval_just_registered(db: Path) -> None:
    with LightMLHandle(db, "eval-run") as h:
        h.register_model("being-evaluated", "org/fresh")  # its metrics come when the benchmarks finish
    with LightMLHandle(db) as h:
        before = event_types(db)
        preview = h.prune(dry_run=True)
        assert preview.models == [] and preview.too_new == [("being-evaluated", "eval-run")]
        result = h.prune()
        assert result.models == [] and result.runs == [] and result.too_new == [("being-evaluated", "eval-run")]
        assert result.to_dict()["kept_too_new"] == [{"model": "being-evaluated", "run": "eval-run"}]
        assert event_types(db) == before  # nothing deleted, no event
    with LightMLHandle(db, "eval-run") as h:
        h.log_model_metric("being-evaluated", "f", "acc", 0.4)  # the eval's log still finds its model


def test_prune_counts_a_models_age_from_its_latest_restore(db: Path) -> None:
    import time

    with LightMLHandle(db, "r1") as h:
        h.register_model("empty", "org/empty")
    time.sleep(0.5)
    with LightMLHandle(db) as h:
        assert h.prune(grace_seconds=0.3).models == [("empty", "r1")]  # registered 0.5 s ago: old enough
        h.restore_model("empty")  # back just now: as new as a fresh registration
        result = h.prune(grace_seconds=0.3)
        assert result.models == [] and result.too_new == [("empty", "r1")]


@pytest.mark.parametrize("grace", [-1, float("inf"), float("nan"), 10**400, "3600", True, None],
                         ids=["negative", "inf", "nan", "10**400", "text", "bool", "None"])
def test_a_bad_grace_period_is_refused_before_anything_is_deleted(db: Path, grace) -> None:
    with LightMLHandle(db, "scratch") as h:
        h.register_model("empty", "org/empty")
    before = event_types(db)
    with LightMLHandle(db) as h:
        for dry_run in (True, False):
            with pytest.raises(InvalidInputError, match="grace period"):
                h.prune(dry_run=dry_run, grace_seconds=grace)
    assert event_types(db) == before
