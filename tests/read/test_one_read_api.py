"""One read API: each read query is defined once and gives the same answer on the handles'
and the CLI's sqlite3 connection as on the dashboard's aiosqlite one; the dashboard answers
with those queries; the pivot's caches never serve a table the log has moved past; and the
faces (cli/, web/, report/) hold no SQL."""

from __future__ import annotations

import ast
import asyncio
import re
from pathlib import Path
from typing import Any

import pytest
from starlette.testclient import TestClient

import lightml
from lightml.handle import LightMLHandle
from lightml.errors import NotFoundError
from lightml.read import catalog, dashboard, report_data, run_ids
from lightml.read.pivot import PivotTables, log_position
from lightml.read.sql import Query, reading, reading_async, run, run_async
from lightml.web.app import create_app

LOCAL = "http://127.0.0.1:5050"


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    """base <- sft <- dpo in r1 (sft with checkpoints, one family only on checkpoints), a
    hidden model, the name sft again in r2, an overwrite and a delete in the log."""
    db = tmp_path / "reg.db"
    with LightMLHandle(db, "r1") as h:
        h.register_model("base", "org/base")
        h.register_model("sft", "org/sft", parent_name="base")
        h.register_model("dpo", "org/dpo", parent_name="sft")
        h.log_metrics("base", {"eval": {"acc": 0.5, "loss": 2.0}, "other": {"acc": 0.1}})
        h.log_metrics("sft", {"eval": {"acc": 0.8, "loss": 1.5}})
        h.log_model_metric("dpo", "eval", "acc", 0.8)  # a tie with sft
        for step, value in ((100, 0.6), (200, 0.7)):
            cid = h.register_checkpoint("sft", step, f"/ckpt/{step}")
            h.log_checkpoint_metric(cid, "eval", "acc", value)
            h.log_checkpoint_metric(cid, "curve_only", "ppl", 10.0 - step / 100)
        h.log_model_metric("base", "eval", "loss", 1.9, force=True)
        h.set_notes("sft", "the SFT one")
        h.register_model("hidden-one", "org/h")
        h.log_model_metric("hidden-one", "secret", "acc", 0.99)
        h.set_hidden("hidden-one")
        h.register_model("gone", "org/gone")
        h.log_model_metric("gone", "eval", "acc", 0.2)
        h.delete_model("gone")
    with LightMLHandle(db, "r2") as h:
        h.register_model("sft", "org/sft-again")
        h.log_model_metric("sft", "eval", "acc", 0.75)
    return db


def model_id(db: Path, name: str, run_name: str = "r1") -> int:
    with reading(db) as conn:
        return conn.execute("SELECT m.id FROM model m JOIN run r ON r.id = m.run_id "
                            "WHERE m.model_name = ? AND r.run_name = ?", (name, run_name)).fetchone()[0]


def on_aiosqlite(db: Path, query: Query, *args: Any, **kwargs: Any) -> Any:
    async def answer() -> Any:
        async with reading_async(db) as conn:
            return await query.run_async(conn, *args, **kwargs)
    return asyncio.run(answer())


def on_sqlite3(db: Path, query: Query, *args: Any, **kwargs: Any) -> Any:
    with reading(db) as conn:
        return query(conn, *args, **kwargs)


