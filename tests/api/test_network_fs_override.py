"""A SQLite registry on a network filesystem is refused for writing (both handles,
``init_registry``, the CLI's writing commands, the dashboard's edits), with nothing created or
written; it is still read; ``allow_network_filesystem=True`` or ``LIGHTML_ALLOW_NETWORK_FS=1``
lets the write through; a local FUSE mount is not refused. The filesystem is the guard's
injectable probe (``network_fs.probe_replaced``): the folder is "mounted" over NFS for this
process, on the real local disk."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from lightml import AsyncLightMLHandle, LightMLHandle, init_registry
from lightml.errors import NetworkFilesystemError
from lightml.log import network_fs
from lightml.log.network_fs import Mount

REFUSED = "is on a network filesystem (nfs4 mounted at"

# The guard is about a SQLite file's own folder; a PostgreSQL registry has none (``db`` skips it).
pytestmark = pytest.mark.sqlite_only("the guard against a SQLite file on a network filesystem")


@pytest.fixture(autouse=True)
def no_override(monkeypatch) -> None:
    """The tests choose the override themselves, whatever the environment says."""
    monkeypatch.delenv(network_fs.ALLOW_ENV, raising=False)


@contextlib.contextmanager
def mounted(folder: Path, type_name: str = "nfs4", source: str = "filer:/export/lab") -> Iterator[Path]:
    """Within the block, the guard sees ``folder`` as a mount of ``type_name``, the rest as a local disk."""
    mounts = [Mount("/", "ext4", "/dev/vda1"), Mount(str(folder.resolve()), type_name, source)]
    with network_fs.probe_replaced(network_fs.probe_with_mounts(mounts)):
        yield folder


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


def n_events(db: Path) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT count(*) FROM events").fetchone()[0]


def assert_names_the_way_out(error: BaseException) -> None:
    message = str(error)
    assert "\n" not in message and REFUSED in message
    for option in ("postgresql://", "lightml watch", "LIGHTML_ALLOW_NETWORK_FS=1", "allow_network_filesystem=True"):
        assert option in message, message


# -- the Python API -----------------------------------------------------------------------------


def test_a_handle_opened_to_write_is_refused_and_creates_nothing(open_handle, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    with mounted(shared):
        with pytest.raises(NetworkFilesystemError) as refused:
            open_handle(shared / "reg.db", "r1")
    assert_names_the_way_out(refused.value)
    assert files_in(shared) == []


def test_init_registry_is_refused_before_it_makes_a_folder_or_removes_a_file(tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    existing = init_registry(shared, "main")
    before = existing.read_bytes()
    with mounted(shared):
        with pytest.raises(NetworkFilesystemError) as refused:
            init_registry(shared / "new" / "folders", "lab")
        with pytest.raises(NetworkFilesystemError):
            init_registry(shared, "main", overwrite=True)
    assert_names_the_way_out(refused.value)
    assert not (shared / "new").exists()
    assert existing.read_bytes() == before


def test_a_registry_on_nfs_is_read_and_its_first_write_refused(open_handle, lineage: Path) -> None:
    events = n_events(lineage)
    with mounted(lineage.parent):
        h = open_handle(lineage, "r1", create=False)
        assert h.model_exists("sft")
        assert [r["value"] for r in h.search("sft", "eval", "acc")] == [0.7]
        assert [e["value"] for e in h.metric_history("sft", "eval", "acc")] == [0.7]
        assert h.compare_stats("base", "sft", "eval", "acc")["n"] == 100
        with pytest.raises(NetworkFilesystemError) as refused:
            h.log_model_metric("sft", "eval", "new", 0.5)
        with pytest.raises(NetworkFilesystemError):  # and every write after it
            h.set_notes("sft", "tried from node 7")
        assert h.search("sft", "eval", "new") == []
    assert_names_the_way_out(refused.value)
    assert n_events(lineage) == events


def test_the_argument_lets_the_write_through(open_handle, db: Path) -> None:
    with mounted(db.parent):
        with open_handle(db, "r1", allow_network_filesystem=True) as h:
            h.register_model("m", "org/m")
            h.log_model_metric("m", "eval", "acc", 0.5)
        assert init_registry(db.parent / "other", "main", allow_network_filesystem=True).is_file()
    with LightMLHandle(db, "r1", create=False) as h:
        assert h.metric_exists("m", "eval", "acc")


def test_the_environment_variable_lets_the_write_through(open_handle, db: Path, monkeypatch) -> None:
    monkeypatch.setenv("LIGHTML_ALLOW_NETWORK_FS", "1")
    with mounted(db.parent):
        with open_handle(db, "r1") as h:
            h.register_model("m", "org/m")
            h.log_model_metric("m", "eval", "acc", 0.5)
            assert h.metric_exists("m", "eval", "acc")


def test_an_async_handle_without_create_refuses_its_first_write(lineage: Path) -> None:
    """The refusal reaches the awaiting coroutine through the group-commit batch."""
    events = n_events(lineage)

    async def session() -> None:
        async with AsyncLightMLHandle(lineage, "r1", create=False) as h:
            assert await h.model_exists("sft")
            results = await asyncio.gather(h.log_model_metric("sft", "eval", "a", 0.1),
                                           h.log_model_metric("sft", "eval", "b", 0.2), return_exceptions=True)
            assert [type(r) for r in results] == [NetworkFilesystemError] * 2

    with mounted(lineage.parent):
        asyncio.run(session())
    assert n_events(lineage) == events


@pytest.mark.parametrize("type_name, source, refused", [
    ("fuse.squashfuse", "squashfuse", False),  # a local FUSE mount
    ("fuse.gocryptfs", "/home/alice/.cipher", False),
    ("fuse.sshfs", "alice@login:/data", True),
    ("fuse.gcsfuse", "lab-bucket", True),
    ("fuse", "alice@login:/data", True),
])
def test_fuse_mounts_are_refused_only_when_they_reach_another_machine(db: Path, type_name, source, refused) -> None:
    with mounted(db.parent, type_name, source):
        if refused:
            with pytest.raises(NetworkFilesystemError, match=type_name):
                LightMLHandle(db, "r1")
            assert not db.exists()
        else:
            with LightMLHandle(db, "r1") as h:
                h.register_model("m", "org/m")
                h.log_model_metric("m", "eval", "acc", 0.5)
            assert n_events(db) > 0


# -- the CLI ------------------------------------------------------------------------------------


@pytest.fixture
def cli_here(cli):
    """The CLI in this process: the probe replaced here is not seen by another process."""
    if os.environ.get("LIGHTML_CLI_TESTS") == "process":
        pytest.skip("the filesystem probe is replaced in this process only")
    return cli


def test_cli_init_is_refused_in_one_line_and_creates_nothing(cli_here, assert_user_error, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    with mounted(shared):
        result = cli_here("init", "--path", shared / "lab", "--name", "main")
    assert_user_error(result, REFUSED)
    assert "lightml init: error: refusing to write the SQLite registry" in result.stderr
    assert files_in(shared) == []


@pytest.mark.parametrize("command", [
    ["model-register", "--run", "r1", "--name", "new", "--path", "org/new"],
    ["metric-log", "--run", "r1", "--model", "sft", "--family", "eval", "--metric", "new", "--value", "0.5"],
    ["notes", "--model", "sft", "--run", "r1", "--set", "from node 7"],
    ["model-delete", "--model", "solo", "--yes"],
    ["scan", "--run", "r1", "--path", "{results}"],
    ["merge", "--from", "{source}"],
])
def test_cli_writes_to_a_registry_on_nfs_are_refused(cli_here, assert_user_error, lineage: Path,
                                                     make_small_registry, lm_eval_results: Path, command) -> None:
    source = make_small_registry(lineage.parent / "source.db")
    argv = [part.format(results=lm_eval_results, source=source) for part in command]
    events = n_events(lineage)
    with mounted(lineage.parent):
        result = cli_here(argv[0], "--db", lineage, *argv[1:])
    assert_user_error(result, REFUSED)
    assert "postgresql://" in result.stderr and "LIGHTML_ALLOW_NETWORK_FS=1" in result.stderr
    assert n_events(lineage) == events


@pytest.mark.parametrize("command", [
    ["list"], ["summary"], ["verify"],
    ["history", "--model", "sft", "--run", "r1", "--family", "eval", "--metric", "acc"],
    ["stats", "--model-a", "base", "--model-b", "sft", "--run", "r1", "--all"],
    ["notes", "--model", "sft", "--run", "r1"],  # printing the notes, not setting them
    ["export", "--output", "{out}"],
])
def test_cli_reads_of_a_registry_on_nfs_work(cli_here, lineage: Path, tmp_path: Path, command) -> None:
    out = tmp_path.parent / f"{tmp_path.name}-report.xlsx"  # (outside the test's folder, on the "local" disk)
    argv = [part.format(out=out) for part in command]
    events = n_events(lineage)
    try:
        with mounted(lineage.parent):
            result = cli_here(argv[0], "--db", lineage, *argv[1:])
        assert result.returncode == 0, result.stderr
        assert result.stderr == ""
    finally:
        out.unlink(missing_ok=True)
    assert n_events(lineage) == events


def test_cli_write_with_the_environment_override(cli_here, lineage: Path) -> None:
    with mounted(lineage.parent):
        result = cli_here("metric-log", "--db", lineage, "--run", "r1", "--model", "sft", "--family", "eval",
                          "--metric", "new", "--value", "0.5", env={"LIGHTML_ALLOW_NETWORK_FS": "1"})
    assert result.returncode == 0, result.stderr
    with LightMLHandle(lineage, "r1", create=False) as h:
        assert h.metric_exists("sft", "eval", "new")


def test_the_safe_option_a_local_registry_importing_the_shared_results(cli_here, tmp_path: Path,
                                                                      lm_eval_results: Path) -> None:
    """The jobs write their lm-eval outputs to the shared disk; the registry stays local."""
    local = tmp_path / "local"
    local.mkdir()
    with mounted(lm_eval_results):
        assert cli_here("init", "--path", local, "--name", "main").returncode == 0
        result = cli_here("scan", "--db", local / "main.db", "--run", "sweep", "--path", lm_eval_results)
    assert result.returncode == 0, result.stderr
    with LightMLHandle(local / "main.db", "sweep", create=False) as h:
        assert h.model_exists("dummy-a")


# -- the dashboard ------------------------------------------------------------------------------


def test_the_dashboard_shows_a_registry_on_nfs_and_refuses_its_edits(lineage: Path) -> None:
    from starlette.testclient import TestClient

    from lightml.web.app import TOKEN_HEADER, create_app

    events = n_events(lineage)
    with mounted(lineage.parent):
        client = TestClient(create_app(lineage), base_url="http://127.0.0.1:5050")
        page = client.get("/")
        assert page.status_code == 200
        assert client.get("/api/runs").status_code == 200
        start = page.text.index('name="lightml-token" content="') + len('name="lightml-token" content="')
        token = page.text[start:page.text.index('"', start)]
        edit = client.post("/api/notes", json={"model": "sft", "run": "r1", "notes": "x"},
                           headers={TOKEN_HEADER: token})
    assert edit.status_code == 400 and REFUSED in edit.json()["error"]
    assert n_events(lineage) == events
