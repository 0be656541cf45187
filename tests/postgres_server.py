"""The PostgreSQL server the PostgreSQL tests talk to: a throwaway cluster, or one named by
``LIGHTML_TEST_POSTGRES``.

- ``server_for_tests()``: the server to use. With ``LIGHTML_TEST_POSTGRES`` set to a superuser
  URL of an existing server (its ``postgres`` database), an ``ExistingPostgresServer`` on it;
  otherwise a ``PostgresServer``: a cluster made by ``initdb`` in a temporary folder, listening
  on 127.0.0.1 on a free port and on a Unix socket in that folder, removed by ``stop()``.
- ``postgres_unavailable_reason()``: why PostgreSQL tests must skip here, or None.
- ``create_database()`` gives each test a fresh empty database; ``url()``, ``socket_url()``
  and ``password_url()`` say how to reach one.

No postgres process outlives the tests: ``stop()`` runs from the fixture's finalizer and from
``atexit``, and the postmaster is started with a parent-death signal (``setpriv --pdeathsig``),
so it shuts itself down even when the test process is killed. The server keeps PostgreSQL's
durable defaults (``fsync``, ``synchronous_commit``): the benchmarks measure what users get;
only the cluster's creation (``initdb --no-sync``) skips fsync.
"""

from __future__ import annotations

import atexit
import contextlib
import glob
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

ENV_URL = "LIGHTML_TEST_POSTGRES"
SUPERUSER = "postgres"
# One role that must give its password (scram-sha-256), for the tests of password handling.
PASSWORD_ROLE = "lightml_pw"
PASSWORD = "s3cret-pw"

_READY_TIMEOUT = 60.0  # seconds; a loaded 2-core machine can be slow, a healthy start takes < 1 s
_STOP_TIMEOUT = 60.0


class NotSupportedHere(RuntimeError):
    """The server in use cannot do this (an existing server is not ours to restart); the
    message is the reason, fit for ``pytest.skip``."""


