"""What the tests share, in every folder (a folder's own conftest.py adds what only it uses).

- ``verify_at_teardown``: a registry checked with ``lightml.verify`` when the test ends. Every
  registry a shared fixture makes is checked so: a test that leaves its tables disagreeing
  with its log fails (``@pytest.mark.tampered`` on a test that writes behind the log on purpose).
- Registries: ``lineage`` (base -> sft -> dpo with per-sample scores), ``twice`` (a model
  re-evaluated in a second run), ``make_small_registry`` (one model, its child, a checkpoint);
  ``lm_eval_results`` (a copy of real lm-eval output) and ``metrics_of`` (a model's stored values).
- Both handle flavours through one adapter: ``open_handle`` runs each test that takes it on
  ``LightMLHandle`` and on ``AsyncLightMLHandle``; ``db`` is the test's registry path.
- The CLI: ``cli`` runs ``lightml.cli.main.main(argv)`` in this process as a fresh
  ``python -m lightml`` would (``LIGHTML_CLI_TESTS=process`` runs each as a real process
  instead, to check that the two agree); ``cli_process`` always starts a process;
  ``assert_user_error`` is the CLI's rule for a user error.
- ``as_an_older_tool``: a read table written directly, as a tool without the log would have.

(Over 400 lines: pytest takes the fixtures every folder shares from this one file; its
sections do not depend on each other.)
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import io
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import traceback
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from registries import build_lineage, skip_if_sqlite_only, verify_registry  # tests/registries.py

from lightml import AsyncLightMLHandle, LightMLHandle

DATA = Path(__file__).resolve().parent / "data"  # real lm-eval outputs (tests/data/README.md)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "tampered: the test writes behind the log on purpose; its registries are not verified at teardown")
    config.addinivalue_line(
        "markers", "sqlite_only(why): a test of a SQLite file's own behaviour; the store fixture skips its PostgreSQL case")


# -- PostgreSQL: a throwaway server for the run, a fresh database per test ---------------------


@pytest.fixture(scope="session")
def postgres_server():
    """The PostgreSQL server of this test run (``tests/postgres_server.py``: a cluster in a
    temporary folder, or the one ``LIGHTML_TEST_POSTGRES`` names); the test skips, saying
    why, where there is none."""
    from postgres_server import postgres_unavailable_reason, server_for_tests

    reason = postgres_unavailable_reason()
    if reason is not None:
        pytest.skip(reason)
    with server_for_tests() as server:
        yield server


@pytest.fixture
def postgres_url(postgres_server, request) -> Iterator[str]:
    """The URL of a new, empty PostgreSQL database, dropped when the test ends."""
    url = postgres_server.create_database(request.node.name)
    yield url
    postgres_server.drop_database(url)


# -- verify after every test ------------------------------------------------------------------


@pytest.fixture
def verify_at_teardown(request: pytest.FixtureRequest) -> Iterator[Callable[[Path], Path]]:
    """``verify_at_teardown(path)`` returns ``path``; when the test ends, a registry there
    must pass ``verify_registry``."""
    paths: list[Path | str] = []

    def register(path: Path) -> Path:
        paths.append(path)
        return path

    yield register
    if request.node.get_closest_marker("tampered"):
        return
    for path in paths:
        verify_registry(path)


@pytest.fixture(params=["sqlite", "postgresql"])
def any_engine_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The test's registry on each storage engine: the path of a SQLite file (not created),
    or the URL of a new PostgreSQL database of the run's server (dropped after the test).
    After the test, a registry there must pass ``verify_registry`` (unless the test is
    marked ``tampered``); a test marked ``sqlite_only`` skips its PostgreSQL case."""
    server = None
    if request.param == "sqlite":
        db = str(tmp_path / "reg.db")
    else:
        skip_if_sqlite_only(request)
        server = request.getfixturevalue("postgres_server")
        db = server.create_database(request.node.name)
    try:
        yield db
        if not request.node.get_closest_marker("tampered"):
            verify_registry(db)
    finally:
        if server is not None:
            server.drop_database(db)


# -- the lineage registry ---------------------------------------------------------------------


class LineageScores(NamedTuple):
    """The lineage's per-sample scores: 100 documents; base is right on 0..59, sft on 10..79
    (so only_a = 10, only_b = 20)."""

    base_acc: list[int]
    sft_acc: list[int]
    base_f1: list[float]
    sft_f1: list[float]


