"""What only a real ``python -m lightml`` process shows: exit on a closed pipe, the dashboard's
listening socket, a wall-clock bound on a hostile glob, and watch stopping on Ctrl-C (SIGINT)
or when its registry goes away."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from pathlib import Path

from lightml.handle import LightMLHandle


def test_version_flag_and_a_closed_pipe(model_tree: Path, cli_out) -> None:
    assert cli_out("--version").startswith("lightml 2.")
    # `lightml list models | head -1`: the reader stops early; no error, no traceback
    proc = subprocess.Popen([sys.executable, "-m", "lightml", "history", "--db", str(model_tree), "--model", "sft"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # closed before anything is written
    # exit 1 (not all written, as Python advises), and no message
    assert proc.wait(timeout=60) == 1 and proc.stderr.read() == b""


def test_gui_on_a_taken_port_is_one_line(model_tree: Path, assert_user_error, cli_process) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        result = cli_process("gui", "--db", model_tree, "--port", taken.getsockname()[1])
    assert_user_error(result)
    assert "cannot listen on 127.0.0.1" in result.stderr and "dashboard on" not in result.stdout


def test_gui_on_every_address_is_not_blocked_by_an_ipv4_only_listener(model_tree: Path) -> None:
    import socket
    import time

    with socket.socket() as ipv4_only:  # another program on 0.0.0.0:PORT
        ipv4_only.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        ipv4_only.bind(("0.0.0.0", 0))
        ipv4_only.listen(1)
        port = ipv4_only.getsockname()[1]
        proc = subprocess.Popen([sys.executable, "-m", "lightml", "gui", "--db", str(model_tree), "--host", "::",
                                 "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        try:
            # printed after the port check; a refused port would have ended the process instead
            assert proc.stdout.readline().startswith("LightML dashboard on"), proc.communicate()
            time.sleep(1)  # and uvicorn itself binds [::]:PORT too
            assert proc.poll() is None, proc.communicate()
        finally:
            proc.terminate()
            proc.communicate(timeout=30)


# -- a wall-clock bound ----------------------------------------------------------------------


def test_exists_with_a_hostile_glob_answers(twice: Path, cli_process) -> None:
    # LIKE ignores case, so "...B" passes the SQL pre-filter and reaches the case-sensitive check
    pattern = "*a" * 30 + "*b"
    with LightMLHandle(twice, "eval-1") as h:
        h.register_model("a" * 200 + "B", "org/a")
    result = cli_process("exists", "--db", twice, "--model", pattern, timeout=30)
    assert result.returncode == 1 and "no matches" in result.stdout


# -- watch -----------------------------------------------------------------------------------


DATA = Path(__file__).resolve().parents[1] / "data"


def make_registry(db: Path) -> None:
    LightMLHandle(db).close()


def start_watch(db: Path, watched: Path, interval: float) -> subprocess.Popen:
    """`lightml watch` of ``watched`` into run r of ``db`` (which it creates first)."""
    make_registry(db)
    # As a command started from a terminal: Ctrl-C (SIGINT) in its default state. A process
    # inherits an ignored SIGINT (the test runner's, or a shell's for background jobs), and
    # Python then never turns it into KeyboardInterrupt. faulthandler: if it ever does not
    # stop, SIGABRT makes it print where it is (see stop_watch).
    return subprocess.Popen(
        [sys.executable, "-X", "faulthandler", "-m", "lightml", "watch", "--db", str(db), "--run", "r",
         "--path", str(watched), "--interval", str(interval)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def stop_watch(proc: subprocess.Popen) -> tuple[str, str]:
    """Ctrl-C, then its output; a watch still running after 30 s fails with its threads' stacks."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        _, stderr = proc.communicate(timeout=30)
        raise AssertionError(f"watch did not stop on Ctrl-C; where it was:\n{stderr}") from None


def test_watch_imports_new_results_and_stops_on_ctrl_c(tmp_path: Path, metrics_of) -> None:
    watched = tmp_path / "watched"
    watched.mkdir()
    db = tmp_path / "reg.db"
    proc = start_watch(db, watched, 0.2)
    try:
        assert proc.stdout.readline().startswith("Watching")
        shutil.copytree(DATA / "lm_eval_0413" / "dummy-a", watched / "dummy-a")  # an eval job finishing
        line = proc.stdout.readline()
        assert "imported dummy-a: 10 metrics, 4 with per-sample scores (3 files)" in line
    finally:
        stdout, stderr = stop_watch(proc)
    assert proc.returncode == 0, stderr
    assert "Stopped watching." in stdout and "Traceback" not in stderr
    assert metrics_of(db, "dummy-a")[("tiny_mc", "acc")] == 0.15


def test_watch_stops_when_the_registry_goes_away(tmp_path: Path) -> None:
    watched = tmp_path / "watched"
    shutil.copytree(DATA / "lm_eval_0413" / "dummy-a", watched / "dummy-a")
    db = tmp_path / "reg.db"
    proc = start_watch(db, watched, 3)
    try:
        assert proc.stdout.readline().startswith("Watching")
        # printed when the first round is over: the watcher sleeps now, the registry is closed
        assert "imported dummy-a" in proc.stdout.readline()
        for path in tmp_path.glob("reg.db*"):
            path.rename(tmp_path / path.name.replace("reg", "moved"))
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode != 0 and "registry not found" in stderr and "Traceback" not in stderr
    assert not db.exists()  # nothing created in its place
