"""Data left in the -wal (a handle never closed, an idle handle, a process that died), backups
of a live registry, and outputs (backup, export, replay --out) that would overwrite the
registry or one of its files. CLI commands run in this process (``cli``); the writers that
must die or run beside them are processes."""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lightml import LightMLHandle
from lightml.errors import InvalidInputError
from lightml.log.backup import backup
from lightml.log.replay import replay, verify
from lightml.report.export import export_excel


RUN = "r"


# -- data left in the -wal -------------------------------------------------------------------


WRITE_WITHOUT_CLOSING = textwrap.dedent("""
    import sys
    from lightml import LightMLHandle
    h = LightMLHandle(sys.argv[1], "r")
    h.register_model("m", "hub/m")
    for i in range(200):
        h.log_model_metric("m", "fam", f"metric_{{i}}", i / 1000, scores=[1, 0, 1])
    {ending}
""")


def _metric_count_of_copy(db: Path, tmp_path: Path) -> int:
    """Copy the .db alone (as `cp nc.db` does) and count the metrics of the copy."""
    copy = tmp_path / "copy" / "nc.db"
    copy.parent.mkdir(exist_ok=True)
    shutil.copyfile(db, copy)
    try:
        with LightMLHandle(copy, create=False) as h:
            return len(h.search("m", "fam"))
    finally:
        shutil.rmtree(copy.parent)


def test_a_handle_never_closed_leaves_a_complete_db_file_at_exit(tmp_path):
    db = tmp_path / "nc.db"
    subprocess.run([sys.executable, "-c", WRITE_WITHOUT_CLOSING.format(ending=""), str(db)], check=True, timeout=120)
    assert _metric_count_of_copy(db, tmp_path) == 200


def test_an_idle_open_handle_has_folded_the_wal_into_the_db_file(tmp_path):
    db = tmp_path / "nc.db"
    h = LightMLHandle(db, RUN)
    h.register_model("m", "hub/m")
    for i in range(50):
        h.log_model_metric("m", "fam", f"metric_{i}", i / 100)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and Path(f"{db}-wal").stat().st_size:
        time.sleep(0.2)
    assert _metric_count_of_copy(db, tmp_path) == 50  # the handle is still open
    h.log_model_metric("m", "fam", "later", 1.0)  # and still works
    h.close()


def test_a_read_command_folds_a_wal_left_by_a_process_that_died(tmp_path, cli):
    db = tmp_path / "nc.db"
    crash = WRITE_WITHOUT_CLOSING.format(ending="import os; os._exit(0)")  # no atexit, no close
    subprocess.run([sys.executable, "-c", crash, str(db)], check=True, timeout=120)
    assert Path(f"{db}-wal").stat().st_size > 0  # the situation: the data is in the -wal
    result = cli("list", "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert _metric_count_of_copy(db, tmp_path) == 200


# -- backup ----------------------------------------------------------------------------------


WRITER_LOOP = textwrap.dedent("""
    import sys
    from lightml import LightMLHandle
    with LightMLHandle(sys.argv[1], "w") as h:
        h.register_model("busy", "hub/busy")
        print("writing", flush=True)
        for i in range(3000):
            h.log_model_metric("busy", "fam", f"metric_{i}", i / 10000)
""")


def test_backup_while_another_process_writes_is_one_complete_consistent_file(tmp_path, make_small_registry, cli):
    db = make_small_registry(tmp_path / "reg.db")
    writer = subprocess.Popen([sys.executable, "-c", WRITER_LOOP, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "writing"
        out = tmp_path / "copies" / "copy.db"
        out.parent.mkdir()
        result = cli("backup", "--db", str(db), "--out", str(out), "--json")
        assert result.returncode == 0, result.stderr
        assert '"path"' in result.stdout
        still_writing = writer.poll() is None
    finally:
        writer.wait(timeout=120)
    assert still_writing, "the writer finished before the backup: the test did not test a live copy"
    assert sorted(p.name for p in out.parent.iterdir()) == ["copy.db"]  # no -wal/-shm to carry along
    with contextlib.closing(sqlite3.connect(out)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
    assert verify(out).ok  # one snapshot: log and tables agree
    with LightMLHandle(out, RUN) as h:  # and it is a registry that can be written to
        assert h.model_exists("m")
        h.log_model_metric("m", "fam", "after_backup", 1.0)
    assert verify(out).ok


@pytest.mark.parametrize("target", ["itself", "wal", "shm", "existing", "hardlink", "symlink"])
def test_backup_refuses_the_registry_its_files_and_existing_files(tmp_path, target, make_small_registry, dump):
    db = make_small_registry(tmp_path / "reg.db")
    out = _registry_file(db, target, tmp_path)
    before, size = dump(db), db.stat().st_size
    with pytest.raises(InvalidInputError):
        backup(db, out)
    assert dump(db) == before and db.stat().st_size == size


def _registry_file(db: Path, target: str, tmp_path: Path) -> Path:
    """A path that is the registry or one of its files, spelled as ``target`` says."""
    if target == "itself":
        return db
    if target in ("wal", "shm"):
        return Path(f"{db}-{target}")
    if target == "existing":
        other = tmp_path / "other.db"
        other.write_text("keep me")
        return other
    if target == "hardlink":
        os.link(db, tmp_path / "alias.db")
        return tmp_path / "alias.db"
    if target == "symlink":
        (tmp_path / "link.db").symlink_to(db)
        return tmp_path / "link.db"
    if target == "spelled":
        return tmp_path / "." / ".." / tmp_path.name / db.name
    raise AssertionError(target)


# -- outputs onto the registry ---------------------------------------------------------------


@pytest.mark.parametrize("target", ["itself", "wal", "shm", "hardlink", "symlink", "spelled"])
def test_export_refuses_to_write_over_the_registry_or_its_files(tmp_path, target, make_small_registry, dump, cli):
    db = make_small_registry(tmp_path / "reg.db")
    with LightMLHandle(db, RUN) as h:
        h.register_model("keeps", "hub/keeps")
    out = _registry_file(db, target, tmp_path)
    before = dump(db)
    with pytest.raises(InvalidInputError, match="registry"):
        export_excel(db, out)
    cli_result = cli("export", "--db", str(db), "--output", str(out))
    assert cli_result.returncode == 2 and len(cli_result.stderr.strip().splitlines()) == 1, cli_result
    assert dump(db) == before and verify(db).ok


def test_export_and_replay_refuse_a_migration_backup(tmp_path, make_migrated_registry, cli):
    db = make_migrated_registry(tmp_path / "reg.db")
    (original,) = tmp_path.glob("reg.backup-*.db")
    kept = original.read_bytes()
    with pytest.raises(InvalidInputError):
        export_excel(db, original)
    assert cli("replay", "--db", str(db), "--out", str(original)).returncode == 2
    assert original.read_bytes() == kept


def test_replay_out_and_backup_refuse_files_whose_own_wal_would_be_the_registry(tmp_path, make_small_registry, dump):
    db = make_small_registry(tmp_path / "reg.db")
    with pytest.raises(InvalidInputError, match="registry"):
        replay(db, out=f"{db}-wal")
    # A registry named like another file's -wal: writing that file would write into it.
    odd = tmp_path / "odd.db-wal"
    shutil.copyfile(db, odd)
    before = dump(odd)
    for write in (lambda: replay(odd, out=tmp_path / "odd.db"), lambda: backup(odd, tmp_path / "odd.db")):
        with pytest.raises(InvalidInputError, match="registry"):
            write()
        assert dump(odd) == before and not (tmp_path / "odd.db").exists()