LINEAGE_SCORES = LineageScores(
    base_acc=[1] * 60 + [0] * 40,
    sft_acc=[0] * 10 + [1] * 70 + [0] * 20,
    base_f1=[0.5 + 0.001 * i for i in range(100)],
    sft_f1=[0.6 + 0.001 * i for i in range(100)],
)


@pytest.fixture
def lineage_scores() -> LineageScores:
    return LINEAGE_SCORES


@pytest.fixture
def lineage(tmp_path: Path, verify_at_teardown) -> Path:
    """Run r1: base -> sft -> dpo; eval/acc with per-sample scores on all three (dpo: 90 of
    them), eval/f1 with scores on base and sft, eval/loss, knowledge/mmlu, sft's eval/bleu, and
    a checkpoint of sft (no metrics). Run r2: its own base (acc 0.5, with scores) and solo."""
    db = tmp_path / "reg.db"
    build_lineage(db, LINEAGE_SCORES)
    return verify_at_teardown(db)


@pytest.fixture
def twice(tmp_path: Path, verify_at_teardown) -> Path:
    """``llama-1b-sft`` re-evaluated: in runs eval-1 and eval-2; base and dpo only in eval-1
    (base -> llama-1b-sft -> dpo, eval/acc with scores). A hub id as a model name (run hub), and
    a run named like its prefix (meta-llama) holding a model named like its rest."""
    sft, hub = "llama-1b-sft", "meta-llama/Llama-3.2-1B"
    db = tmp_path / "twice.db"
    with LightMLHandle(db, "eval-1") as h:
        h.register_model("base", "org/base")
        h.register_model(sft, "org/sft", parent_name="base")
        h.register_model("dpo", "org/dpo", parent_name=sft)
        for model, acc in (("base", 0.3), (sft, 0.4), ("dpo", 0.45)):
            h.log_model_metric(model, "eval", "acc", acc, scores=[1] * int(acc * 100) + [0] * (100 - int(acc * 100)))
    with LightMLHandle(db, "eval-2") as h:
        h.register_model(sft, "org/sft")
        h.log_model_metric(sft, "eval", "acc", 0.42, scores=[1] * 42 + [0] * 58)
    with LightMLHandle(db, "hub") as h:
        h.register_model(hub, hub)
        h.log_model_metric(hub, "eval", "acc", 0.5)
    with LightMLHandle(db, "meta-llama") as h:
        h.register_model("Llama-3.2-1B", "org/other")
        h.log_model_metric("Llama-3.2-1B", "eval", "acc", 0.6)
    return verify_at_teardown(db)


@pytest.fixture
def make_small_registry(verify_at_teardown) -> Callable[[Path], Path]:
    """``make_small_registry(path)``: run 1 'r', model 1 'm' and its child 2 'child',
    checkpoint 1 of m at step 100, metrics 1-2 of m (fam/acc with scores [1, 0], fam/f1) and
    3 of the checkpoint (fam/acc)."""

    def make(db: Path) -> Path:
        with LightMLHandle(db, "r") as h:
            h.register_model("m", "hub/m")
            h.register_model("child", "hub/child", parent_name="m")
            ck = h.register_checkpoint("m", 100, "hub/m/ck100")
            h.log_model_metric("m", "fam", "acc", 0.5, scores=[1, 0])
            h.log_model_metric("m", "fam", "f1", 0.25)
            h.log_checkpoint_metric(ck, "fam", "acc", 0.4)
        return verify_at_teardown(db)

    return make


@pytest.fixture
def lm_eval_results(tmp_path: Path) -> Path:
    """A writable copy of the lm-eval 0.4.13 outputs in tests/data (folders dummy-a .. dummy-d)."""
    return Path(shutil.copytree(DATA / "lm_eval_0413", tmp_path / "results"))


@pytest.fixture
def metrics_of() -> Callable[[Path, str], dict[tuple[str, str], float]]:
    """``metrics_of(db, model)``: {(family, metric): value} of a model's own metrics (any run)."""

    def read(db: Path, model: str) -> dict[tuple[str, str], float]:
        with sqlite3.connect(db) as conn:
            return {(f, m): v for f, m, v in conn.execute(
                "SELECT x.family, x.metric_name, x.value FROM metrics x JOIN model mo ON mo.id = x.model_id "
                "WHERE mo.model_name = ?", (model,))}

    return read


