"""Log and storage safety: old clients writing behind the log, data left in the -wal,
backups, outputs that would overwrite the registry, read-only media, damaged logs, and
opening a handle while another process holds the write lock."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import projections
from lightml import AsyncLightMLHandle, LightMLHandle
from lightml.log.backup import backup
from lightml.errors import ConflictError, InvalidInputError, NotARegistryError
from lightml.report.export import export_excel
from lightml.ingest.migrate import migrate
from lightml.log.replay import replay, verify

RUN = "r"


def lightml(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lightml", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=120)


def dump(db: Path) -> dict[str, list]:
    """Every row of the log and of every read table (sorted), read without LightML."""
    with contextlib.closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        return {table: sorted(conn.execute(f'SELECT * FROM "{table}"').fetchall(), key=repr)
                for table in ["events", *projections.READ_TABLES]}


def make_registry(db: Path) -> Path:
    """Run 1 'r', model 1 'm', checkpoint 1, metrics 1-2 (1 with scores)."""
    with LightMLHandle(db, RUN) as h:
        h.register_model("m", "hub/m")
        h.register_model("child", "hub/child", parent_name="m")
        ck = h.register_checkpoint("m", 100, "hub/m/ck100")
        h.log_model_metric("m", "fam", "acc", 0.5, scores=[1, 0])
        h.log_model_metric("m", "fam", "f1", 0.25)
        h.log_checkpoint_metric(ck, "fam", "acc", 0.4)
    return db


# LightML 1.4's own DDL (database.py), and rows as its handle writes them.
V14_DDL = """
CREATE TABLE run (id INTEGER PRIMARY KEY, run_name TEXT NOT NULL UNIQUE, description TEXT, metadata TEXT,
                  created_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP);
CREATE TABLE model (id INTEGER PRIMARY KEY, model_name TEXT NOT NULL, path TEXT NOT NULL, parent_id INTEGER,
                    notes TEXT, hidden INTEGER NOT NULL DEFAULT 0, run_id INTEGER NOT NULL,
                    FOREIGN KEY(parent_id) REFERENCES model(id) ON DELETE SET NULL,
                    FOREIGN KEY(run_id) REFERENCES run(id) ON DELETE CASCADE, UNIQUE(model_name, run_id));
CREATE TABLE checkpoint (id INTEGER PRIMARY KEY, model_id INTEGER NOT NULL, step INTEGER NOT NULL,
                         path TEXT NOT NULL, created_at TEXT NOT NULL,
                         FOREIGN KEY(model_id) REFERENCES model(id) ON DELETE CASCADE);
CREATE TABLE registry_schema (family TEXT NOT NULL, metric_name TEXT NOT NULL, PRIMARY KEY (family, metric_name));
CREATE TABLE metrics (id INTEGER PRIMARY KEY, model_id INTEGER, checkpoint_id INTEGER, family TEXT NOT NULL,
                      metric_name TEXT NOT NULL, value REAL NOT NULL,
                      FOREIGN KEY(model_id) REFERENCES model(id) ON DELETE CASCADE,
                      FOREIGN KEY(checkpoint_id) REFERENCES checkpoint(id) ON DELETE CASCADE);
CREATE TABLE detailed_scores (metric_id INTEGER NOT NULL PRIMARY KEY, scores TEXT NOT NULL,
                              n_samples INTEGER NOT NULL,
                              FOREIGN KEY(metric_id) REFERENCES metrics(id) ON DELETE CASCADE);
