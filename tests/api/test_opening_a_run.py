"""Opening a handle on a run: an existing run opens without waiting for another process's
write lock, and a handle without a run writes into LightML 1.4's default run ``benchmarks``,
which its first successful write creates. Each test runs on both engines (``db``: a SQLite
file, a PostgreSQL database)."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import time

import pytest

from lightml import AsyncLightMLHandle, LightMLHandle


RUN = "r"


# Another writer inside its decision: the registry's write lock, as LightML's writer takes it
# (BEGIN IMMEDIATE on SQLite, the transaction's advisory lock on PostgreSQL).
LOCK_HOLDER = textwrap.dedent("""
    import sys, time
    from lightml.log.engine import engine_for
    engine = engine_for(sys.argv[1])
    conn = engine.connect()
    engine.begin_decide_lock(conn)
    print("locked", flush=True)
    time.sleep(60)
""")


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_opening_an_existing_run_does_not_wait_for_the_write_lock(db, flavour, make_small_registry):
    make_small_registry(db)
    holder = subprocess.Popen([sys.executable, "-c", LOCK_HOLDER, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        if flavour == "sync":
            with LightMLHandle(db, RUN, timeout=5) as h:
                found = h.model_exists("m"), h.run_metric_exists("m", "fam", "acc")
        else:
            async def read() -> tuple[bool, bool]:
                async with AsyncLightMLHandle(db, RUN, timeout=5) as h:
                    return await h.model_exists("m"), await h.run_metric_exists("m", "fam", "acc")
            found = asyncio.run(read())
        assert found == (True, True)
        assert time.monotonic() - started < 4  # did not wait for the lock
    finally:
        holder.kill()
        holder.wait()


# -- LightML 1.4's default run ---------------------------------------------------------------


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_a_handle_without_run_writes_into_the_benchmarks_run(db, flavour, query):
    if flavour == "sync":
        with LightMLHandle(db) as h:
            assert not h.run_metric_exists("m", "fam", "acc")  # no 'benchmarks' yet: False
            h.register_model("m", "hub/m")
            h.log_model_metric("m", "fam", "acc", 0.5)
            h.log_metrics("m", {"fam": {"f1": 0.1}})
            ck = h.register_checkpoint("m", 10, "hub/m/10")
            h.log_checkpoint_metric(ck, "fam", "acc", 0.2)
            exists = h.run_metric_exists("m", "fam", "acc"), h.run_metric_exists("m", "fam", "nope")
            h.register_model("elsewhere", "hub/e", run_name="other")
    else:
        async def write() -> tuple[bool, bool]:
            async with AsyncLightMLHandle(db) as h:
                assert not await h.run_metric_exists("m", "fam", "acc")
                await h.register_model("m", "hub/m")
                await h.log_model_metric("m", "fam", "acc", 0.5)
                await h.log_metrics("m", {"fam": {"f1": 0.1}})
                ck = await h.register_checkpoint("m", 10, "hub/m/10")
                await h.log_checkpoint_metric(ck, "fam", "acc", 0.2)
                await h.register_model("elsewhere", "hub/e", run_name="other")
                return await h.run_metric_exists("m", "fam", "acc"), await h.run_metric_exists("m", "fam", "nope")
        exists = asyncio.run(write())
    assert exists == (True, False)
    rows = query(db, "SELECT r.run_name, m.model_name FROM model m JOIN run r ON r.id = m.run_id ORDER BY m.id")
    assert rows == [("benchmarks", "m"), ("other", "elsewhere")]
    with LightMLHandle(db) as reader:  # reads still span runs
        assert reader.model_exists("elsewhere") and len(reader.search("m", "fam")) == 2


def test_a_refused_first_write_leaves_no_benchmarks_run(db, query):
    with LightMLHandle(db) as h:
        with pytest.raises(LookupError):
            h.register_model("m", "hub/m", parent_name="ghost")
    assert query(db, "SELECT count(*) FROM run") == [(0,)]