@pytest.fixture
def as_an_older_tool() -> Callable[[Path, str, tuple], None]:
    """``as_an_older_tool(db, sql, params)``: write a read table directly, as a tool without the
    log would have (before the guard on the read tables existed: its marker row lets this one
    statement through)."""

    def write(db: Path, sql: str, params: tuple) -> None:
        conn = sqlite3.connect(db)
        try:
            marker = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'lightml_writing'").fetchone()
            if marker:
                conn.execute("INSERT INTO lightml_writing VALUES (1)")
            conn.execute(sql, params)
            if marker:
                conn.execute("DELETE FROM lightml_writing")
            conn.commit()
        finally:
            conn.close()

    return write


# -- both handle flavours ---------------------------------------------------------------------


class AsyncAdapter:
    """``AsyncLightMLHandle`` with the sync handle's face: each coroutine method is run to
    completion on one private event loop, so that one test body checks both I/O layers."""

    def __init__(self, db, run_name=None, **kwargs):
        self._loop = asyncio.new_event_loop()
        self._handle = AsyncLightMLHandle(db, run_name, **kwargs)
        try:
            self._run(self._handle.open())
        except BaseException:
            self._loop.close()
            raise

    def _run(self, coro):
        return self._loop.run_until_complete(coro)

    def __getattr__(self, name):
        attr = getattr(self._handle, name)
        if inspect.iscoroutinefunction(attr):
            @functools.wraps(attr)
            def call(*args, **kwargs):
                return self._run(attr(*args, **kwargs))
            return call
        return attr

    def close(self):
        self._run(self._handle.close())

    def __enter__(self):
        self._run(self._handle.__aenter__())
        return self

    def __exit__(self, *exc):
        self._run(self._handle.__aexit__(*exc))

    def dispose(self):
        if not self._loop.is_closed():
            self.close()
            self._loop.run_until_complete(self._loop.shutdown_default_executor())
            self._loop.close()


@pytest.fixture
def db(tmp_path: Path, verify_at_teardown) -> Path:
    """The registry file of the test (not created); after the test, its tables must match its log."""
    return verify_at_teardown(tmp_path / "reg.db")