INSERT INTO run (id, run_name, created_at) VALUES (1, 'r', '2024-01-01 00:00:00');
INSERT INTO model (id, model_name, path, parent_id, run_id) VALUES (1, 'm', 'hub/m', NULL, 1);
INSERT INTO model (id, model_name, path, parent_id, run_id) VALUES (2, 'child', 'hub/child', 1, 1);
INSERT INTO checkpoint VALUES (1, 1, 100, 'hub/m/ck100', '2024-01-01T00:00:00');
INSERT INTO metrics VALUES (1, 1, NULL, 'fam', 'acc', 0.5);
INSERT INTO metrics VALUES (2, 1, NULL, 'fam', 'f1', 0.25);
INSERT INTO metrics VALUES (3, NULL, 1, 'fam', 'acc', 0.4);
INSERT INTO detailed_scores VALUES (1, '[1, 0]', 2);
"""


def make_migrated_registry(db: Path) -> Path:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.executescript(V14_DDL)
    assert migrate(db).migrated
    return db


# The statements a LightML 1.x client issues (1.4.1: metrics.py, registry.py, checkpoints.py,
# database.py), with the parameters it would bind.
OLD_CLIENT_SQL = {
    "insert metric": ("INSERT INTO metrics (model_id, checkpoint_id, family, metric_name, value) VALUES (?, ?, ?, ?, ?)",
                      (1, None, "fam", "sneaky", 0.9)),
    "update metric": ("UPDATE metrics SET value = ? WHERE id = ?", (0.99, 1)),
    "replace scores": ("INSERT OR REPLACE INTO detailed_scores (metric_id, scores, n_samples) VALUES (?, ?, ?)",
                       (1, "[1, 1]", 2)),
    "insert run": ("INSERT OR IGNORE INTO run (run_name) VALUES (?)", ("old-client",)),
    "insert model": ("INSERT OR IGNORE INTO model (model_name, path, parent_id, run_id) VALUES (?, ?, ?, ?)",
                     ("old", "hub/old", None, 1)),
    "insert checkpoint": ("INSERT INTO checkpoint (model_id, step, path, created_at) VALUES (?, ?, ?, ?)",
                          (1, 200, "hub/m/ck200", "2024-01-02T00:00:00")),
    "insert schema rule": ("INSERT OR IGNORE INTO registry_schema (family, metric_name) VALUES (?, ?)",
                           ("fam", "acc")),
    "delete model": ("DELETE FROM model WHERE id = ?", (1,)),
    "delete model by name": ("DELETE FROM model WHERE model_name = ?", ("child",)),
    "rename model": ("UPDATE model SET model_name = ? WHERE model_name = ?", ("renamed", "m")),
    "set notes": ("UPDATE model SET notes = ? WHERE model_name = ?", ("hello", "m")),
    "delete run": ("DELETE FROM run WHERE run_name = ?", ("r",)),
}


@pytest.mark.parametrize("statement", sorted(OLD_CLIENT_SQL))
@pytest.mark.parametrize("kind", ["new", "migrated"])
def test_old_client_statements_fail_with_the_way_out_and_leave_nothing(tmp_path, kind, statement):
    db = tmp_path / "reg.db"
    (make_registry if kind == "new" else make_migrated_registry)(db)
    before = dump(db)
    sql, params = OLD_CLIENT_SQL[statement]
    with contextlib.closing(sqlite3.connect(db)) as conn:  # as LightML 1.x connects
        conn.execute("PRAGMA foreign_keys = ON")
        with pytest.raises(sqlite3.DatabaseError) as info:
            conn.execute(sql, params)
            conn.commit()
    message = str(info.value)
    assert "lightml migrate" in message and "upgrade light-ml-registry" in message and "1.x" in message
    assert dump(db) == before
    assert verify(db).ok


def _drop_guards(db: Path) -> None:
    """Make the registry look like one written before the guard existed."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' "
                                    "AND name LIKE 'lightml_guard_%'").fetchall():
            conn.execute(f'DROP TRIGGER "{name}"')
        conn.execute("DROP TABLE lightml_writing")
        conn.commit()


def _old_client_insert(db: Path, name: str = "sneaky") -> None:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("INSERT INTO metrics (model_id, checkpoint_id, family, metric_name, value) "
                     "VALUES (1, NULL, 'fam', ?, 0.9)", (name,))
        conn.commit()


def test_registry_from_before_the_guard_gets_it_when_a_writer_opens_it(tmp_path):
    db = make_registry(tmp_path / "reg.db")
    _drop_guards(db)
    assert lightml("list", "--db", str(db)).returncode == 0  # a read-only command does not add it ...
    _old_client_insert(db, "before")  # ... so a 1.x client still could (this is the situation)
    LightMLHandle(db, RUN).close()  # a writer's open adds the guard
    with pytest.raises(sqlite3.DatabaseError, match="lightml migrate"):
        _old_client_insert(db, "after")
    with LightMLHandle(db, RUN) as h:
        assert "after" not in [r["metric"] for r in h.search("m", "fam")]


