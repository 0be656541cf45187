"""Bad input: every one gets a clear exception and leaves the registry exactly as it was.

"Exactly as it was" means: every row of every table (the event log, the read tables, the
metadata) and the ``models/`` link folder are identical before and after the failed call
(``snapshot``). Each case runs on both engines (``db``: a SQLite file and a PostgreSQL
database) and both flavours (sync ``LightMLHandle`` and ``AsyncLightMLHandle``, through
``open_handle``), and the registry ``db`` must verify after it.
Also here: files that are not registries (a SQLite file's own cases), text PostgreSQL cannot
store, and odd model names that must be stored and found literally.
"""

from __future__ import annotations

import contextlib
import os
import random
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from lightml import LightMLHandle
from lightml.errors import AmbiguousNameError, InvalidInputError, NotARegistryError
from lightml.log.replay import verify

NAN, INF = float("nan"), float("inf")


def folder_state(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


# -- a registry with some of everything --------------------------------------------------------


def build_template(db, folder: Path) -> int:
    """Run r (m with a local path, checkpoints, metrics with scores, an overwrite; other;
    twin), run r2 (twin), run r3 (empty); returns m's checkpoint id."""
    weights = folder / "weights"
    weights.mkdir()
    with LightMLHandle(db, "r") as h:
        h.register_model("m", str(weights))
        h.register_model("other", "hub/other", parent_name="m")
        h.register_model("twin", "hub/twin")
        ck = h.register_checkpoint("m", 10, "hub/m/10")
        h.log_model_metric("m", "fam", "acc", 0.5, scores=[1, 0])
        h.log_model_metric("m", "fam", "acc", 0.6, scores=[1, 1], force=True)
        h.log_metrics("m", {"fam": {"f1": 0.4, "em": 0.3}})
        h.log_checkpoint_metric(ck, "fam", "acc", 0.2)
    with LightMLHandle(db, "r2") as h:
        h.register_model("twin", "hub/twin")
    LightMLHandle(db, "r3").close()
    return ck


@pytest.fixture
def ctx(from_template, db, open_handle):
    """The template registry, built once per engine, copied to ``db`` (verified after the
    test), with handles on runs r, r3 and none."""
    ck = from_template("bad_input", build_template)
    ctx = SimpleNamespace(db=db, ck=ck, open=open_handle)
    ctx.h = open_handle(db, "r")
    ctx.h3 = open_handle(db, "r3")
    ctx.reader = open_handle(db)
    return ctx


# (case id, call(ctx), expected exception, regex the message must match)
CASES = [
    # empty / whitespace / non-string names
    ("model-empty", lambda c: c.h.register_model("", "hub/x"), ValueError, "model_name"),
    ("model-spaces", lambda c: c.h.register_model("   ", "hub/x"), ValueError, "model_name"),
    ("model-tab-newline", lambda c: c.h.register_model("\t\n", "hub/x"), ValueError, "model_name"),
    ("model-control-char", lambda c: c.h.register_model("a\nb", "hub/x"), ValueError, "control"),
    ("model-nul", lambda c: c.h.register_model("a\x00b", "hub/x"), ValueError, "U\\+0000"),
    ("metric-nul", lambda c: c.h.log_model_metric("m", "fam", "a\x00", 0.5), ValueError, "U\\+0000"),
    ("run-nul", lambda c: c.h.register_model("x", "hub/x", run_name="r\x00"), ValueError, "U\\+0000"),
    ("model-None", lambda c: c.h.register_model(None, "hub/x"), ValueError, "model_name"),
    ("model-int", lambda c: c.h.register_model(42, "hub/x"), ValueError, "model_name"),
    ("parent-name-empty", lambda c: c.h.register_model("x", "hub/x", parent_name=" "), ValueError, "parent_name"),
    ("checkpoint-model-empty", lambda c: c.h.register_checkpoint("", 1, "hub/c"), ValueError, "model_name"),
    ("metric-model-empty", lambda c: c.h.log_model_metric("", "fam", "acc", 0.5), ValueError, "model_name"),
    ("family-empty", lambda c: c.h.log_model_metric("m", "", "new", 0.5), ValueError, "family"),
    ("metric-name-spaces", lambda c: c.h.log_model_metric("m", "fam", "  ", 0.5), ValueError, "metric_name"),
    ("ckpt-family-spaces", lambda c: c.h.log_checkpoint_metric(c.ck, " ", "new", 0.5), ValueError, "family"),
    ("bulk-family-empty", lambda c: c.h.log_metrics("m", {"fam": {"x": 0.1}, "": {"y": 0.5}}), ValueError, "family"),
    ("bulk-metric-spaces", lambda c: c.h.log_metrics("m", {"fam": {"x": 0.1, "  ": 0.5}}), ValueError, "metric_name"),
    ("flat-family-empty", lambda c: c.h.log_metrics_flat("m", {"x": 0.5}, ""), ValueError, "family"),
    ("flat-metric-empty", lambda c: c.h.log_metrics_flat("m", {"x": 0.1, "": 0.5}, "fam"), ValueError, "metric_name"),
    ("delete-empty", lambda c: c.h.delete_model(""), ValueError, "model_name"),
    ("restore-spaces", lambda c: c.h.restore_model("  "), ValueError, "model_name"),
    ("run-name-empty", lambda c: c.open(c.db, ""), ValueError, "run_name"),
    ("run-name-spaces", lambda c: c.open(c.db, "   "), ValueError, "run_name"),
    # values that are not finite numbers
    ("value-nan", lambda c: c.h.log_model_metric("m", "fam", "new", NAN), ValueError, "finite"),
    ("value-inf", lambda c: c.h.log_model_metric("m", "fam", "new", INF), ValueError, "finite"),
    ("value-minus-inf", lambda c: c.h.log_model_metric("m", "fam", "new", -INF), ValueError, "finite"),
    ("value-numpy-nan", lambda c: c.h.log_model_metric("m", "fam", "new", np.float64("nan")), ValueError, "finite"),
    ("value-numpy32-inf", lambda c: c.h.log_model_metric("m", "fam", "new", np.float32("inf")), ValueError, "finite"),
    ("value-nan-force", lambda c: c.h.log_model_metric("m", "fam", "acc", NAN, force=True), ValueError, "finite"),
    ("ckpt-value-nan", lambda c: c.h.log_checkpoint_metric(c.ck, "fam", "new", NAN), ValueError, "finite"),
    ("bulk-value-nan", lambda c: c.h.log_metrics("m", {"fam": {"x": 0.1, "y": NAN}}), ValueError, "finite"),
    ("bulk-value-inf-force", lambda c: c.h.log_metrics("m", {"fam": {"acc": INF}}, force=True), ValueError, "finite"),
    ("flat-value-inf", lambda c: c.h.log_metrics_flat("m", {"x": 0.1, "y": -INF}, "fam"), ValueError, "finite"),
    ("value-string", lambda c: c.h.log_model_metric("m", "fam", "new", "0.5"), ValueError, "number"),
    ("value-None", lambda c: c.h.log_model_metric("m", "fam", "new", None), ValueError, "number"),
    ("value-True", lambda c: c.h.log_model_metric("m", "fam", "new", True), ValueError, "number"),
    ("value-False", lambda c: c.h.log_model_metric("m", "fam", "new", False), ValueError, "number"),
    ("value-list", lambda c: c.h.log_model_metric("m", "fam", "new", [0.5]), ValueError, "number"),
    ("value-array", lambda c: c.h.log_model_metric("m", "fam", "new", np.array([0.1, 0.2])), ValueError, "number"),
    ("value-complex", lambda c: c.h.log_model_metric("m", "fam", "new", 1j), ValueError, "number"),
    ("ckpt-value-string", lambda c: c.h.log_checkpoint_metric(c.ck, "fam", "new", "high"), ValueError, "number"),
    ("bulk-value-None", lambda c: c.h.log_metrics("m", {"fam": {"x": 0.1, "y": None}}), ValueError, "number"),
    ("flat-value-bool", lambda c: c.h.log_metrics_flat("m", {"x": True}, "fam"), ValueError, "number"),
    ("flat-value-string", lambda c: c.h.log_metrics_flat("m", {"x": "0.3"}, "fam"), ValueError, "number"),
    # scores
    ("scores-empty", lambda c: c.h.log_model_metric("m", "fam", "new", 0.5, scores=[]), ValueError, "empty"),
    ("scores-empty-tuple", lambda c: c.h.log_model_metric("m", "fam", "new", 0.5, scores=()), ValueError, "empty"),
    ("scores-empty-array", lambda c: c.h.log_model_metric("m", "fam", "new", 0.5, scores=np.array([])), ValueError, "empty"),
    ("scores-string", lambda c: c.h.log_model_metric("m", "fam", "new", 0.5, scores="1,0,1"), ValueError, "list"),
    ("scores-int", lambda c: c.h.log_model_metric("m", "fam", "new", 0.5, scores=5), ValueError, "list"),
    ("scores-dict", lambda c: c.h.log_model_metric("m", "fam", "new", 0.5, scores={"a": 1}), ValueError, "list"),
    ("scores-set", lambda c: c.h.log_model_metric("m", "fam", "new", 0.5, scores={1, 0}), ValueError, "list"),
    ("scores-nan", lambda c: c.h.log_model_metric("m", "fam", "new", 0.5, scores=[1, NAN, 0]), ValueError, "finite"),
    ("scores-inf", lambda c: c.h.log_model_metric("m", "fam", "new", 0.5, scores=[INF]), ValueError, "finite"),
    ("scores-array-nan", lambda c: c.h.log_model_metric("m", "fam", "new", 0.5, scores=np.array([1.0, np.nan])),
     ValueError, "finite"),
    ("scores-None-item", lambda c: c.h.log_model_metric("m", "fam", "new", 0.5, scores=[1, None]), ValueError, "number"),
    ("scores-string-item", lambda c: c.h.log_model_metric("m", "fam", "new", 0.5, scores=[1, "0"]), ValueError, "number"),
    ("scores-nested", lambda c: c.h.log_model_metric("m", "fam", "new", 0.5, scores=[[1, 0]]), ValueError, "number"),
    ("scores-nan-force", lambda c: c.h.log_model_metric("m", "fam", "acc", 0.7, scores=[NAN], force=True),
     ValueError, "finite"),
    ("ckpt-scores-nan", lambda c: c.h.log_checkpoint_metric(c.ck, "fam", "new", 0.5, scores=[NAN]), ValueError, "finite"),
    # checkpoint ids
    ("ckpt-id-unknown", lambda c: c.h.log_checkpoint_metric(999_999, "fam", "new", 0.5), LookupError, "999999"),
    ("ckpt-id-zero", lambda c: c.h.log_checkpoint_metric(0, "fam", "new", 0.5), ValueError, "checkpoint_id"),
    ("ckpt-id-negative", lambda c: c.h.log_checkpoint_metric(-3, "fam", "new", 0.5), ValueError, "checkpoint_id"),
    ("ckpt-id-string", lambda c: c.h.log_checkpoint_metric("1", "fam", "new", 0.5), ValueError, "checkpoint_id"),
    ("ckpt-id-bool", lambda c: c.h.log_checkpoint_metric(True, "fam", "new", 0.5), ValueError, "checkpoint_id"),
    ("ckpt-id-float", lambda c: c.h.log_checkpoint_metric(1.5, "fam", "new", 0.5), ValueError, "checkpoint_id"),
    # steps
    ("step-negative", lambda c: c.h.register_checkpoint("m", -1, "hub/m/-1"), ValueError, "step"),
    ("step-fraction", lambda c: c.h.register_checkpoint("m", 1.5, "hub/m/1.5"), ValueError, "step"),
    ("step-string", lambda c: c.h.register_checkpoint("m", "10", "hub/m/s"), ValueError, "step"),
    ("step-None", lambda c: c.h.register_checkpoint("m", None, "hub/m/s"), ValueError, "step"),
    ("step-bool", lambda c: c.h.register_checkpoint("m", True, "hub/m/s"), ValueError, "step"),
    ("find-step-negative", lambda c: c.h.find_checkpoint("m", -5), ValueError, "step"),
    ("history-step-fraction", lambda c: c.h.metric_history("m", "fam", "acc", step=0.5), ValueError, "step"),
    # parents and other unknown things
    ("parent-unknown", lambda c: c.h.register_model("child", "hub/c", parent_name="nope"), LookupError, "nope"),
    ("parent-ambiguous", lambda c: c.h3.register_model("child", "hub/c", parent_name="twin"), AmbiguousNameError, "'r2/twin'"),
    ("parent-id-unknown", lambda c: c.h.register_model("child", "hub/c", parent_id=9999), LookupError, "9999"),
    ("parent-id-zero", lambda c: c.h.register_model("child", "hub/c", parent_id=0), ValueError, "parent_id"),
    ("parent-id-string", lambda c: c.h.register_model("child", "hub/c", parent_id="1"), ValueError, "parent_id"),
    ("parent-name-id-disagree", lambda c: c.h.register_model("child", "hub/c", parent_name="m", parent_id=2),
     ValueError, "parent"),
    ("metric-model-unknown", lambda c: c.h.log_model_metric("ghost", "fam", "acc", 0.5), LookupError, "ghost"),
    ("bulk-model-unknown", lambda c: c.h.log_metrics("ghost", {"fam": {"acc": 0.5}}), LookupError, "ghost"),
    ("flat-model-unknown", lambda c: c.h.log_metrics_flat("ghost", {"acc": 0.5}, "fam"), LookupError, "ghost"),
    ("checkpoint-model-unknown", lambda c: c.h.register_checkpoint("ghost", 1, "hub/g/1"), LookupError, "ghost"),
    ("metric-model-other-run", lambda c: c.h3.log_model_metric("m", "fam", "new", 0.5), LookupError, "'r'"),
    ("delete-unknown", lambda c: c.h.delete_model("ghost"), LookupError, "ghost"),
    ("delete-ambiguous", lambda c: c.reader.delete_model("twin"), AmbiguousNameError, "'r2'"),
    ("restore-live-model", lambda c: c.h.restore_model("m"), ValueError, "m"),
    ("restore-unknown", lambda c: c.h.restore_model("ghost"), LookupError, "ghost"),
    # paths
    ("path-empty", lambda c: c.h.register_model("x", ""), ValueError, "path"),
    ("path-spaces", lambda c: c.h.register_model("x", "   "), ValueError, "path"),
    ("path-None", lambda c: c.h.register_model("x", None), ValueError, "path"),
    ("path-int", lambda c: c.h.register_model("x", 5), ValueError, "path"),
    ("path-nul", lambda c: c.h.register_model("x", "a\x00b"), ValueError, "path"),
    ("checkpoint-path-empty", lambda c: c.h.register_checkpoint("m", 1, ""), ValueError, "path"),
    # containers of the wrong shape
    ("bulk-not-a-dict", lambda c: c.h.log_metrics("m", [("fam", {"x": 0.5})]), ValueError, "dict"),
    ("bulk-family-not-a-dict", lambda c: c.h.log_metrics("m", {"fam": 0.5}), ValueError, "dict"),
    ("flat-not-a-dict", lambda c: c.h.log_metrics_flat("m", [0.5], "fam"), ValueError, "dict"),
    # a handle without a run writes to LightML 1.4's default run, where "m" is not (it says where it is)
    ("log-without-run", lambda c: c.reader.log_model_metric("m", "fam", "new", 0.5), LookupError,
     "not found in run 'benchmarks' \\(it exists in run 'r'\\)"),
    # invisible characters that make two names look alike, and escapes in notes
    ("name-zero-width-space", lambda c: c.h.register_model("m\u200b", "hub/x"), ValueError, "U\\+200B"),
    ("run-byte-order-mark", lambda c: c.h.register_model("x", "hub/x", run_name="\ufeffr"), ValueError, "U\\+FEFF"),
    ("notes-terminal-escape", lambda c: c.h.set_notes("m", "ok\x1b[31mred"), ValueError, "U\\+001B"),
    ("notes-8-bit-escape", lambda c: c.h.set_notes("m", "ok\x9b31m"), ValueError, "U\\+009B"),
    ("notes-bidi-override", lambda c: c.h.set_notes("m", "abc\u202edef"), ValueError, "U\\+202E"),
]


@pytest.mark.parametrize("call, expected, match", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_input_raises_and_changes_nothing(ctx, snapshot, call, expected, match):
    before = snapshot(ctx.db)
    with pytest.raises(expected, match=match) as info:
        call(ctx)
    assert isinstance(info.value, (ValueError, LookupError))
    assert snapshot(ctx.db) == before
    # the handle is still usable after the error
    assert ctx.h.model_exists("m")
    assert ctx.h.log_model_metric("m", "fam", "after_error", 0.1) is not None
    assert ctx.h.metric_exists("m", "fam", "after_error")


def test_failed_bulk_call_then_good_call_in_same_handle(ctx):
    """A refused bulk call leaves no half-written metrics behind for the next call to trip on."""
    with pytest.raises(ValueError):
        ctx.h.log_metrics("m", {"fam": {"new1": 0.1, "new2": NAN}})
    assert not ctx.h.metric_exists("m", "fam", "new1")
    assert ctx.h.log_metrics("m", {"fam": {"new1": 0.1, "new2": 0.2}}) == {"inserted": 2, "updated": 0, "skipped": 0}


def test_schema_violation_changes_nothing(db, open_handle, init_registry_at, snapshot):
    init_registry_at(db, metrics_schema=[{"family": "benchmarks_ita", "metrics": {"Hella": "float"}}])
    h = open_handle(db, "r")
    h.register_model("m", "hub/m")
    before = snapshot(db)
    with pytest.raises(ValueError, match="not found in registry schema"):
        h.log_metrics("m", {"benchmarks_ita": {"Hella": 0.5, "Unknown": 0.1}})
    with pytest.raises(ValueError, match="not found in registry schema"):
        h.log_model_metric("m", "benchmarks_ita", "Unknown", 0.5, scores=[1, 0])
    assert snapshot(db) == before


# -- text PostgreSQL cannot store -----------------------------------------------------------------

# Writes refuse a name with NUL (U+0000) on every engine (the "-nul" cases above); these reads
# take one as it is. PostgreSQL's text cannot hold NUL, so there the read is refused, naming
# it; SQLite answers that there is no such metric.
NUL_READS = [
    ("history-family", lambda h: h.metric_history("m", "fam\x00", "acc"), []),
    ("history-metric", lambda h: h.metric_history("m", "fam", "acc\x00", step=10), []),
    ("scores-family", lambda h: h.get_detailed_scores("m", "fam\x00", "acc"), None),
    ("search-family", lambda h: h.search("m", "fam\x00"), []),
    ("search-metric", lambda h: h.search("*", None, "acc\x00"), []),
]


@pytest.mark.parametrize("call, nothing", [c[1:] for c in NUL_READS], ids=[c[0] for c in NUL_READS])
def test_a_nul_in_a_read_is_refused_by_postgresql_and_found_nowhere_by_sqlite(ctx, snapshot, engine_name, call,
                                                                              nothing):
    before = snapshot(ctx.db)
    if engine_name == "postgresql":
        with pytest.raises(InvalidInputError, match=r"U\+0000"):
            call(ctx.h)
    else:
        assert call(ctx.h) == nothing
    assert snapshot(ctx.db) == before
    # the handle is still usable, for reads and writes
    assert [e["value"] for e in ctx.h.metric_history("m", "fam", "acc")] == [0.5, 0.6]
    assert ctx.h.log_model_metric("m", "fam", "after_error", 0.1) is not None


# -- files that are not registries -----------------------------------------------------------------


@pytest.mark.sqlite_only("a file of random bytes given as the registry")
def test_random_bytes_is_not_a_registry(tmp_path, open_handle):
    db = tmp_path / "noise.db"
    db.write_bytes(random.Random(1234).randbytes(8192))
    before = folder_state(tmp_path)
    for run in ("r", None):
        with pytest.raises(NotARegistryError, match="not a SQLite database"):
            open_handle(db, run)
    assert folder_state(tmp_path) == before  # not touched, no -wal/-shm left behind
    assert sorted(os.listdir(tmp_path)) == ["noise.db"]


@pytest.mark.sqlite_only("a text file given as the registry")
def test_text_file_is_not_a_registry(tmp_path, open_handle):
    db = tmp_path / "notes.db"
    db.write_text("these are my notes, not a database\n" * 50)
    before = folder_state(tmp_path)
    with pytest.raises(NotARegistryError):
        open_handle(db, "r")
    assert folder_state(tmp_path) == before


def test_another_applications_database_is_not_a_registry(db, tmp_path, open_handle, write_directly, snapshot):
    """Another application's SQLite file, or its PostgreSQL database: refused, left as it was."""
    write_directly(db, "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT)",
                   "INSERT INTO users (id, name) VALUES (1, 'ada')")
    before, files = snapshot(db), folder_state(tmp_path)
    for run in ("r", None):
        with pytest.raises(NotARegistryError, match="not a LightML registry"):
            open_handle(db, run)
    assert snapshot(db) == before
    assert folder_state(tmp_path) == files  # (a file: no -wal/-shm left beside it)


LIGHTML_1X_DDL = [
    "CREATE TABLE run (id INTEGER PRIMARY KEY AUTOINCREMENT, run_name TEXT UNIQUE NOT NULL, description TEXT, "
    "metadata TEXT, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)",
    "CREATE TABLE model (id INTEGER PRIMARY KEY AUTOINCREMENT, model_name TEXT NOT NULL, path TEXT, "
    "parent_id INTEGER REFERENCES model(id), run_id INTEGER REFERENCES run(id))",
    "CREATE TABLE checkpoint (id INTEGER PRIMARY KEY AUTOINCREMENT, model_id INTEGER NOT NULL REFERENCES model(id), "
    "step INTEGER, path TEXT, created_at TIMESTAMP DEFAULT CURRENT_TIMESTAMP)",
    "CREATE TABLE metrics (id INTEGER PRIMARY KEY AUTOINCREMENT, model_id INTEGER REFERENCES model(id), "
    "checkpoint_id INTEGER REFERENCES checkpoint(id), family TEXT NOT NULL, metric_name TEXT NOT NULL, value REAL)",
    "CREATE TABLE registry_schema (family TEXT, metric_name TEXT)",
]


@pytest.mark.sqlite_only("a LightML 1.x file, which only SQLite had")
def test_lightml_1x_database_asks_for_migrate(tmp_path, open_handle):
    db = tmp_path / "old.db"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        for statement in LIGHTML_1X_DDL:
            conn.execute(statement)
        conn.execute("INSERT INTO run (run_name) VALUES ('r')")
        conn.execute("INSERT INTO model (model_name, path, run_id) VALUES ('m', 'hub/m', 1)")
        conn.execute("INSERT INTO metrics (model_id, family, metric_name, value) VALUES (1, 'fam', 'acc', 0.5)")
        conn.commit()
    before = folder_state(tmp_path)
    for run in ("r", "new-run", None):
        with pytest.raises(NotARegistryError, match="migrate") as info:
            open_handle(db, run)
        assert isinstance(info.value, ValueError)
    assert folder_state(tmp_path) == before
    assert sorted(os.listdir(tmp_path)) == ["old.db"]


@pytest.mark.sqlite_only("a folder given as the registry file")
def test_folder_instead_of_file(tmp_path, open_handle):
    with pytest.raises(ValueError, match="folder"):
        open_handle(tmp_path, "r")
    assert os.listdir(tmp_path) == []


# -- odd names are stored and found literally ---------------------------------------------------------


ODD_NAMES = {
    "quotes": ("it's \"quoted\"", "it's xquotedx"),
    "sql-injection": ("x'); DROP TABLE model; --", "x"),
    "percent": ("100%_sure", "100XYsure"),
    "underscore": ("under_score", "underXscore"),
    "star": ("star*name", "starXXname"),
    "question": ("q?mark", "qXmark"),
    "brackets": ("m[1]", "m1"),
    "backslash": ("back\\slash", "back/slash"),
    "unicode": ("модель-ü-漢字-🚀", "модель-u-漢字-🚀"),
    "slash": ("org/model", "org__model"),
    "dots": ("..", "."),
    "10kB": ("n" * 5000 + "%_*?" + "é" * 3000 + "/" + "z" * 2300, "n" * 5000),
}


@pytest.mark.parametrize("name, decoy", list(ODD_NAMES.values()), ids=list(ODD_NAMES))
def test_odd_model_names_are_stored_and_found_literally(db, tmp_path, open_handle, query, makes_links, name, decoy):
    weights = tmp_path / "weights"
    weights.mkdir()
    h = open_handle(db, "r")
    mid = h.register_model(name, str(weights))
    h.register_model(decoy, "hub/decoy")
    assert h.register_model(name, str(weights)) == mid
    h.log_model_metric(name, "fam", "acc", 0.5, scores=[1, 0])
    h.log_model_metric(name, "fam", "acc", 0.75, scores=[1, 1], force=True)
    h.log_model_metric(decoy, "fam", "acc", 0.1)
    ck = h.register_checkpoint(name, 100, "hub/ck")

    assert query(db, "SELECT model_name FROM model WHERE id = ?", (mid,)) == [(name,)]
    assert h.model_exists(name)
    assert h.metric_exists(name, "fam", "acc")
    assert h.run_metric_exists(name, "fam", "acc")
    assert h.get_detailed_scores(name, "fam", "acc") == [1, 1]
    assert h.find_checkpoint(name, 100) == ck
    history = h.metric_history(name, "fam", "acc")
    assert [(e["action"], e["value"]) for e in history] == [("inserted", 0.5), ("overwritten", 0.75)]
    found = h.search(name, "fam")
    assert {"model": name, "family": "fam", "metric": "acc", "value": 0.75, "run": "r"} in found
    if "*" not in name and "?" not in name:  # '*' and '?' are the only wildcards
        assert [r["model"] for r in found] == [name]
        assert h.search(name) == [{"model": name}]
    # a handle without a run finds it by its unique name too
    reader = open_handle(db)
    assert reader.model_exists(name)
    assert reader.get_detailed_scores(name, "fam", "acc") == [1, 1]
    # beside a file, its link is a single safe file name inside models/, pointing at the weights
    if makes_links:
        links = [p for p in (tmp_path / "models").iterdir() if p.is_symlink() and os.readlink(p) == str(weights)]
        assert len(links) == 1
        assert len(links[0].name.encode()) <= 255
    else:
        assert not (tmp_path / "models").exists()
    # delete and restore by the same name
    result = h.delete_model(name)
    assert (result.model_name, result.metrics_deleted, result.checkpoints_deleted) == (name, 1, 1)
    assert not h.model_exists(name) and h.model_exists(decoy)
    assert h.restore_model(name) == mid
    assert h.get_detailed_scores(name, "fam", "acc") == [1, 1]
    assert verify(db).ok
