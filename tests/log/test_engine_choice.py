"""Which storage engine a ``db`` string selects (``lightml.log.engine.engine_for``, the one
place that reads it), and what the next engine relies on: the adapter's module is imported
only when a registry of its kind is opened, and a connection says which engine made it."""

from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from lightml import LightMLHandle
from lightml.errors import InvalidInputError
from lightml.log import store
from lightml.log.engine import engine_for, engine_of


def test_a_path_selects_a_sqlite_file_with_home_expanded(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    for db in (tmp_path / "a.db", str(tmp_path / "a.db"), "~/a.db"):
        engine = engine_for(db)
        assert engine.location == str(tmp_path / "a.db")
        conn = engine.connect()
        try:
            assert conn.execute("SELECT sqlite_version()").fetchone()[0] == sqlite3.sqlite_version
        finally:
            conn.close()
    assert engine_for("C:\\registry.db").location == "C:\\registry.db"  # a drive letter is not a URL scheme


@pytest.mark.parametrize("db", ["mysql://user@host/evals", "sqlite:///x.db", "http://host/evals"])
def test_a_url_this_version_has_no_engine_for_is_refused_naming_its_scheme(tmp_path, monkeypatch, db):
    monkeypatch.chdir(tmp_path)
    scheme = db.split("://")[0]
    message = f"unsupported registry {scheme}:// URL: give the path of a SQLite .db file or a postgresql:// URL"
    with pytest.raises(InvalidInputError, match=message):
        engine_for(db)
    with pytest.raises(InvalidInputError, match=message):
        LightMLHandle(db, "r")
    with pytest.raises(InvalidInputError, match=message):
        store.connect_readonly(db)
    assert list(tmp_path.iterdir()) == []  # nothing created (no "mysql:" folder, no file)


@pytest.mark.parametrize("db", ["", None, 42])
def test_a_db_that_is_not_a_path_is_refused(db):
    with pytest.raises(InvalidInputError, match="db must be a path to the registry's .db file, or a postgresql:// URL"):
        engine_for(db)


def test_a_connection_knows_the_engine_that_made_it(tmp_path):
    engine = engine_for(tmp_path / "a.db")
    conn = engine.connect()
    try:
        assert engine_of(conn) is engine
    finally:
        conn.close()
    plain = sqlite3.connect(":memory:")
    try:
        with pytest.raises(TypeError, match="not opened by a LightML storage engine"):
            engine_of(plain)
    finally:
        plain.close()


def test_the_interface_imports_no_adapter_until_a_registry_is_opened():
    """A second engine's driver must cost nothing to a user who never opens such a registry."""
    code = ("import sys, lightml.log.engine; "
            "print(sorted(m for m in sys.modules if m in ('sqlite3', 'aiosqlite') or 'sqlite_engine' in m))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_a_postgresql_url_selects_the_postgresql_engine_and_never_shows_its_password():
    pytest.importorskip("psycopg")
    from lightml.errors import NotARegistryError

    for db in ("postgresql://ana:s3cret@127.0.0.1:1/evals", "postgres://ana:s3cret@127.0.0.1:1/evals?schema=lab"):
        engine = engine_for(db)
        assert type(engine).__name__ == "PostgresEngine"
        assert "s3cret" not in engine.location and "s3cret" not in repr(engine)
        assert engine.location.startswith(db.split("://")[0] + "://ana@127.0.0.1:1/evals")
        with pytest.raises(NotARegistryError, match=r"^cannot connect to postgres(ql)?://ana@127.0.0.1:1/evals") as caught:
            LightMLHandle(db, "r")  # nothing listens on port 1
        assert "s3cret" not in str(caught.value)


@pytest.mark.parametrize("db, problem", [
    ("postgresql://ana@127.0.0.1:5432", "names no database"),
    ("postgresql://ana@127.0.0.1/evals?schema=a;drop", "schema 'a;drop'"),
])
def test_a_postgresql_url_that_cannot_name_a_registry_is_refused(db, problem):
    pytest.importorskip("psycopg")
    with pytest.raises(InvalidInputError, match=problem):
        engine_for(db)


def test_without_the_postgres_extra_a_postgresql_url_is_one_line_naming_it(tmp_path):
    """psycopg is imported only for a PostgreSQL URL; without it the way out is named."""
    code = ("import sys; sys.modules['psycopg'] = None\n"  # as if not installed
            "from lightml.log.engine import engine_for\n"
            "try:\n    engine_for('postgresql://ana@127.0.0.1/evals')\n"
            "except Exception as exc:\n    print(type(exc).__name__, exc)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == ("InvalidInputError a PostgreSQL registry needs the postgres extra: "
                           "pip install 'light-ml-registry[postgres]'")
    cli = subprocess.run([sys.executable, "-c", "import sys; sys.modules['psycopg'] = None\n"
                          "from lightml.cli.main import main; sys.exit(main(['stats', '--db', 'postgresql://a@h/e']))"],
                         capture_output=True, text=True, cwd=tmp_path)
    assert cli.returncode != 0 and "Traceback" not in cli.stderr
    assert "pip install 'light-ml-registry[postgres]'" in cli.stderr and len(cli.stderr.strip().splitlines()) == 1
