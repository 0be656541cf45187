"""Finding models: exists, search with globs, and which model a name means with and without
a run.

Each test runs on both engines (``db``: a SQLite file, a PostgreSQL database) and both
flavours, ``LightMLHandle`` and ``AsyncLightMLHandle`` (through the one adapter in
tests/conftest.py); after each test the registry ``db`` must verify.
"""

from __future__ import annotations

import pytest

from lightml.errors import AmbiguousNameError


# -- exists and search -----------------------------------------------------------------------


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


# -- name resolution -------------------------------------------------------------------------


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


def test_writes_without_a_run_use_the_benchmarks_run(open_handle, db, events):
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


def test_a_handle_in_one_run_does_not_write_to_a_model_of_another(open_handle, db, events):
    open_handle(db, "A").register_model("m", "hub/m")
    b = open_handle(db, "B")
    before = events(db)
    with pytest.raises(LookupError, match="'A'"):  # the message says where it is
        b.log_model_metric("m", "fam", "acc", 0.5)
    with pytest.raises(LookupError):
        b.register_checkpoint("m", 1, "hub/m/1")
    assert events(db) == before
