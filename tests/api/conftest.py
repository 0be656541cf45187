"""What the handle API tests share. The handle API is one contract on every storage engine, so
``db`` is each test's registry on SQLite (a file, not created) and on PostgreSQL (a new, empty
database of the test run's server); a test of a SQLite file's own behaviour says so with
``@pytest.mark.sqlite_only("why")`` and runs once.

- Reads of the registry with the plain driver (sqlite3 for a file, psycopg for a URL), never
  through LightML, to check what a call wrote: ``query``, ``events``, ``n_events``,
  ``last_seq``, ``model_row``, and ``snapshot`` (every row of every table, and the links).
- ``engine_name``: "sqlite" or "postgresql"; ``makes_links``: whether the registry has a
  ``models/`` link folder beside it (a SQLite file does; a database has no folder).
- Registries built once per engine and copied into ``db`` (``from_template``; a PostgreSQL
  copy is ``CREATE DATABASE ... TEMPLATE``): the ``lineage`` registry of tests/conftest.py
  on ``db``, and what a test module builds with it.
- ``init_registry_at(db, ...)``, ``write_directly`` (another application's tables) and
  ``as_an_older_tool`` (a read table written behind the log), each for both engines.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from registries import build_lineage, skip_if_sqlite_only, verify_registry  # tests/registries.py

from lightml.log.postgres_dialect import translate

POSTGRES = "postgresql"


def is_postgres(db: Any) -> bool:
    return str(db).startswith("postgresql://")


# -- reads with the plain driver ---------------------------------------------------------------


@contextlib.contextmanager
def plain_connection(db: Any) -> Iterator[Any]:
    """A connection of the engine's own driver to the registry ``db`` (autocommit on PostgreSQL)."""
    if is_postgres(db):
        import psycopg

        with psycopg.connect(str(db), autocommit=True) as conn:
            yield conn
    else:
        with contextlib.closing(sqlite3.connect(db)) as conn:
            yield conn


def _rows(conn, db, sql, params=()) -> list[tuple]:
    if is_postgres(db):  # in PostgreSQL's words, as LightML's adapter sends it
        sql = translate(sql)
    return [tuple(row) for row in conn.execute(sql, params).fetchall()]


def _query(db, sql, params=()):
    with plain_connection(db) as conn:
        return _rows(conn, db, sql, params)


def _table_names(conn, db) -> list[str]:
    if is_postgres(db):
        sql = ("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() "
               "AND table_type = 'BASE TABLE' ORDER BY table_name")
    else:
        sql = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"
    return [name for (name,) in _rows(conn, db, sql)]


@pytest.fixture
def query() -> Callable[..., list[tuple]]:
    """``query(db, sql, params=())``: the rows (SQL with ``?`` parameters, on either engine)."""
    return _query


@pytest.fixture
def events() -> Callable[..., list[tuple]]:
    """``events(db, event_type=None)``: (seq, type, at, payload) of the events (of that type)."""

    def read(db, event_type=None):
        sql = "SELECT seq, type, at, payload FROM events"
        if event_type is not None:
            return _query(db, sql + " WHERE type = ? ORDER BY seq", (event_type,))
        return _query(db, sql + " ORDER BY seq")

    return read


@pytest.fixture
def n_events() -> Callable[[Any], int]:
    return lambda db: _query(db, "SELECT count(*) FROM events")[0][0]


@pytest.fixture
def last_seq() -> Callable[[Any], int]:
    return lambda db: _query(db, "SELECT coalesce(max(seq), 0) FROM events")[0][0]


@pytest.fixture
def model_row() -> Callable[[Any, int], tuple | None]:
    """``model_row(db, model_id)``: (id, model_name, path, parent_id, run_id), or None."""

    def read(db, model_id):
        rows = _query(db, "SELECT id, model_name, path, parent_id, run_id FROM model WHERE id = ?", (model_id,))
        return rows[0] if rows else None

    return read