def test_replay_in_place_refuses_rows_the_log_does_not_explain_unless_forced(tmp_path):
    db = make_registry(tmp_path / "reg.db")
    assert replay(db).events_applied > 0  # tables the log explains: no force needed
    _drop_guards(db)  # an unguarded registry, written to by a 1.x client
    _old_client_insert(db)
    before = dump(db)
    with pytest.raises(ConflictError, match="sneaky") as info:
        replay(db)
    assert "metrics" in str(info.value) and "force" in str(info.value)
    assert dump(db) == before
    cli = lightml("replay", "--db", str(db))
    assert cli.returncode == 2, cli
    assert len(cli.stderr.strip().splitlines()) == 1 and "sneaky" in cli.stderr
    assert dump(db) == before
    forced = lightml("replay", "--db", str(db), "--force")
    assert forced.returncode == 0, forced.stderr
    assert "sneaky" not in repr(dump(db)["metrics"])
    assert verify(db).ok
    with pytest.raises(sqlite3.DatabaseError, match="lightml migrate"):  # the rebuild brought the guard
        _old_client_insert(db)
    with LightMLHandle(db, RUN) as h:  # and LightML itself still writes every kind of row
        h.add_schema_rules([("fam", "acc"), ("fam", "f1"), ("fam", "new")])
        h.log_model_metric("m", "fam", "acc", 0.7, force=True, scores=[1, 1])
        h.set_notes("m", "base model")
        h.rename_model("child", "kid")
        h.delete_model("kid")
        h.restore_model("kid")
        h.register_checkpoint("kid", 5, "hub/child/5")
    assert verify(db).ok


# -- data left in the -wal ------------------------------------------------------------------

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


