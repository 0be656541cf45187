"""A registry on read-only media (a read-only bind mount, in a user and mount namespace: each
command runs as a process inside it) is read with one warning, and never shows values older
than its -wal."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest


def _on_read_only_mount(folder: Path, command: list[str]) -> subprocess.CompletedProcess:
    """Run ``command`` where ``folder`` is a read-only bind mount (a user and mount
    namespace: as root, chmod does not stop writes, a read-only mount does)."""
    script = (f'mount --bind "{folder}" "{folder}" && mount -o remount,ro,bind "{folder}" && '
              + " ".join(shlex.quote(part) for part in command))
    return subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=120)


def _read_only_mounts_work(tmp_path: Path) -> bool:
    probe = tmp_path / "probe"
    probe.mkdir()
    if shutil.which("unshare") is None:
        return False
    result = _on_read_only_mount(probe, ["sh", "-c", f"! touch {probe}/x"])
    return result.returncode == 0 and not (probe / "x").exists()


def test_registry_on_read_only_media_is_read_with_one_warning(tmp_path, make_small_registry):
    if not _read_only_mounts_work(tmp_path):
        pytest.skip("no read-only bind mount possible here (needs unshare -rm and mount)")
    media = tmp_path / "media"
    media.mkdir()
    db = make_small_registry(media / "reg.db")
    assert not Path(f"{db}-shm").exists()  # closed: SQLite removed its -wal and -shm
    listed = _on_read_only_mount(media, [sys.executable, "-m", "lightml", "list", "--db", str(db)])
    assert listed.returncode == 0, listed.stderr
    assert "child" in listed.stdout
    warnings = [line for line in listed.stderr.splitlines() if "read-only" in line]
    assert len(warnings) == 1 and "immutable" in warnings[0]
    probe = textwrap.dedent(f"""
        from lightml import LightMLHandle
        from lightml.log import store
        from lightml.log.replay import verify
        print(store.readonly_uri({str(db)!r}))
        print(verify({str(db)!r}).ok)
    """)
    checked = _on_read_only_mount(media, [sys.executable, "-c", probe])
    assert checked.returncode == 0, checked.stderr
    uri, ok = checked.stdout.split()
    assert uri.endswith("?immutable=1") and ok == "True"
    assert checked.stderr.count("read-only") == 1  # once per file and process


KILLED_WITH_DATA_IN_THE_WAL = textwrap.dedent("""
    import os, signal, sys
    from lightml import LightMLHandle
    with LightMLHandle(sys.argv[1], "r") as h:
        h.register_model("m", "hub/m")
        h.log_model_metric("m", "fam", "acc", 0.1)
    h = LightMLHandle(sys.argv[1], "r")
    h.log_model_metric("m", "fam", "acc", 0.9, force=True)
    h.register_model("new", "hub/new")
    os.kill(os.getpid(), signal.SIGKILL)  # before any checkpoint: the last writes are in the -wal only
""")


def test_read_only_media_never_shows_values_older_than_the_wal(tmp_path):
    """A writer killed before it checkpointed leaves its last writes in the -wal; on read-only
    media a read must see them (or refuse), never the older values of the .db alone."""
    if not _read_only_mounts_work(tmp_path):
        pytest.skip("no read-only bind mount possible here (needs unshare -rm and mount)")
    media = tmp_path / "media"
    media.mkdir()
    db = media / "reg.db"
    subprocess.run([sys.executable, "-c", KILLED_WITH_DATA_IN_THE_WAL, str(db)], timeout=60)
    assert Path(f"{db}-wal").stat().st_size > 0
    got = _on_read_only_mount(media, [sys.executable, "-m", "lightml", "metric-get", "--db", str(db),
                                      "--model", "m", "--family", "fam", "--metric", "acc"])
    if got.returncode == 0:
        assert got.stdout.strip() == "0.9", got
    else:  # refused, saying why, in one line
        assert got.returncode == 2 and "-wal" in got.stderr and len(got.stderr.strip().splitlines()) == 1, got


def test_readonly_uri_on_writable_media_is_a_plain_read_only_uri(tmp_path, capfd, make_small_registry):
    from lightml.log.store import readonly_uri

    db = make_small_registry(tmp_path / "reg.db")
    assert readonly_uri(db) == db.resolve().as_uri() + "?mode=ro"
    assert "read-only" not in capfd.readouterr().err