@pytest.fixture(params=["sync", "async"])
def flavour(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture
def open_handle(flavour: str, db: Path) -> Iterator[Callable[..., object]]:
    """``open_handle(path, run_name=None, **kw)``: a handle of the test's flavour, closed after
    the test (before ``db`` is verified)."""
    opened: list[object] = []

    def open_(path, run_name=None, **kwargs):
        flavoured = LightMLHandle if flavour == "sync" else AsyncAdapter
        handle = flavoured(path, run_name, **kwargs)
        opened.append(handle)
        return handle

    yield open_
    for handle in opened:
        if isinstance(handle, AsyncAdapter):
            handle.dispose()
        else:
            handle.close()


# -- the CLI ----------------------------------------------------------------------------------


class CliResult(NamedTuple):
    """What one ``lightml`` run left: its exit code and its output, decoded as
    ``subprocess.run(..., text=True)`` decodes a process's (UTF-8, universal newlines)."""

    returncode: int
    stdout: str
    stderr: str


def _as_text(data: bytes) -> str:
    return data.decode("utf-8").replace("\r\n", "\n").replace("\r", "\n")


def run_lightml_process(args: list[str], cwd: Path | None = None, env: dict[str, str | None] | None = None,
                        timeout: float = 120) -> CliResult:
    """``python -m lightml ARGS`` as a real process, stdin empty; ``env`` entries add to this
    process's environment (``None`` removes one)."""
    environ = {k: v for k, v in {**os.environ, **(env or {})}.items() if v is not None}
    done = subprocess.run([sys.executable, "-m", "lightml", *args], capture_output=True, cwd=cwd, env=environ,
                          stdin=subprocess.DEVNULL, timeout=timeout)
    return CliResult(done.returncode, _as_text(done.stdout), _as_text(done.stderr))


def _process_warning_filters() -> None:
    """A fresh interpreter's warning filters (Python's defaults), not pytest's: what the CLI's
    one-line warnings are shown or hidden by."""
    warnings.resetwarnings()
    for category in (ResourceWarning, ImportWarning, PendingDeprecationWarning, DeprecationWarning):
        warnings.simplefilter("ignore", category)
    warnings.filterwarnings("default", category=DeprecationWarning, module="__main__")


def _exit_status(code: object) -> int:
    """The exit status ``sys.exit(code)`` gives a process."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    print(code, file=sys.stderr)
    return 1


def _run_main(argv: list[str]) -> int:
    """``sys.exit(main(argv))`` as ``python -m lightml`` runs it, the exit turned into its status."""
    from lightml.cli.main import main

    try:
        return _exit_status(main(argv))
    except SystemExit as done:  # argparse: --help, --version, usage errors
        return _exit_status(done.code)
    except Exception:  # what Python does with an uncaught exception: the traceback, exit 1
        traceback.print_exc()
        return 1


def _threads_left(before: set[threading.Thread]) -> list[threading.Thread]:
    """Threads a command started and did not stop (a process would have ended them)."""
    left = []
    for thread in threading.enumerate():
        if thread not in before:
            thread.join(timeout=5)
            if thread.is_alive():
                left.append(thread)
    return left


@pytest.fixture
def cli(monkeypatch: pytest.MonkeyPatch) -> Callable[..., CliResult]:
    """``cli(*args, cwd=None, env=None)``: ``lightml ARGS`` run in this process, as a fresh
    process would run it: stdin empty and not a terminal, stdout/stderr UTF-8 streams that are
    not terminals (so no colour), ``env`` and ``cwd`` set for the call only, Python's default
    warning filters, and ``SystemExit``/uncaught exceptions turned into the exit status. A
    command that leaves a thread running fails the test. With ``LIGHTML_CLI_TESTS=process``
    in the environment each call is a real ``python -m lightml`` instead."""
    as_process = os.environ.get("LIGHTML_CLI_TESTS") == "process"

    def run(*args: object, cwd: Path | None = None, env: dict[str, str | None] | None = None) -> CliResult:
        argv = [str(arg) for arg in args]
        if as_process:
            return run_lightml_process(argv, cwd=cwd, env=env)
        stdout, stderr = io.BytesIO(), io.BytesIO()
        # kept here until the output is read: a text stream closes its buffer when it goes
        out = io.TextIOWrapper(stdout, encoding="utf-8", errors="strict", write_through=True)
        err = io.TextIOWrapper(stderr, encoding="utf-8", errors="backslashreplace", write_through=True)
        before = set(threading.enumerate())
        with monkeypatch.context() as patch:
            if cwd is not None:
                patch.chdir(cwd)
            for name, value in (env or {}).items():
                if value is None:
                    patch.delenv(name, raising=False)
                else:
                    patch.setenv(name, value)
            if "COLUMNS" not in os.environ:  # a process whose stdout is a pipe: 80 columns
                patch.setenv("COLUMNS", "80")
            patch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(), encoding="utf-8"))
            patch.setattr(sys, "stdout", out)
            patch.setattr(sys, "stderr", err)
            with warnings.catch_warnings():
                _process_warning_filters()
                returncode = _run_main(argv)
            out.flush()
            err.flush()
        left = _threads_left(before)
        assert not left, f"`lightml {' '.join(argv)}` left threads running: {left}"
        return CliResult(returncode, _as_text(stdout.getvalue()), _as_text(stderr.getvalue()))

    return run


@pytest.fixture
def cli_process() -> Callable[..., CliResult]:
    """``cli_process(*args, cwd=None, env=None, timeout=120)``: ``python -m lightml ARGS`` as a
    real process, for what only a process shows (a wall-clock bound, a server that must start)."""

    def run(*args: object, cwd: Path | None = None, env: dict[str, str | None] | None = None,
            timeout: float = 120) -> CliResult:
        return run_lightml_process([str(arg) for arg in args], cwd=cwd, env=env, timeout=timeout)

    return run


@pytest.fixture
def assert_user_error() -> Callable[..., None]:
    """``assert_user_error(result, message=None)``: exit 2, one line on stderr (``message`` in
    it), never a traceback."""

    def check(result: CliResult, message: str | None = None) -> None:
        assert result.returncode == 2, result
        assert "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
        if message is not None:
            assert message in result.stderr, result.stderr

    return check