@pytest.fixture
def write_directly() -> Callable[..., None]:
    """``write_directly(db, *statements)``: run the statements with the plain driver and
    commit, as another application would (a read table of a registry is guarded: see
    ``as_an_older_tool``)."""

    def write(db, *statements: str) -> None:
        with plain_connection(db) as conn:
            for statement in statements:
                conn.execute(statement)
            conn.commit()  # (a no-op for PostgreSQL's autocommit connection)

    return write


def link_folder(db) -> Path | None:
    """Where the registry's ``models/`` links go: beside a SQLite file; nowhere for a database."""
    return None if is_postgres(db) else Path(db).parent / "models"


def snapshot_of(db) -> dict:
    """Every row of every table (events and metadata included) in a stable order, and the
    registry's link folder (None where it has none)."""
    with plain_connection(db) as conn:
        state = {t: sorted(_rows(conn, db, f'SELECT * FROM "{t}"'), key=repr) for t in _table_names(conn, db)}
    models = link_folder(db)
    state["<models/>"] = sorted(
        (p.name, os.readlink(p) if p.is_symlink() else None) for p in models.iterdir()
    ) if models is not None and models.is_dir() else None
    return state


@pytest.fixture
def snapshot() -> Callable[[Any], dict]:
    """``snapshot(db)``: what "the registry exactly as it was" compares (``snapshot_of``)."""
    return snapshot_of


@pytest.fixture
def symlinks_to() -> Callable[[Path, Path], list[Path]]:
    """``symlinks_to(folder, target)``: the links in ``folder`` that point at ``target``."""

    def find(folder: Path, target: Path) -> list[Path]:
        if not folder.is_dir():
            return []
        return [p for p in folder.iterdir() if p.is_symlink() and Path(os.readlink(p)) == target]

    return find


# -- the test's registry on each engine ----------------------------------------------------------


@pytest.fixture(params=["sqlite", POSTGRES])
def db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    """The test's registry, on each storage engine: a SQLite file (not created), or a new
    PostgreSQL database of the test run's server (its URL). After the test, a registry there
    (one with an event log) must have read tables equal to a rebuild from that log; then the
    database is dropped."""
    if request.param == "sqlite":
        yield request.getfixturevalue("verify_at_teardown")(tmp_path / "reg.db")
        return
    skip_if_sqlite_only(request)
    server = request.getfixturevalue("postgres_server")
    if "from_template" in request.fixturenames:  # it makes the database, as a copy of its template
        url = server.url(f"t_from_template_{secrets.token_hex(6)}")
    else:
        url = server.create_database(request.node.name)
    try:
        yield url
        if not request.node.get_closest_marker("tampered"):
            verify_registry(url)
    finally:
        server.drop_database(url)


@pytest.fixture
def engine_name(db) -> str:
    """The storage engine of ``db``: "sqlite" or "postgresql"."""
    return POSTGRES if is_postgres(db) else "sqlite"


@pytest.fixture
def registry_created() -> Callable[[Any], bool]:
    """``registry_created(db)``: whether the registry is there: its file, or any table in its
    database (the test's PostgreSQL database starts empty)."""

    def created(db) -> bool:
        if not is_postgres(db):
            return Path(db).exists()
        with plain_connection(db) as conn:
            return bool(_table_names(conn, db))

    return created


@pytest.fixture
def makes_links(db) -> bool:
    """Whether registering a model with a local path links it in a ``models/`` folder beside
    the registry (a SQLite file); a PostgreSQL registry has no folder of its own."""
    return not is_postgres(db)


@pytest.fixture
def init_registry_at() -> Callable[..., Any]:
    """``init_registry_at(db, **kwargs)``: ``lightml.init_registry`` for the registry ``db``
    (a file ``<folder>/<name>.db``, or a database's URL); returns what it returns."""
    from lightml import init_registry

    def init(db, **kwargs):
        if is_postgres(db):
            return init_registry(db, **kwargs)
        return init_registry(Path(db).parent, Path(db).stem, **kwargs)

    return init


