"""Deleting a model (its checkpoints, metrics, scores and link go; its children stay) and
restoring it from the log with the same ids.

Each test runs on both engines (``db``: a SQLite file, a PostgreSQL database) and both
flavours, ``LightMLHandle`` and ``AsyncLightMLHandle`` (through the one adapter in
tests/conftest.py); after each test the registry ``db`` must verify. The ``models/`` links
exist beside a SQLite file only (``makes_links``).
"""

from __future__ import annotations

import pytest

from lightml.errors import AmbiguousNameError
from lightml.models.delete import DeleteResult


def _base_with_a_child(h, tmp_path):
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


def test_delete_model_cascades_and_unlinks_children(open_handle, db, tmp_path, symlinks_to, n_events, model_row, query,
                                                    events, makes_links):
    h = open_handle(db, "r")
    weights, base, child, c1, c2 = _base_with_a_child(h, tmp_path)
    assert bool(symlinks_to(tmp_path / "models", weights)) == makes_links
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


def test_delete_model_without_a_run(open_handle, db, events, query):
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


def test_restore_model_brings_everything_back(open_handle, db, tmp_path, symlinks_to, query, model_row, makes_links):
    h = open_handle(db, "r")
    weights, base, child, c1, c2 = _base_with_a_child(h, tmp_path)
    tables = ("model", "checkpoint", "metrics", "detailed_scores")
    before = {t: sorted(query(db, f"SELECT * FROM {t}")) for t in tables}
    h.delete_model("base")
    assert h.restore_model("base") == base
    after = {t: sorted(query(db, f"SELECT * FROM {t}")) for t in tables}
    assert after == before  # same rows, same ids, parent link of the child restored
    assert model_row(db, child)[3] == base
    assert h.find_checkpoint("base", 10) == c1
    assert h.get_detailed_scores("base", "fam", "acc") == [1, 0]
    assert bool(symlinks_to(tmp_path / "models", weights)) == makes_links
    assert [e["action"] for e in h.metric_history("base", "fam", "acc")] == ["inserted", "deleted", "restored"]
    with pytest.raises(ValueError):
        h.restore_model("base")  # not deleted any more
    with pytest.raises(ValueError):
        h.restore_model("never-existed")
    # ids are never reused: a model registered after a delete gets a new id
    h.delete_model("child")
    new = h.register_model("newcomer", "hub/n")
    assert new > child


@pytest.mark.sqlite_only("model links beside the registry file")
def test_deleting_a_model_keeps_the_link_another_live_model_uses(open_handle, db, tmp_path, symlinks_to, query):
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
