"""Opening a handle on a run: an existing run opens without waiting for another process's
write lock, and a handle without a run writes into LightML 1.4's default run ``benchmarks``,
which its first successful write creates."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
import sys
import textwrap
import time

import pytest

from lightml import AsyncLightMLHandle, LightMLHandle


RUN = "r"


LOCK_HOLDER = textwrap.dedent("""
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    time.sleep(60)
""")


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_opening_an_existing_run_does_not_wait_for_the_write_lock(tmp_path, flavour, make_small_registry):
    db = make_small_registry(tmp_path / "reg.db")
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
def test_a_handle_without_run_writes_into_the_benchmarks_run(tmp_path, flavour):
    db = tmp_path / "reg.db"
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
    with contextlib.closing(sqlite3.connect(db)) as conn:
        rows = conn.execute("SELECT r.run_name, m.model_name FROM model m JOIN run r ON r.id = m.run_id "
                            "ORDER BY m.id").fetchall()
    assert rows == [("benchmarks", "m"), ("other", "elsewhere")]
    with LightMLHandle(db) as reader:  # reads still span runs
        assert reader.model_exists("elsewhere") and len(reader.search("m", "fam")) == 2


def test_a_refused_first_write_leaves_no_benchmarks_run(tmp_path):
    db = tmp_path / "reg.db"
    with LightMLHandle(db) as h:
        with pytest.raises(LookupError):
            h.register_model("m", "hub/m", parent_name="ghost")
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM run").fetchone()[0] == 0
