"""The PostgreSQL server the tests start (tests/postgres_server.py): reachable over 127.0.0.1 and
its Unix socket, a fresh database per test, a role that needs its password, a restart that
ends open connections, and no process left behind when it stops or when its parent dies.

Skipped, with the reason, where PostgreSQL's binaries (and LIGHTML_TEST_POSTGRES) or psycopg
are missing; .ci/run installs Debian's postgresql so that these run in CI.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from postgres_server import (
    PASSWORD,
    PASSWORD_ROLE,
    ExistingPostgresServer,
    NotSupportedHere,
    PostgresServer,
    find_server_binaries,
    postgres_unavailable_reason,
)

try:
    import psycopg
except ImportError:  # every test below skips first, with the reason
    psycopg = None

TESTS = Path(__file__).resolve().parent


@pytest.fixture
def server(postgres_server) -> PostgresServer | ExistingPostgresServer:
    """The test run's server (tests/conftest.py's ``postgres_server``)."""
    return postgres_server


@pytest.fixture
def database(postgres_url: str) -> str:
    """The name of a fresh database for the test, dropped after it."""
    return postgres_url.rsplit("/", 1)[1]


def need(server, feature: str) -> None:
    reason = server.unsupported(feature)
    if reason:
        pytest.skip(reason)


def throwaway_server_or_skip() -> None:
    """Skip unless this machine can start its own server (the tests that stop or kill one)."""
    reason = postgres_unavailable_reason()
    if reason:
        pytest.skip(reason)
    if find_server_binaries() is None:
        pytest.skip("no PostgreSQL server binaries here (LIGHTML_TEST_POSTGRES names a server, which is not ours to stop)")


def live_processes(pids: list[int]) -> list[int]:
    """The pids still running: gone or a zombie (exited, not yet reaped by init) do not count."""
    alive = []
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            continue
        if state != "Z":
            alive.append(pid)
    return alive


def children_of(pid: int) -> list[int]:
    """The processes whose parent is ``pid`` (the postmaster's backends and workers)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if ppid == pid:
            found.append(int(stat.parent.name))
    return found


def wait_until_gone(pids: list[int], seconds: float = 60.0) -> list[int]:
    """Wait (bounded, for a loaded machine) until none of ``pids`` runs; the ones left."""
    deadline = time.monotonic() + seconds
    while live_processes(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return live_processes(pids)


# -- reaching it ---------------------------------------------------------------------------------


def test_a_created_database_is_reached_over_127_0_0_1(server, database: str) -> None:
    with psycopg.connect(server.url(database)) as conn:
        name, address = conn.execute("SELECT current_database(), host(inet_server_addr())").fetchone()
    assert (name, address) == (database, "127.0.0.1")


def test_a_created_database_is_reached_over_the_unix_socket(server, database: str) -> None:
    need(server, "socket")
    with psycopg.connect(server.socket_url(database)) as conn:
        name, address = conn.execute("SELECT current_database(), inet_server_addr()").fetchone()
    assert (name, address) == (database, None)  # no server address: not a TCP connection


def test_each_created_database_is_new_and_empty(server) -> None:
    first, second = server.create_database("same-hint"), server.create_database("same-hint")
    try:
        assert first != second
        with psycopg.connect(first, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept_apart (x int)")
        with psycopg.connect(second) as conn:
            tables = conn.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'").fetchone()[0]
        assert tables == 0
    finally:
        server.drop_database(first)
        server.drop_database(second)


def test_a_dropped_database_is_gone_even_with_a_connection_still_open(server) -> None:
    url = server.create_database("dropped")
    left_open = psycopg.connect(url)
    try:
        server.drop_database(url)
        with pytest.raises(psycopg.OperationalError, match="does not exist"):
            psycopg.connect(url)
    finally:
        left_open.close()


def test_the_throwaway_server_keeps_the_durable_defaults(server, database: str) -> None:
    if not isinstance(server, PostgresServer):
        pytest.skip("LIGHTML_TEST_POSTGRES names an existing server; its settings are its own")
    with psycopg.connect(server.url(database)) as conn:
        settings = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'max_connections')"))
    assert settings == {"fsync": "on", "synchronous_commit": "on", "max_connections": "200"}


# -- the password role -------------------------------------------------------------------------


def test_the_password_role_gets_in_with_its_password_only(server, monkeypatch: pytest.MonkeyPatch) -> None:
    need(server, "password")
    # no password from the environment or a ~/.pgpass of this machine
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", os.devnull)
    url = server.create_database("password", owner=PASSWORD_ROLE)
    name = url.rsplit("/", 1)[1]
    try:
        with psycopg.connect(server.password_url(name), autocommit=True) as conn:
            conn.execute("CREATE TABLE owned (x int)")  # it owns the database: it can build a schema
            assert conn.execute("SELECT current_user").fetchone()[0] == PASSWORD_ROLE
        with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
            psycopg.connect(server.password_url(name, password=PASSWORD + "-wrong"))
        without_password = server.password_url(name).replace(f":{PASSWORD}@", "@")
        with pytest.raises(psycopg.OperationalError, match="no password supplied|password authentication failed"):
            psycopg.connect(without_password)
    finally:
        server.drop_database(url)


# -- restart, stop, and a parent that dies -------------------------------------------------------


def test_restart_ends_open_connections_and_takes_new_ones(server, database: str) -> None:
    need(server, "restart")
    old = psycopg.connect(server.url(database), autocommit=True)
    old.execute("CREATE TABLE survived (x int)")
    old.execute("INSERT INTO survived VALUES (1)")
    try:
        server.restart()
        with pytest.raises(psycopg.OperationalError):
            old.execute("SELECT 1")
    finally:
        old.close()
    with psycopg.connect(server.url(database)) as new:
        assert new.execute("SELECT x FROM survived").fetchall() == [(1,)]


def test_an_existing_server_restart_is_refused_with_a_reason() -> None:
    existing = ExistingPostgresServer("postgresql://postgres@127.0.0.1:1/postgres")
    with pytest.raises(NotSupportedHere, match="existing server"):
        existing.restart()
    with pytest.raises(ValueError, match="postgresql:// URL"):
        ExistingPostgresServer("mysql://root@localhost/db")


def test_an_existing_server_keeps_running_and_loses_the_tests_databases(server) -> None:
    """LIGHTML_TEST_POSTGRES's mode, on the test server: databases come and go, the server stays."""
    existing = ExistingPostgresServer(server.url("postgres"))
    existing.start()
    left_behind = existing.create_database("left-behind")
    with psycopg.connect(left_behind) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)
    existing.stop()
    with pytest.raises(psycopg.OperationalError, match="does not exist"):
        psycopg.connect(left_behind)
    with psycopg.connect(server.url("postgres")) as conn:  # still up
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_stop_leaves_no_process_and_no_folder_behind() -> None:
    throwaway_server_or_skip()
    server = PostgresServer()
    server.start()
    connection = psycopg.connect(server.url("postgres"))  # a backend too, still connected at stop
    postmaster = server.pid
    processes = [postmaster, *children_of(postmaster)]
    folder = server.folder
    assert len(processes) > 1 and folder.is_dir()
    try:
        server.stop()
    finally:
        connection.close()
    assert live_processes(processes) == []
    assert not folder.exists()
    server.stop()  # a second stop (the atexit one) is harmless


SERVER_IN_A_CHILD = """
import sys, time
sys.path.insert(0, sys.argv[1])
from postgres_server import PostgresServer
server = PostgresServer()
server.start()
print(server.pid, server.folder, flush=True)
time.sleep(600)
"""


def test_a_killed_test_process_takes_its_server_with_it() -> None:
    """SIGKILL gives no finalizer and no atexit a chance: the parent-death signal stops it."""
    throwaway_server_or_skip()
    if shutil.which("setpriv") is None:
        pytest.skip("setpriv (util-linux) is missing: no parent-death signal for the server")
    child = subprocess.Popen([sys.executable, "-c", SERVER_IN_A_CHILD, str(TESTS)], stdout=subprocess.PIPE, text=True)
    folder = None
    try:
        started = child.stdout.readline().split()
        assert len(started) == 2, f"the child did not start its server (exit code {child.poll()})"
        pid, folder = started
        processes = [int(pid), *children_of(int(pid))]
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert wait_until_gone(processes) == []
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
        if folder:
            shutil.rmtree(folder, ignore_errors=True)  # the killed process could not remove it
