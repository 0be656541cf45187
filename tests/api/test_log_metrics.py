"""Logging metrics: the insert / skip / overwrite table, per-sample scores, bulk calls in one
transaction, the metric history, and the registry schema.

Each test runs on both engines (``db``: a SQLite file, a PostgreSQL database) and both
flavours, ``LightMLHandle`` and ``AsyncLightMLHandle`` (through the one adapter in
tests/conftest.py); after each test the registry ``db`` must verify.
"""

from __future__ import annotations

import getpass
import json
import socket
from datetime import datetime, timedelta

import pytest

from lightml import METRIC_INSERTED, METRIC_SKIPPED, METRIC_UPDATED
from lightml.log.replay import verify


# -- metrics and the dedup table -------------------------------------------------------------


def test_model_metric_dedup_table(open_handle, db, n_events, events, query):
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


def test_checkpoint_metric_dedup_table(open_handle, db, n_events, query):
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


def test_scores_stored_as_json_with_n_samples(open_handle, db, query):
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


def test_log_metrics_counts_and_one_transaction(open_handle, db, last_seq, events, query):
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


def test_bulk_relog_with_many_metrics_per_family_finds_what_exists(open_handle, db, query):
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


def test_log_metrics_is_all_or_nothing(open_handle, db, events, query):
    h = open_handle(db, "r")
    h.register_model("m", "hub/m")
    before = events(db)
    with pytest.raises(ValueError):
        h.log_metrics("m", {"fam1": {"a": 0.1, "b": 0.2}, "fam2": {"c": float("nan")}})
    with pytest.raises(ValueError):
        h.log_metrics_flat("m", {"a": 0.1, "b": "high"}, "fam")
    assert events(db) == before
    assert query(db, "SELECT count(*) FROM metrics") == [(0,)]


def test_log_metrics_flat_counts(open_handle, db, last_seq, events, query):
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


# -- metric_history --------------------------------------------------------------------------


def test_metric_history_entries(open_handle, db, events):
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


# -- registry schema -------------------------------------------------------------------------


def test_registry_schema_restricts_what_can_be_logged(open_handle, db, init_registry_at, engine_name, events, query):
    path = init_registry_at(db, metrics_schema=[{"family": "benchmarks_ita", "metrics": {"Hella": "float"}}])
    assert path == (db if engine_name == "postgresql" else db.resolve())  # (a URL comes back without its password)
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
