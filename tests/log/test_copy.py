"""``lightml copy`` / ``copy_registry``: a registry's whole log between any two stores, ids,
times and actors kept, into an empty destination only, all or nothing."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from lightml import LightMLHandle, verify
from lightml.errors import ConflictError, NotARegistryError
from lightml.log import store
from lightml.log.copy import copy_registry

EVENT_ROWS = f"SELECT {store.EVENT_COLUMNS} FROM events ORDER BY seq"


def _events(db) -> list[tuple]:
    conn = store.connect_readonly(db)
    try:
        return [tuple(row) for row in conn.execute(EVENT_ROWS).fetchall()]
    finally:
        conn.close()


def _tables(db) -> dict[str, list[tuple]]:
    """Every read table's rows, as LightML reads them, in a stable order."""
    import projections

    conn = store.connect_readonly(db)
    try:
        return {t: sorted((tuple(r) for r in conn.execute(f'SELECT * FROM "{t}"').fetchall()), key=repr)
                for t in projections.READ_TABLES}
    finally:
        conn.close()


def _laptop_registry(db: Path) -> None:
    """A lineage with scores, an overwrite, a checkpoint, a delete and a restore, two runs."""
    with LightMLHandle(db, "sweep") as h:
        h.register_model("base", "org/base")
        h.register_model("sft", "org/sft", parent_name="base")
        h.log_model_metric("base", "arc", "acc", 0.5, scores=[1, 0, 1, 0], doc_ids=["a", "b", "c", "d"])
        h.log_model_metric("sft", "arc", "acc", 0.75, scores=[1, 1, 1, 0], doc_ids=["a", "b", "c", "d"])
        h.log_model_metric("sft", "mmlu", "acc", 0.61)
        h.log_model_metric("sft", "mmlu", "acc", 0.63, force=True)
        checkpoint = h.register_checkpoint("sft", 100, "org/sft-100")
        h.log_metrics("sft", {"gsm8k": {"em": 0.3, "em_stderr": 0.01}})
        h.log_checkpoint_metric(checkpoint, "gsm8k", "em", 0.28)
        h.set_notes("sft", "héllo — ünïcode ✓")
        h.delete_model("sft")
        h.restore_model("sft")
    with LightMLHandle(db, "other") as h:
        h.register_model("solo", "org/solo")


def test_sqlite_to_postgresql_and_back_keeps_every_event_and_table(tmp_path, postgres_url):
    laptop = tmp_path / "laptop.db"
    _laptop_registry(laptop)
    result = copy_registry(laptop, postgres_url)
    assert result.events == len(_events(laptop)) and result.last_seq == _events(laptop)[-1][0]
    assert _events(postgres_url) == _events(laptop)  # position, payload text, time and actor kept
    assert _tables(postgres_url) == _tables(laptop)
    assert verify(laptop).ok and verify(postgres_url).ok

    home = tmp_path / "home.db"
    copy_registry(postgres_url, home)
    assert _events(home) == _events(laptop) and _tables(home) == _tables(laptop)
    assert verify(home).ok
    with LightMLHandle(postgres_url, "sweep") as h:  # the copy is a registry like any other
        history = h.metric_history("sft", "mmlu", "acc")
        assert [(e["action"], e["value"]) for e in history] == [
            ("inserted", 0.61), ("overwritten", 0.63), ("deleted", None), ("restored", 0.63)]
        assert h.log_model_metric("base", "f", "acc", 0.9) == 1  # and takes new writes


def test_a_destination_that_holds_events_is_refused_and_left_as_it_was(tmp_path, postgres_url):
    laptop, other = tmp_path / "laptop.db", tmp_path / "other.db"
    _laptop_registry(laptop)
    with LightMLHandle(other, "x") as h:
        h.register_model("m", "org/m")
    copy_registry(other, postgres_url)
    before_file, before_pg = _events(other), _events(postgres_url)
    for destination in (other, postgres_url):
        with pytest.raises(ConflictError, match="already holds .* events: copy into an empty registry"):
            copy_registry(laptop, destination)
    assert _events(other) == before_file and _events(postgres_url) == before_pg
    assert verify(other).ok and verify(postgres_url).ok