# (query, args, kwargs); "<sft>" is replaced by sft's model id in r1.
QUERIES = [
    (catalog.list_runs, (), {}),
    (catalog.list_runs, (), {"include_hidden": True}),
    (catalog.list_families, (), {}),
    (catalog.list_families, (1,), {"include_hidden": True}),
    (catalog.list_models, (), {}),
    (catalog.list_models, (None, True), {}),
    (catalog.newest_events, (), {}),
    (catalog.newest_events, (), {"n": 100}),
    (catalog.summary, (), {}),
    (catalog.model_card, ("<sft>",), {}),
    (catalog.top, ("eval", "acc"), {"n": 2}),
    (catalog.top, ("eval", "loss"), {"include_hidden": True}),
    (catalog.metric_value, ("<sft>", "sft", "eval", "loss"), {}),
    (catalog.model_notes, ("<sft>", "sft"), {}),
    (catalog.family_metrics, ("eval",), {}),
    (catalog.family_names, (), {}),
    (dashboard.metric_families, (), {}),
    (dashboard.lineage, (), {}),
    (dashboard.curves, ("eval", "acc"), {}),
    (dashboard.events_after, (0,), {}),
    (dashboard.events_after, (3,), {"limit": 2}),
    (log_position, (), {}),
    (run_ids.run_id, ("r2",), {}),
    (run_ids.require_run_id, ("r1",), {}),
    (report_data.report_data, (False,), {}),
    (report_data.report_data, (True,), {}),
    (report_data.overwrites_and_deletes, (), {}),
]


@pytest.mark.parametrize("query, args, kwargs", QUERIES, ids=lambda v: getattr(v, "__name__", None))
def test_each_query_answers_the_same_on_sqlite3_and_aiosqlite(registry: Path, query: Query, args: tuple,
                                                              kwargs: dict) -> None:
    args = tuple(model_id(registry, "sft") if a == "<sft>" else a for a in args)
    sync_answer = on_sqlite3(registry, query, *args, **kwargs)
    assert sync_answer not in (None, [], {})  # the fixture gives every query something to say
    assert on_aiosqlite(registry, query, *args, **kwargs) == sync_answer


@pytest.mark.parametrize("query, args, message", [
    (dashboard.require_family, ("nope",), "no family 'nope'"),
    (dashboard.require_family, ("eval", "nope"), "no metric 'nope' in family 'eval'"),
    (catalog.require_metric, ("eval", "nope"), "no metric eval/nope in the registry"),
    (run_ids.require_run_id, ("nope",), "run 'nope' not found"),
])
def test_a_query_refuses_the_same_way_on_both_connections(registry: Path, query: Query, args: tuple,
                                                          message: str) -> None:
    with pytest.raises(NotFoundError, match=re.escape(message)):
        on_sqlite3(registry, query, *args)
    with pytest.raises(NotFoundError, match=re.escape(message)):
        on_aiosqlite(registry, query, *args)


PIVOTS = [(None, None, False, False), ("eval", None, True, False), ("eval", "r1", True, True),
          ("curve_only", None, True, False), (None, "r2", False, True)]


@pytest.mark.parametrize("family, run_name, checkpoints, include_hidden", PIVOTS)
def test_the_pivot_is_the_same_table_on_both_connections_and_from_the_dashboard(
        registry: Path, family: str | None, run_name: str | None, checkpoints: bool, include_hidden: bool) -> None:
    args = (family, run_name, checkpoints, include_hidden)
    with reading(registry) as conn:
        sync_table = run(conn, PivotTables().table(*args))

    async def on_aiosqlite_conn() -> bytes:
        async with reading_async(registry) as conn:
            return await run_async(conn, PivotTables().table(*args))
    assert asyncio.run(on_aiosqlite_conn()) == sync_table
    params = {k: v for k, v in (("family", family), ("run", run_name)) if v is not None}
    params.update(checkpoints="1" if checkpoints else "0", include_hidden="1" if include_hidden else "0")
    response = TestClient(create_app(registry), base_url=LOCAL).get("/api/pivot", params=params)
    assert response.status_code == 200 and response.content == sync_table


