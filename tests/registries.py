"""Registries several test folders build the same way, and the checks their fixtures make
of the test's registry (imported by their conftest.py files)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from lightml import LightMLHandle, verify


def verify_registry(db: Path | str) -> None:
    """Fail the test unless the registry at ``db`` (a file's path, or a PostgreSQL URL), where
    it exists and has an event log, has read tables equal to a rebuild from that log."""
    if isinstance(db, str) and db.startswith("postgresql://"):
        import psycopg

        with psycopg.connect(db) as conn:
            if conn.execute("SELECT to_regclass('events') IS NULL").fetchone()[0]:
                return
    else:
        db = Path(db)
        if not db.is_file():
            return
        with contextlib.closing(sqlite3.connect(db)) as conn:
            if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'events'").fetchone() is None:
                return
    result = verify(db)
    if not result.ok:
        pytest.fail(f"verify failed after the test ({db}): {result.differences}")


def skip_if_sqlite_only(request: pytest.FixtureRequest) -> None:
    """Skip the PostgreSQL case of a test marked ``sqlite_only(why)``, saying why."""
    only = request.node.get_closest_marker("sqlite_only")
    if only is not None:
        pytest.skip(f"a SQLite file's own behaviour ({only.args[0]})")


def build_lineage(db, scores) -> None:
    """The ``lineage`` registry (tests/conftest.py) at ``db``, a path or a PostgreSQL URL:
    run r1: base -> sft -> dpo; eval/acc with per-sample scores on all three (dpo: 90 of
    them), eval/f1 with scores on base and sft, eval/loss, knowledge/mmlu, sft's eval/bleu, and
    a checkpoint of sft (no metrics). Run r2: its own base (acc 0.5, with scores) and solo.
    ``scores``: ``lineage_scores``."""
    with LightMLHandle(db, run_name="r1") as h:
        h.register_model("base", "org/base")
        h.register_model("sft", "org/sft", parent_name="base")
        h.register_model("dpo", "org/dpo", parent_name="sft")
        h.log_model_metric("base", "eval", "acc", 0.6, scores=scores.base_acc)
        h.log_model_metric("sft", "eval", "acc", 0.7, scores=scores.sft_acc)
        h.log_model_metric("dpo", "eval", "acc", 0.72, scores=[1] * 90)
        h.log_model_metric("base", "eval", "f1", 0.5495, scores=scores.base_f1)
        h.log_model_metric("sft", "eval", "f1", 0.6495, scores=scores.sft_f1)
        h.log_metrics("base", {"eval": {"loss": 2.0}, "knowledge": {"mmlu": 0.3}})
        h.log_metrics("sft", {"eval": {"loss": 1.8, "bleu": 10.5}, "knowledge": {"mmlu": 0.3}})
        h.log_metrics("dpo", {"eval": {"loss": 1.9}, "knowledge": {"mmlu": 0.35}})
        h.register_checkpoint("sft", 100, "/ckpt/sft-100")
    with LightMLHandle(db, run_name="r2") as h:
        h.register_model("base", "org/base-r2")
        h.log_model_metric("base", "eval", "acc", 0.5, scores=[1] * 50 + [0] * 50)
        h.register_model("solo", "org/solo")
        h.log_model_metric("solo", "eval", "acc", 0.1)
