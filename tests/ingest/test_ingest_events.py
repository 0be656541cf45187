"""scan, merge and migrate write exactly the events they wrote before they were built from the
shared commands and payload constructors: each scenario's log, normalized (temporary
paths, times of now, the host), equals ``ingest_events_golden.json``, written by LightML
before that change. Old logs must keep verifying and replay must stay byte-identical, so a
payload that changes key, order or value here is a format change: it needs a new payload
version, and only then a new golden file (``python tests/ingest/test_ingest_events.py``).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import sqlite3
import sys
from pathlib import Path
from typing import Callable

import pytest

from lightml.handle import LightMLHandle
from lightml.ingest.merge import merge
from lightml.ingest.migrate import migrate
from lightml.ingest.scan import scan_and_import

GOLDEN = Path(__file__).with_name("ingest_events_golden.json")
DATA = Path(__file__).resolve().parents[1] / "data"
FIXED_MTIME_NS = 1_700_000_000_123_456_789
# A time the writer chose (fixtures use 2001): the event's own, different on every run.
_NOW = re.compile(r"20[2-9]\d-\d\d-\d\d[T ]\d\d:\d\d:\d\d(\.\d+)?Z?")


def build_1x(path: Path, *, notes_hidden: bool = True, scores: bool = True) -> Path:
    """A LightML 1.x file: a parent with a higher id than its child, a checkpoint without a
    path, a metric logged twice (1.x had no unique index), a NULL value, 1.x score text."""
    model_columns = "notes TEXT, hidden INTEGER DEFAULT 0," if notes_hidden else ""
    conn = sqlite3.connect(path)
    try:
        conn.executescript(f"""
            CREATE TABLE run (id INTEGER PRIMARY KEY, run_name TEXT UNIQUE, description TEXT, metadata TEXT,
                              created_at TEXT);
            CREATE TABLE model (id INTEGER PRIMARY KEY, model_name TEXT, path TEXT, parent_id INTEGER,
                                {model_columns} run_id INTEGER);
            CREATE TABLE checkpoint (id INTEGER PRIMARY KEY, model_id INTEGER, step INTEGER, path TEXT,
                                     created_at TEXT);
            CREATE TABLE metrics (id INTEGER PRIMARY KEY, model_id INTEGER, checkpoint_id INTEGER, family TEXT,
                                  metric_name TEXT, value REAL);
            CREATE TABLE registry_schema (family TEXT, metric_name TEXT);
            INSERT INTO run VALUES (1, 'base-runs', 'first', '{{"gpu": 1}}', '2001-02-03 04:05:06'),
                                   (3, 'sweep', NULL, NULL, '2001-02-04 00:00:00');
            INSERT INTO checkpoint VALUES (1, 2, 100, '/m/sft/ck-100', '2001-02-05T00:00:00'), (2, 5, 0, NULL, NULL);
            INSERT INTO metrics VALUES (1, 1, NULL, 'mmlu', 'acc', 0.5), (2, 1, NULL, 'mmlu', 'acc_norm', 0.25),
                                       (3, NULL, 1, 'mmlu', 'acc', 0.125), (4, 2, NULL, 'gsm8k', 'em', NULL),
                                       (5, 1, NULL, 'mmlu', 'acc', 0.75), (6, 4, NULL, 'arc', 'acc', 1.0);
            INSERT INTO registry_schema VALUES ('mmlu', 'acc'), ('arc', 'acc');
        """)
        models = [(1, "llama", "/m/llama", None, "the base", 0, 1), (2, "sft", "/m/sft", 5, None, 1, 3),
                  (4, "dpo", None, 2, None, 0, 3), (5, "cpt", "/m/cpt", 1, None, 0, 3)]
        if notes_hidden:
            conn.executemany("INSERT INTO model VALUES (?, ?, ?, ?, ?, ?, ?)", models)
        else:
            conn.executemany("INSERT INTO model VALUES (?, ?, ?, ?, ?)", [m[:4] + m[6:] for m in models])
        if scores:
            conn.execute("CREATE TABLE detailed_scores (metric_id INTEGER PRIMARY KEY, scores TEXT, n_samples INTEGER)")
            conn.executemany("INSERT INTO detailed_scores VALUES (?, ?, ?)",
                             [(1, "[1, 0]", 2), (3, "[0.5]", 1), (5, "[1, 1]", 2)])
        conn.commit()
    finally:
        conn.close()
    return path


def build_2x_source(path: Path) -> Path:
    """A registry with history: overwrites, scores with document ids, checkpoint metrics,
    notes, a hidden model, lineage, a deleted model and a second run."""
    with LightMLHandle(path, "shared") as h:
        h.register_model("base", "org/base")
        h.register_model("sft", "org/sft", parent_name="base")
        h.log_model_metric("base", "eval", "acc", 0.5)
        h.log_model_metric("base", "eval", "acc", 0.625, force=True)
        h.log_model_metric("base", "eval", "acc", 0.75, force=True, scores=[1, 0, 1, 1], doc_ids=["a", "b", "c", "d"])
        h.log_metrics("sft", {"eval": {"acc": 0.8125, "f1": 0.25}, "other": {"x": 2}})
        checkpoint = h.register_checkpoint("sft", 100, "/ck/100")
        h.log_checkpoint_metric(checkpoint, "eval", "acc", 0.125)
        h.log_checkpoint_metric(checkpoint, "eval", "acc", 0.25, force=True)
        h.set_notes("sft", "hello")
        h.set_hidden("base", True)
        h.register_model("gone", "org/gone")
        h.delete_model("gone")
    with LightMLHandle(path, "only-there") as h:
        h.register_model("probe", "org/probe")
        h.log_model_metric("probe", "e", "m", 0.375, scores=[0.5, 0.25])
    return path


def scenario_migrate(tmp: Path) -> list[Path]:
    full = build_1x(tmp / "full.db")
    old = build_1x(tmp / "v12.db", notes_hidden=False, scores=False)
    for db in (full, old):
        migrate(db)
    return [full, old]


def scenario_merge(tmp: Path) -> list[Path]:
    source, target = build_2x_source(tmp / "source.db"), tmp / "target.db"
    with LightMLHandle(target, "shared") as h:
        h.register_model("base", "org/base")
        h.log_model_metric("base", "eval", "acc", 0.0625)
        h.register_model("other", "org/other")
    merge(target, source)
    with LightMLHandle(source, "shared") as h:
        h.log_model_metric("sft", "eval", "f1", 0.5, force=True)
    merge(target, source, force=True)
    merge(target, [build_1x(tmp / "v1.db"), build_1x(tmp / "v12.db", notes_hidden=False, scores=False)])
    chain = tmp / "chain.db"  # values merged twice keep the time and actor of their first registry
    with LightMLHandle(chain, "own") as h:
        h.register_model("mine", "org/mine")
    merge(chain, target)
    return [target, chain]


def _copy_with_fixed_mtimes(source: Path, target: Path) -> Path:
    shutil.copytree(source, target)
    for path in target.rglob("*"):
        os.utime(path, ns=(FIXED_MTIME_NS, FIXED_MTIME_NS))
    return target


def scenario_scan(tmp: Path) -> list[Path]:
    results = tmp / "results"
    _copy_with_fixed_mtimes(DATA / "lm_eval_0413" / "dummy-a", results / "dummy-a")
    _copy_with_fixed_mtimes(DATA / "lm_eval_0413_groups" / "EleutherAI__pythia-70m", results / "pythia")
    db = tmp / "scan.db"
    scan_and_import(db, "r", results)
    scan_and_import(db, "r", results, family_template="{task}_{nshot}shot", name_from="results")
    scan_and_import(db, "r", results, force=True)
    # Values before their samples (a watch round during lm-eval): the next scan attaches the scores.
    late = tmp / "late"
    _copy_with_fixed_mtimes(DATA / "lm_eval_0413" / "dummy-a", late / "dummy-a")
    held = tmp / "held"
    held.mkdir()
    for samples in (late / "dummy-a").glob("samples_*"):
        samples.rename(held / samples.name)
    late_db = tmp / "late.db"
    scan_and_import(late_db, "r", late)
    for samples in held.iterdir():
        samples.rename(late / "dummy-a" / samples.name)
    scan_and_import(late_db, "r", late)
    return [db, late_db]


SCENARIOS: dict[str, Callable[[Path], list[Path]]] = {
    "migrate": scenario_migrate, "merge": scenario_merge, "scan": scenario_scan}


def normalized_log(db: Path, tmp: Path) -> list[str]:
    """``type vN origin payload`` per event, with what differs between runs replaced."""
    host = socket.gethostname()
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT type, version, origin, payload FROM events ORDER BY seq").fetchall()
    lines = []
    for event_type, version, origin, payload in rows:
        payload = payload.replace(str(tmp), "<TMP>")
        if host:
            payload = payload.replace(f"@{host} (", "@<HOST> (")
        lines.append(f"{event_type} v{version} {origin} {_NOW.sub('<NOW>', payload)}")
    return lines


def run_scenario(name: str, tmp: Path) -> dict[str, list[str]]:
    return {db.name: normalized_log(db, tmp) for db in SCENARIOS[name](tmp)}


@pytest.fixture
def as_tester(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same user on every machine (merged values carry their writer's name)."""
    for variable in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        monkeypatch.setenv(variable, "tester")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
def test_ingest_writes_the_events_it_wrote_before(name: str, tmp_path: Path, as_tester: None) -> None:
    expected = json.loads(GOLDEN.read_text(encoding="utf-8"))[name]
    logs = run_scenario(name, tmp_path)
    assert logs.keys() == expected.keys()
    for db, lines in logs.items():
        assert len(lines) == len(expected[db]), db
        for number, (line, wanted) in enumerate(zip(lines, expected[db]), 1):
            assert line == wanted, f"{db}, event {number}"


if __name__ == "__main__":  # write the golden file (see the module docstring)
    import tempfile

    for variable in ("LOGNAME", "USER", "LNAME", "USERNAME"):
        os.environ[variable] = "tester"
    golden = {}
    for scenario in sorted(SCENARIOS):
        with tempfile.TemporaryDirectory() as folder:
            golden[scenario] = run_scenario(scenario, Path(folder).resolve())
    GOLDEN.write_text(json.dumps(golden, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {GOLDEN} ({sum(len(v) for s in golden.values() for v in s.values())} events)", file=sys.stderr)