def test_the_dashboard_answers_with_the_read_queries(registry: Path) -> None:
    client = TestClient(create_app(registry), base_url=LOCAL)
    with reading(registry) as conn:
        runs = catalog.list_runs(conn)
        assert client.get("/api/runs").json() == [{"id": r["id"], "run": r["run"], "models": r["models"]}
                                                  for r in runs]
        assert client.get("/api/families").json() == dashboard.metric_families(conn)
        assert client.get("/api/lineage").json() == dashboard.lineage(conn)
        assert client.get("/api/curves", params={"family": "eval", "metric": "acc"}).json() == dashboard.curves(
            conn, "eval", "acc")
        newest = catalog.newest_events(conn, n=3)
    feed = client.get("/api/events").json()
    assert feed["events"][-3:] == newest[::-1]  # the feed, oldest first, ends with the newest events


def test_the_pivot_caches_follow_the_log(registry: Path) -> None:
    """A long-lived PivotTables (the dashboard's) answers after each kind of change exactly as a
    new one does: the cached blocks and tables are dropped when an event changes them."""
    kept = PivotTables()
    asked = [(None, None, True, True), ("eval", None, True, False), ("other", None, False, False)]

    def check() -> None:
        with reading(registry) as conn:
            for args in asked:
                assert run(conn, kept.table(*args)) == run(conn, PivotTables().table(*args)), args

    check()
    with LightMLHandle(registry, "r1") as h:
        changes = [
            lambda: h.log_model_metric("dpo", "eval", "loss", 1.2),  # a new value in a cached family
            lambda: h.log_model_metric("base", "eval", "acc", 0.55, force=True),  # an overwrite
            lambda: h.log_model_metric("dpo", "brand_new", "x", 1.0),  # a new family
            lambda: h.delete_model("dpo"),
            lambda: h.log_model_metric("sft", "eval", "f1", 0.4),  # eval's block built again, without dpo
            lambda: h.restore_model("dpo"),  # dpo's values are back in every family
            lambda: h.rename_model("base", "base-v1"),
            lambda: h.set_hidden("sft"),
            lambda: h.register_checkpoint("base-v1", 5, "/ckpt/5"),
        ]
        for change in changes:
            change()
            check()


def test_the_pivot_refuses_an_unknown_family_or_run(registry: Path) -> None:
    with reading(registry) as conn:
        with pytest.raises(NotFoundError, match="no family 'nope'"):
            run(conn, PivotTables().table("nope", None, False, False))
        with pytest.raises(NotFoundError, match="run 'nope' not found"):
            run(conn, PivotTables().table(None, "nope", False, False))


# SQL as it starts a statement, in upper case (help texts speak of "delete" in lower case).
SQL_STATEMENT = re.compile(r"^\s*(SELECT|INSERT|UPDATE|DELETE|REPLACE|WITH|BEGIN|COMMIT|ROLLBACK|PRAGMA|CREATE|DROP"
                           r"|ALTER|ATTACH)\b")


@pytest.mark.parametrize("face", ["cli", "web", "report"])
def test_the_faces_hold_no_sql(face: str) -> None:
    """The CLI, the dashboard and the report ask lightml.read (and the API): no SQL text, no
    connection's execute; the CLI and the dashboard open no connection of their own either."""
    folder = Path(lightml.__file__).parent / face
    opens_connections = face == "report"  # (export's output-file check asks log.store)
    found = []
    for path in sorted(folder.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL_STATEMENT.match(node.value):
                found.append(f"{path.name}:{node.lineno}: {node.value[:40]!r}")
            elif isinstance(node, ast.Attribute) and node.attr in ("execute", "executemany", "executescript",
                                                                    "execute_fetchall", "connect"):
                found.append(f"{path.name}:{node.lineno}: .{node.attr}")
            elif isinstance(node, (ast.Import, ast.ImportFrom)) and not opens_connections:
                names = [node.module or ""] if isinstance(node, ast.ImportFrom) else [a.name for a in node.names]
                found += [f"{path.name}:{node.lineno}: import {n}" for n in names
                          if n in ("aiosqlite", "lightml.log.opening", "lightml.log.store")
                          or (isinstance(node, ast.ImportFrom) and n == "lightml.log"
                              and {a.name for a in node.names} & {"opening", "store"})]
    assert not found, found