def test_a_database_with_other_tables_is_refused_and_untouched(tmp_path, postgres_url):
    laptop = tmp_path / "laptop.db"
    _laptop_registry(laptop)
    import psycopg

    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE notes (body text)")
        conn.execute("INSERT INTO notes VALUES ('mine')")
    with pytest.raises(NotARegistryError, match="not a LightML registry: it has tables notes"):
        copy_registry(laptop, postgres_url)
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        tables = {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}
        assert tables == {"notes"}
        assert conn.execute("SELECT body FROM notes").fetchall() == [("mine",)]


def test_a_failed_copy_leaves_no_new_file(tmp_path):
    source = tmp_path / "damaged.db"
    with LightMLHandle(source, "r") as h:
        h.register_model("m", "org/m")
        h.log_model_metric("m", "f", "acc", 0.5)
    with contextlib.closing(sqlite3.connect(source)) as conn:  # a payload no table can be built from
        conn.execute("DROP TRIGGER events_append_only_update")
        conn.execute("UPDATE events SET payload = '{\"model_id\": 1}' WHERE type = 'metric_inserted'")
        conn.commit()
    target = tmp_path / "copy.db"
    with pytest.raises(NotARegistryError, match="damaged log: event #3"):
        copy_registry(source, target)
    assert not target.exists() and not Path(f"{target}-wal").exists()


def test_the_cli_copies_and_never_prints_a_password(tmp_path, postgres_server, cli, assert_user_error):
    from postgres_server import PASSWORD, PASSWORD_ROLE

    if postgres_server.unsupported("password"):
        pytest.skip(postgres_server.unsupported("password"))
    laptop = tmp_path / "laptop.db"
    _laptop_registry(laptop)
    url = postgres_server.create_database("copy-pw", owner=PASSWORD_ROLE)
    try:
        with_password = postgres_server.password_url(url.rsplit("/", 1)[1])
        assert PASSWORD in with_password
        done = cli("copy", "--from", str(laptop), "--to", with_password)
        assert done.returncode == 0, done.stderr
        assert "Copied" in done.stdout and PASSWORD not in done.stdout + done.stderr
        for argv in (("verify", "--db", with_password), ("summary", "--db", with_password),
                     ("copy", "--from", str(laptop), "--to", with_password)):  # the last one fails
            out = cli(*argv)
            assert PASSWORD not in out.stdout + out.stderr, argv
        wrong = with_password.replace(PASSWORD, "not-the-password")
        refused = cli("summary", "--db", wrong)
        assert_user_error(refused)
        assert "not-the-password" not in refused.stderr
    finally:
        postgres_server.drop_database(url)


def test_a_migrated_1x_registry_copies_to_postgresql_with_its_ids(tmp_path, postgres_url):
    from lightml.ingest.migrate import migrate

    legacy = tmp_path / "legacy.db"
    with contextlib.closing(sqlite3.connect(legacy)) as conn:  # LightML 1.x: read tables only
        conn.executescript("""
            CREATE TABLE run (id INTEGER PRIMARY KEY, run_name TEXT, description TEXT, metadata TEXT, created_at TEXT);
            CREATE TABLE model (id INTEGER PRIMARY KEY, model_name TEXT, path TEXT, parent_id INTEGER, run_id INTEGER);
            CREATE TABLE checkpoint (id INTEGER PRIMARY KEY, model_id INTEGER, step INTEGER, path TEXT, created_at TEXT);
            CREATE TABLE metrics (id INTEGER PRIMARY KEY, model_id INTEGER, checkpoint_id INTEGER, family TEXT,
                                  metric_name TEXT, value REAL);
            INSERT INTO run VALUES (3, 'old', NULL, NULL, '2024-01-01 00:00:00');
            INSERT INTO model VALUES (7, 'base', 'org/base', NULL, 3), (9, 'sft', 'org/sft', 7, 3);
            INSERT INTO checkpoint VALUES (4, 9, 500, 'org/sft-500', '2024-01-02 00:00:00');
            INSERT INTO metrics VALUES (11, 7, NULL, 'mmlu', 'acc', 0.4), (15, 9, NULL, 'mmlu', 'acc', 0.5),
                                       (16, NULL, 4, 'mmlu', 'acc', 0.45);""")
        conn.commit()
    migrate(legacy)
    copy_registry(legacy, postgres_url)
    assert _events(postgres_url) == _events(legacy) and _tables(postgres_url) == _tables(legacy)
    ids = {row[1]: row[0] for row in _tables(postgres_url)["model"]}
    assert ids == {"base": 7, "sft": 9}  # the 1.x ids, kept through the migration and the copy
    assert verify(legacy).ok and verify(postgres_url).ok