def find_server_binaries() -> Path | None:
    """The folder holding PostgreSQL's ``initdb``, ``pg_ctl`` and ``postgres``: Debian's
    /usr/lib/postgresql/<version>/bin, the newest version first, else the folder of a
    ``pg_ctl`` on PATH; None when there is none."""
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(str(Path(on_path).resolve().parent))
    for folder in map(Path, candidates):
        if all((folder / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return folder
    return None


def _version_key(bin_dir: str) -> tuple[int, ...]:
    version = Path(bin_dir).parent.name  # "15", "9.6"
    return tuple(int(part) for part in re.findall(r"\d+", version))


def postgres_unavailable_reason() -> str | None:
    """Why the PostgreSQL tests cannot run here (for ``pytest.skip``), or None when they can."""
    try:
        import psycopg  # noqa: F401  (the driver the tests and LightML's engine use)
    except ImportError as error:
        return f"psycopg is not installed ({error}); pip install 'psycopg[binary]>=3.1'"
    if os.environ.get(ENV_URL):
        return None
    if find_server_binaries() is None:
        return (f"no PostgreSQL server binaries (initdb, pg_ctl) under /usr/lib/postgresql/*/bin or on PATH: "
                f"install Debian's postgresql package, or set {ENV_URL} to a superuser URL of a server")
    if os.geteuid() == 0 and _server_user() is None:
        return "running as root and there is no 'postgres' or 'nobody' user to run the PostgreSQL server as"
    if os.geteuid() == 0 and not (shutil.which("setpriv") or shutil.which("runuser")):
        return "running as root and neither setpriv nor runuser is there to run the PostgreSQL server unprivileged"
    return None


def server_for_tests() -> PostgresServer | ExistingPostgresServer:
    """The server the tests should use (not started): the one named by ``LIGHTML_TEST_POSTGRES``
    when that is set, else a throwaway cluster. Use it as a context manager to start and stop it."""
    url = os.environ.get(ENV_URL)
    return ExistingPostgresServer(url) if url else PostgresServer()


def _server_user() -> pwd.struct_passwd | None:
    """The unprivileged user that runs initdb and postgres when we are root (both refuse root)."""
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _base_dir(traversable_by_others: bool) -> str:
    """Where the temporary folder goes: the usual temp dir, unless the server's user could not
    reach it (a root-only TMPDIR) or its path is too long for a Unix socket (about 100 bytes)."""
    base = tempfile.gettempdir()
    if len(base) > 60:
        return "/tmp"
    if traversable_by_others:
        for folder in (Path(base), *Path(base).parents):
            if not os.stat(folder).st_mode & 0o001:
                return "/tmp"
    return base


def _database_name(hint: str) -> str:
    """A unique database name from ``hint`` (a test's name): lower-case identifier characters,
    random tail so that runs sharing one existing server never collide, at most 63 bytes."""
    stem = re.sub(r"[^a-z0-9_]+", "_", hint.lower()).strip("_")[:40] or "db"
    return f"t_{stem}_{secrets.token_hex(4)}"


def _name_of(name_or_url: str) -> str:
    return urlsplit(name_or_url).path.lstrip("/") if "://" in name_or_url else name_or_url


class _Databases:
    """Creating and dropping the tests' databases, through a superuser connection."""

    def url(self, dbname: str) -> str:  # each server says how it is reached
        raise NotImplementedError

    def _admin(self):
        import psycopg

        return psycopg.connect(self.url("postgres"), autocommit=True, connect_timeout=10)

    def create_database(self, hint: str = "lightml", owner: str | None = None) -> str:
        """Create a fresh empty database named after ``hint`` (made unique) and return its
        superuser URL; ``owner`` (e.g. ``PASSWORD_ROLE``) makes that role its owner."""
        from psycopg import sql

        name = _database_name(hint)
        statement = sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(sql.Identifier(name))
        if owner:
            statement += sql.SQL(" OWNER {}").format(sql.Identifier(owner))
        with self._admin() as conn:
            conn.execute(statement)
        self._created.add(name)
        return self.url(name)

    def drop_database(self, name_or_url: str) -> None:
        """Drop a database (given by name or URL), ending any connection still open on it."""
        from psycopg import sql

        name = _name_of(name_or_url)
        with self._admin() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        self._created.discard(name)

    def __enter__(self):
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class PostgresServer(_Databases):
    """A throwaway PostgreSQL cluster in a temporary folder, run by Debian's binaries (as the
    ``postgres`` user, or ``nobody``, when we are root), reachable over 127.0.0.1:``port`` and
    over the Unix socket in ``socket_dir``. The superuser ``postgres`` needs no password; the
    role ``PASSWORD_ROLE`` must give ``PASSWORD``."""

    def __init__(self, bin_dir: Path | None = None) -> None:
        self.bin_dir = bin_dir or find_server_binaries()
        if self.bin_dir is None:
            raise FileNotFoundError(postgres_unavailable_reason() or "no PostgreSQL server binaries found")
        self.superuser = SUPERUSER
        self.host = "127.0.0.1"
        self.port: int | None = None
        self.folder: Path | None = None  # the socket lives here; the cluster in its "data"
        self._run_as = _server_user() if os.geteuid() == 0 else None
        self._process: subprocess.Popen | None = None
        self._owner = os.getpid()
        self._created: set[str] = set()

    def __repr__(self) -> str:
        state = f"port {self.port}" if self.running else "stopped"
        return f"PostgresServer({self.bin_dir}, {state})"

    @property
    def data_dir(self) -> Path:
        assert self.folder is not None, "the server was never started"
        return self.folder / "data"

    @property
    def socket_dir(self) -> Path:
        assert self.folder is not None, "the server was never started"
        return self.folder

    @property
    def log_path(self) -> Path:
        assert self.folder is not None, "the server was never started"
        return self.folder / "server.log"

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The postmaster's process id while it runs."""
        return _pid_file_pid(self.data_dir / "postmaster.pid") if self.running else None

    def unsupported(self, feature: str) -> str | None:
        """Why this server cannot do ``feature`` ("restart", "socket", "password"): never, here."""
        return None

    # -- life cycle ----------------------------------------------------------------------------

    def start(self) -> None:
        """Create the cluster (initdb) and start the server; returns once it accepts connections."""
        if self.running:
            return
        if self.folder is not None:
            raise RuntimeError("a stopped PostgresServer cannot be started again; make a new one")
        self._owner = os.getpid()
        self.folder = Path(tempfile.mkdtemp(prefix="lightml-pg-", dir=_base_dir(self._run_as is not None)))
        atexit.register(self.stop)
        try:
            if self._run_as is not None:
                os.chown(self.folder, self._run_as.pw_uid, self._run_as.pw_gid)
            self._initdb()
            for attempt in range(3):  # another process may take the free port before we bind it
                self.port = _free_port()
                if self._start_postmaster(may_retry=attempt < 2):
                    break
            self._create_password_role()
        except BaseException:
            self.stop()
            raise

    def restart(self) -> None:
        """Fast shutdown (open connections are ended, as ``pg_ctl restart -m fast`` does), then
        start again on the same port and data; returns once the server accepts connections.
        The new postmaster is our child again, with the same parent-death signal."""
        if not self.running:
            raise RuntimeError("the server is not running")
        self._stop_postmaster()
        self._start_postmaster(may_retry=False)

    def stop(self) -> None:
        """Fast shutdown and removal of the cluster's folder; safe to call twice, and called at
        exit when the tests did not."""
        if os.getpid() != self._owner:  # a forked test process exiting: the server is not its own
            return
        atexit.unregister(self.stop)
        self._stop_postmaster()
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
        self._created.clear()

    def _as_server_user(self, argv: list[str]) -> list[str]:
        """``argv`` run as the server's user, with a parent-death signal where setpriv exists:
        SIGINT is PostgreSQL's fast shutdown, sent when our process dies without stopping it."""
        setpriv = shutil.which("setpriv")
        if setpriv:
            prefix = [setpriv]
            if self._run_as is not None:
                prefix += [f"--reuid={self._run_as.pw_uid}", f"--regid={self._run_as.pw_gid}", "--clear-groups"]
            # set after the change of user: the kernel clears it when credentials change
            return [*prefix, "--pdeathsig", "SIGINT", "--", *argv]
        if self._run_as is not None:
            return ["runuser", "-u", self._run_as.pw_name, "--", *argv]
        return argv

    def _initdb(self) -> None:
        # --no-sync: a throwaway cluster need not survive a power cut while it is being created
        argv = [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", self.superuser, "-A", "trust",
                "-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions"]
        done = subprocess.run(self._as_server_user(argv), cwd=self.folder, capture_output=True, text=True,
                              stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write("\n# LightML's test server (tests/postgres_server.py)\n"
                       f"listen_addresses = '{self.host}'\n"
                       f"unix_socket_directories = '{self.socket_dir}'\n"
                       "max_connections = 200\n")
        # First match wins: the password role must authenticate; everyone else is trusted.
        (self.data_dir / "pg_hba.conf").write_text(
            f"local all {PASSWORD_ROLE} scram-sha-256\n"
            f"host  all {PASSWORD_ROLE} 127.0.0.1/32 scram-sha-256\n"
            "local all all trust\n"
            "host  all all 127.0.0.1/32 trust\n", encoding="utf-8")

    def _start_postmaster(self, may_retry: bool) -> bool:
        """Start postgres and wait until it is ready; False when the port was taken and
        ``may_retry`` (the caller picks another port)."""
        pid_file = self.data_dir / "postmaster.pid"
        pid_file.unlink(missing_ok=True)  # a stale one (after a kill) would look "ready"
        log_start = self.log_path.stat().st_size if self.log_path.exists() else 0
        argv = [str(self.bin_dir / "postgres"), "-D", str(self.data_dir), "-p", str(self.port)]
        with open(self.log_path, "ab") as log:
            # Its own session: a Ctrl-C in the terminal reaches pytest, which stops the server in
            # order, instead of the postmaster shutting down under a running test.
            self._process = subprocess.Popen(self._as_server_user(argv), cwd=self.folder, stdin=subprocess.DEVNULL,
                                             stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + _READY_TIMEOUT
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                self._process = None
                with open(self.log_path, "rb") as log:
                    log.seek(log_start)
                    said = log.read().decode(errors="replace")
                if may_retry and "could not bind" in said:
                    return False
                raise RuntimeError(f"postgres exited during start-up; its log:\n{said[-3000:]}")
            if _pid_file_status(pid_file) == "ready":
                return True
            time.sleep(0.02)
        self._stop_postmaster()
        raise RuntimeError(f"postgres did not accept connections within {_READY_TIMEOUT:.0f} s; "
                           f"its log is {self.log_path}")

    def _stop_postmaster(self) -> None:
        """Fast shutdown (SIGINT), then immediate (SIGQUIT), then SIGKILL if it still runs."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        postmaster = _pid_file_pid(self.data_dir / "postmaster.pid") or process.pid
        for sig, wait in ((signal.SIGINT, _STOP_TIMEOUT), (signal.SIGQUIT, 10.0), (signal.SIGKILL, 10.0)):
            with contextlib.suppress(ProcessLookupError):
                os.kill(postmaster, sig)
            try:
                process.wait(timeout=wait)  # with setpriv, process *is* the postmaster
                break
            except subprocess.TimeoutExpired:
                continue
        if process.poll() is None:  # runuser did not pass the signal on
            process.kill()
            process.wait()

    def _create_password_role(self) -> None:
        from psycopg import sql

        with self._admin() as conn:
            conn.execute("SET password_encryption = 'scram-sha-256'")  # the default only from PostgreSQL 14
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(PASSWORD_ROLE), sql.Literal(PASSWORD)))

    # -- how to reach it -------------------------------------------------------------------------

    def url(self, dbname: str) -> str:
        """The superuser's URL of ``dbname`` over 127.0.0.1 (no password needed)."""
        return f"postgresql://{self.superuser}@{self.host}:{self.port}/{dbname}"

    def socket_url(self, dbname: str) -> str:
        """The superuser's URL of ``dbname`` over the Unix socket (libpq's ``host=`` parameter
        naming the socket's folder)."""
        return f"postgresql://{self.superuser}@/{dbname}?host={quote(str(self.socket_dir), safe='/')}&port={self.port}"

    def password_url(self, dbname: str, password: str = PASSWORD) -> str:
        """``PASSWORD_ROLE``'s URL of ``dbname`` over 127.0.0.1 with ``password`` in it."""
        return f"postgresql://{PASSWORD_ROLE}:{quote(password, safe='')}@{self.host}:{self.port}/{dbname}"


class ExistingPostgresServer(_Databases):
    """A server someone else runs (``LIGHTML_TEST_POSTGRES``): the tests create and drop their
    databases there and leave everything else alone; it is not ours to restart, and its socket
    and roles are not known."""

    def __init__(self, url: str) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("postgresql", "postgres"):
            raise ValueError(f"{ENV_URL} must be a postgresql:// URL, not {parts.scheme or url!r}")
        self._parts = parts
        self._created: set[str] = set()

    def __repr__(self) -> str:
        return f"ExistingPostgresServer({self._parts.hostname}:{self._parts.port or 5432})"

    def unsupported(self, feature: str) -> str | None:
        """Why this server cannot do ``feature`` ("restart", "socket", "password")."""
        return {
            "restart": f"{ENV_URL} names an existing server; only a throwaway one is restarted by the tests",
            "socket": f"{ENV_URL} names an existing server; its Unix socket is not known",
            "password": f"{ENV_URL} names an existing server; the tests' password role exists only on a throwaway one",
        }.get(feature)

    def start(self) -> None:
        """Check that the server answers (a clear error now, not in every test)."""
        with self._admin():
            pass

    def stop(self) -> None:
        """Drop the databases the tests created and did not drop; the server keeps running."""
        for name in list(self._created):
            self.drop_database(name)

    def restart(self) -> None:
        raise NotSupportedHere(self.unsupported("restart"))

    def url(self, dbname: str) -> str:
        """The URL of ``LIGHTML_TEST_POSTGRES`` with ``dbname`` as its database."""
        return urlunsplit(self._parts._replace(path="/" + dbname))

    def socket_url(self, dbname: str) -> str:
        raise NotSupportedHere(self.unsupported("socket"))

    def password_url(self, dbname: str, password: str = PASSWORD) -> str:
        raise NotSupportedHere(self.unsupported("password"))


def _pid_file_lines(pid_file: Path) -> list[str]:
    try:
        return pid_file.read_text().splitlines()
    except (FileNotFoundError, PermissionError):
        return []


def _pid_file_status(pid_file: Path) -> str | None:
    """The postmaster's state from postmaster.pid's 8th line ("starting", "ready", "stopping");
    what ``pg_ctl -w`` waits for."""
    lines = _pid_file_lines(pid_file)
    return lines[7].strip() if len(lines) >= 8 else None


def _pid_file_pid(pid_file: Path) -> int | None:
    lines = _pid_file_lines(pid_file)
    return int(lines[0]) if lines and lines[0].strip().isdigit() else None

