"""The handles and event loops: the sync handle inside a running loop, the async handle's
life, group commit of concurrent coroutines, and a handle never closed (in a process of
its own: only its exit shows what it left in the registry). Each test runs on both engines
(``db``: a SQLite file, a PostgreSQL database)."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import textwrap

import pytest

from lightml import METRIC_INSERTED, METRIC_SKIPPED, METRIC_UPDATED, AsyncLightMLHandle, LightMLHandle
from lightml.errors import HandleClosedError
from lightml.log.replay import verify


def test_sync_handle_works_inside_a_running_event_loop(db):
    async def notebook_cell():
        assert asyncio.get_running_loop().is_running()
        with LightMLHandle(db, "r") as h:
            h.register_model("m", "hub/m")
            assert h.log_model_metric("m", "fam", "acc", 0.5) == METRIC_INSERTED
            assert h.log_metrics("m", {"fam": {"f1": 0.1}}) == {"inserted": 1, "updated": 0, "skipped": 0}
            return [(r["metric"], r["value"]) for r in h.search("m", "fam")]

    assert sorted(asyncio.run(notebook_cell())) == [("acc", 0.5), ("f1", 0.1)]


def test_async_handle_context_manager_and_use_after_close(db, query):
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


def test_group_commit_100_concurrent_coroutines_all_land(db, n_events, events, query):
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


def test_batched_calls_merge_only_neighbouring_events_of_one_target(db, query, last_seq, events):
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


def test_concurrent_logs_of_one_metric_insert_it_once(db, query, events):
    async def main():
        async with AsyncLightMLHandle(db, "r") as h:
            await h.register_model("m", "hub/m")
            return await asyncio.gather(*(h.log_model_metric("m", "fam", "acc", i / 100) for i in range(50)))

    outcomes = asyncio.run(main())
    assert outcomes.count(METRIC_INSERTED) == 1
    assert outcomes.count(METRIC_SKIPPED) == 49
    assert len(events(db, "metric_inserted")) == 1
    assert query(db, "SELECT count(*) FROM metrics") == [(1,)]


def test_a_name_no_engine_can_store_fails_only_its_own_call(db, query):
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


def test_one_failing_coroutine_does_not_undo_the_others(db, query):
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
def test_handle_never_closed_loses_nothing_and_exits(db, flavour_script, query):
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