@pytest.fixture
def as_an_older_tool(as_an_older_tool) -> Callable[[Any, str, tuple], None]:
    """``as_an_older_tool(db, sql, params)``: write a read table directly, behind the log, as
    a tool that does not know it would (tests/conftest.py's for a file; on PostgreSQL with the
    write mark that lets the statement past the read tables' guard)."""
    for_a_file = as_an_older_tool

    def write(db, sql: str, params: tuple) -> None:
        if not is_postgres(db):
            return for_a_file(db, sql, params)
        from projections.guard import PG_SETTING

        with plain_connection(db) as conn, conn.transaction():
            conn.execute(f"SET LOCAL {PG_SETTING} = 'on'")
            conn.execute(translate(sql), params)

    return write


# -- registries built once per engine ---------------------------------------------------------


class Templates:
    """Registries built once per engine in this test run, copied into each test's ``db``:
    a file copy (with its ``models/`` folder) on SQLite, ``CREATE DATABASE ... TEMPLATE`` on
    PostgreSQL (``db`` has not made that database: it drops it after the test)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.built: dict[tuple[str, str], tuple[Any, Any]] = {}

    def copy_into(self, db, name: str, build: Callable[[Any, Path], Any], server=None) -> Any:
        """Copy the template ``name`` into ``db``, made the first time by ``build(registry,
        folder)`` (``folder``: a scratch folder of the template's own, beside its file on
        SQLite; ``build`` closes its handles); returns what ``build`` returned."""
        engine = POSTGRES if is_postgres(db) else "sqlite"
        if (name, engine) not in self.built:
            folder = self.folder / f"{name}-{engine}"
            folder.mkdir()
            # (a PostgreSQL template is dropped with the rest of the server's test databases)
            template = server.create_database(f"template_{name}") if server is not None else folder / "reg.db"
            made = build(template, folder)
            if server is None:
                assert not Path(f"{template}-wal").exists(), "close the template's handles in build()"
            self.built[(name, engine)] = template, made
        template, made = self.built[(name, engine)]
        if is_postgres(db):
            _create_database_from(server, db, template)
        else:
            shutil.copyfile(template, db)
            if (template.parent / "models").is_dir():
                shutil.copytree(template.parent / "models", Path(db).parent / "models", symlinks=True)
        return made


def _create_database_from(server, db: str, template: str) -> None:
    """The database ``db`` made as a copy of ``template`` (which must have no open
    connection: PostgreSQL copies a database no one is using)."""
    import psycopg
    from psycopg import sql

    name, source = (urlsplit(url).path.lstrip("/") for url in (db, template))
    with psycopg.connect(server.url("postgres"), autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(source)))


@pytest.fixture(scope="session")
def _templates(tmp_path_factory) -> Templates:
    return Templates(tmp_path_factory.mktemp("templates"))


@pytest.fixture
def from_template(request: pytest.FixtureRequest, _templates: Templates, db) -> Callable[..., Any]:
    """``from_template(name, build)``: the registry ``build(registry, folder)`` makes (see
    ``Templates.copy_into``), built once per engine in the test run and copied into ``db``;
    returns what ``build`` returned. ``name`` must be unique to that ``build``. A test that
    takes this fixture must call it: on PostgreSQL, ``db`` is made by that call."""
    server = request.getfixturevalue("postgres_server") if is_postgres(db) else None
    return lambda name, build: _templates.copy_into(db, name, build, server)


@pytest.fixture
def lineage(db, from_template, lineage_scores) -> Any:
    """tests/conftest.py's ``lineage`` registry (run r1: base -> sft -> dpo with per-sample
    scores ...; run r2: its own base, and solo) at ``db``, on each engine."""
    from_template("lineage", lambda registry, folder: build_lineage(registry, lineage_scores))
    return db