def test_a_read_command_folds_a_wal_left_by_a_process_that_died(tmp_path):
    db = tmp_path / "nc.db"
    crash = WRITE_WITHOUT_CLOSING.format(ending="import os; os._exit(0)")  # no atexit, no close
    subprocess.run([sys.executable, "-c", crash, str(db)], check=True, timeout=120)
    assert Path(f"{db}-wal").stat().st_size > 0  # the situation: the data is in the -wal
    result = lightml("list", "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert _metric_count_of_copy(db, tmp_path) == 200


# -- backup -----------------------------------------------------------------------------------

WRITER_LOOP = textwrap.dedent("""
    import sys
    from lightml import LightMLHandle
    with LightMLHandle(sys.argv[1], "w") as h:
        h.register_model("busy", "hub/busy")
        print("writing", flush=True)
        for i in range(3000):
            h.log_model_metric("busy", "fam", f"metric_{i}", i / 10000)
""")


def test_backup_while_another_process_writes_is_one_complete_consistent_file(tmp_path):
    db = make_registry(tmp_path / "reg.db")
    writer = subprocess.Popen([sys.executable, "-c", WRITER_LOOP, str(db)], stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "writing"
        out = tmp_path / "copies" / "copy.db"
        out.parent.mkdir()
        result = lightml("backup", "--db", str(db), "--out", str(out), "--json")
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
def test_backup_refuses_the_registry_its_files_and_existing_files(tmp_path, target):
    db = make_registry(tmp_path / "reg.db")
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


# -- export onto the registry -----------------------------------------------------------------

@pytest.mark.parametrize("target", ["itself", "wal", "shm", "hardlink", "symlink", "spelled"])
def test_export_refuses_to_write_over_the_registry_or_its_files(tmp_path, target):
    db = make_registry(tmp_path / "reg.db")
    with LightMLHandle(db, RUN) as h:
        h.register_model("keeps", "hub/keeps")
    out = _registry_file(db, target, tmp_path)
    before = dump(db)
    with pytest.raises(InvalidInputError, match="registry"):
        export_excel(db, out)
    cli = lightml("export", "--db", str(db), "--output", str(out))
    assert cli.returncode == 2 and len(cli.stderr.strip().splitlines()) == 1, cli
    assert dump(db) == before and verify(db).ok


def test_export_and_replay_refuse_a_migration_backup(tmp_path):
    db = make_migrated_registry(tmp_path / "reg.db")
    (original,) = tmp_path.glob("reg.backup-*.db")
    kept = original.read_bytes()
    with pytest.raises(InvalidInputError):
        export_excel(db, original)
    assert lightml("replay", "--db", str(db), "--out", str(original)).returncode == 2
    assert original.read_bytes() == kept


def test_replay_out_and_backup_refuse_files_whose_own_wal_would_be_the_registry(tmp_path):
    db = make_registry(tmp_path / "reg.db")
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


# -- read-only media --------------------------------------------------------------------------

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


def test_registry_on_read_only_media_is_read_with_one_warning(tmp_path):
    if not _read_only_mounts_work(tmp_path):
        pytest.skip("no read-only bind mount possible here (needs unshare -rm and mount)")
    media = tmp_path / "media"
    media.mkdir()
    db = make_registry(media / "reg.db")
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


def test_readonly_uri_on_writable_media_is_a_plain_read_only_uri(tmp_path, capfd):
    from lightml.log.store import readonly_uri

    db = make_registry(tmp_path / "reg.db")
    assert readonly_uri(db) == db.resolve().as_uri() + "?mode=ro"
    assert "read-only" not in capfd.readouterr().err


# -- a damaged log ------------------------------------------------------------------------------

def _damage(db: Path, seq: int, payload_sql: str) -> None:
    """Change one event's payload, as a broken tool would: past the append-only triggers."""
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("DROP TRIGGER events_append_only_update")
        conn.execute(f"UPDATE events SET payload = {payload_sql} WHERE seq = ?", (seq,))
        conn.commit()


def _metric_event(db: Path) -> tuple[int, str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT seq, type FROM events WHERE type = 'metric_inserted' ORDER BY seq LIMIT 1").fetchone()


DAMAGE = {
    "not json": "'{\"model_id\": 1, '",
    "wrong shape": "'{\"model_id\": 1, \"metrics\": 5}'",
    "not an object": "'[1, 2, 3]'",
    "value as text": "json_set(payload, '$.metrics[0].value', 'oops')",
    "missing key": "json_remove(payload, '$.metrics[0].metric_id')",
    "value infinite": "json_replace(payload, '$.metrics[0].value', json('1e999'))",
    "id beyond 64 bits": "json_replace(payload, '$.model_id', json('99999999999999999999'))",
    "id as text": "json_replace(payload, '$.model_id', 'one')",
    "scores not json": "json_replace(payload, '$.metrics[0].scores', 'not json')",
    "scores not a list": "json_replace(payload, '$.metrics[0].scores', '{\"a\": 1}')",
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_event_is_named_and_no_table_is_built_from_it(tmp_path, damage):
    db = make_registry(tmp_path / "reg.db")
    seq, event_type = _metric_event(db)
    _damage(db, seq, DAMAGE[damage])
    before = dump(db)
    named = f"#{seq} ({event_type})"

    result = verify(db)
    assert not result.ok and any(named in line for line in result.differences["events"])
    cli_verify = lightml("verify", "--db", str(db))
    assert cli_verify.returncode == 1 and named in cli_verify.stderr

    with pytest.raises(NotARegistryError, match=f"#{seq} \\({event_type}\\)"):
        replay(db)
    cli = lightml("replay", "--db", str(db), "--force")
    assert cli.returncode == 2 and len(cli.stderr.strip().splitlines()) == 1 and named in cli.stderr, cli
    assert dump(db) == before  # untouched, the text value included
    out = tmp_path / "past.db"
    with pytest.raises(NotARegistryError, match=f"#{seq}"):
        replay(db, out=out)
    assert not out.exists()


def test_an_event_whose_type_was_changed_is_named(tmp_path):
    db = make_registry(tmp_path / "reg.db")
    seq, _ = _metric_event(db)
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("DROP TRIGGER events_append_only_update")
        conn.execute("UPDATE events SET type = 'metric_exploded' WHERE seq = ?", (seq,))
        conn.commit()
    before = dump(db)
    with pytest.raises(NotARegistryError, match=f"#{seq}.*metric_exploded"):
        replay(db)
    with pytest.raises(NotARegistryError, match=f"#{seq}.*metric_exploded"):
        verify(db)
    assert dump(db) == before


# -- opening while another process holds the lock ----------------------------------------------

LOCK_HOLDER = textwrap.dedent("""
    import sqlite3, sys, time
    conn = sqlite3.connect(sys.argv[1], isolation_level=None)
    conn.execute("BEGIN IMMEDIATE")
    print("locked", flush=True)
    time.sleep(60)
""")


@pytest.mark.parametrize("flavour", ["sync", "async"])
def test_opening_an_existing_run_does_not_wait_for_the_write_lock(tmp_path, flavour):
    db = make_registry(tmp_path / "reg.db")
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


# -- LightML 1.4's default run ------------------------------------------------------------------

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
