"""The PostgreSQL adapter's connection: LightML's shared SQL translated (no server needed for
that), and the COPY fast path for many rows pinned to one statement per row, its slow twin."""

from __future__ import annotations

import pytest

from lightml.errors import InvalidInputError
from lightml.log.postgres_dialect import translate


@pytest.mark.parametrize("sqlite, postgresql", [
    ("SELECT id FROM model WHERE model_name = ? AND run_id IS ?",
     "SELECT id FROM model WHERE model_name = %s AND run_id IS NOT DISTINCT FROM %s"),
    ("SELECT 1 WHERE a IS NOT ? AND b IS :b", "SELECT 1 WHERE a IS DISTINCT FROM %s AND b IS NOT DISTINCT FROM %(b)s"),
    ("SELECT e.user, user FROM events e WHERE seq > :last", 'SELECT e."user", "user" FROM events e WHERE seq > %(last)s'),
    ("SELECT 'what? 100% :x user', \"user\" FROM t WHERE a = ?", "SELECT 'what? 100%% :x user', \"user\" FROM t WHERE a = %s"),
    ("SELECT name FROM x WHERE name LIKE ? ESCAPE '\\'", "SELECT name FROM x WHERE name ILIKE %s ESCAPE '\\'"),
    ('DROP TABLE IF EXISTS main."metrics"', 'DROP TABLE IF EXISTS "metrics"'),
    ("SELECT user_id, username FROM t", "SELECT user_id, username FROM t"),
    ("\nCREATE TABLE t (\n    id INTEGER PRIMARY KEY,\n    v REAL,\n    name TEXT NOT NULL\n) WITHOUT ROWID",
     "\nCREATE TABLE t (\n    id BIGINT PRIMARY KEY,\n    v DOUBLE PRECISION,\n    name TEXT COLLATE \"C\" NOT NULL\n)"),
])
def test_the_shared_sql_in_postgresqls_words(sqlite, postgresql):
    assert translate(sqlite) == postgresql


EDGE_ROWS = [
    (1, None, "", 0.0), (2, 2**63 - 1, "it's 100% 'quoted' ? :name", 1e-300), (3, -(2**63 - 1), "ünïcode ✓ 日本", -0.1),
    (4, 0, "x" * 10_000, 1.7976931348623157e308), (5, 7, "new\nline\ttab", 0.1 + 0.2),
]


def _rows_inserted(postgres_url, rows, *, one_by_one: bool) -> list[tuple]:
    from lightml.log.engine import engine_for

    engine = engine_for(postgres_url)
    conn = engine.connect()
    try:
        conn.execute("DROP TABLE IF EXISTS sample")
        conn.execute("CREATE TABLE sample (id INTEGER PRIMARY KEY, big INTEGER, name TEXT, value REAL)")
        insert = "INSERT INTO sample (id, big, name, value) VALUES (?, ?, ?, ?)"
        conn.execute("BEGIN")
        if one_by_one:
            for row in rows:
                conn.executemany(insert, [row])  # a single row: one statement, the slow twin
        else:
            conn.executemany(insert, rows)
        conn.execute("COMMIT")
        return [tuple(r) for r in conn.execute("SELECT id, big, name, value FROM sample ORDER BY id").fetchall()]
    finally:
        conn.close()


def test_rows_sent_by_copy_are_stored_as_one_statement_per_row_stores_them(postgres_url):
    many = EDGE_ROWS + [(10 + i, i * 3, f"row {i}", i / 7) for i in range(2_500)]
    fast = _rows_inserted(postgres_url, many, one_by_one=False)
    assert fast == _rows_inserted(postgres_url, many, one_by_one=True)
    assert fast[:5] == EDGE_ROWS and len(fast) == len(many)


@pytest.mark.parametrize("n_rows", [1, 100], ids=["one statement", "copy"])
def test_a_bool_is_stored_as_the_integer_sqlite_stores(postgres_url, n_rows):
    rows = [(i, i % 2 == 0, "flag", 0.5) for i in range(n_rows)]
    assert _rows_inserted(postgres_url, rows, one_by_one=False) == [(i, int(i % 2 == 0), "flag", 0.5)
                                                                    for i in range(n_rows)]


@pytest.mark.parametrize("n_rows", [2, 100], ids=["statements", "copy"])
def test_a_nul_in_any_row_refuses_the_whole_insert(postgres_url, n_rows):
    from lightml.log.engine import engine_for

    conn = engine_for(postgres_url).connect()
    try:
        conn.execute("CREATE TABLE sample (id INTEGER PRIMARY KEY, name TEXT)")
        conn.execute("BEGIN")
        rows = [(i, "fine") for i in range(n_rows - 1)] + [(n_rows, "bad\x00name")]
        with pytest.raises(InvalidInputError, match=r"contains NUL \(U\+0000\)"):
            conn.executemany("INSERT INTO sample (id, name) VALUES (?, ?)", rows)
            conn.execute("SELECT 1")  # (a held statement is sent with the next answered one)
        conn.execute("ROLLBACK")
        assert conn.execute("SELECT count(*) FROM sample").fetchall() == [(0,)]
    finally:
        conn.close()


def test_a_lock_timeout_of_zero_refuses_at_once_as_on_sqlite(postgres_url):
    import time

    from lightml import LightMLHandle
    from lightml.errors import RegistryLockedError
    from lightml.log import store

    with LightMLHandle(postgres_url, "r") as h:
        h.register_model("m", "org/m")
    holder = store.connect(postgres_url)
    store.begin_immediate(holder)  # another writer holds the decide lock
    try:
        started = time.monotonic()
        with pytest.raises(RegistryLockedError, match="locked by another writer"):
            with LightMLHandle(postgres_url, "r", timeout=0) as h:
                h.log_model_metric("m", "f", "acc", 0.5)
        assert time.monotonic() - started < 10  # (PostgreSQL's lock_timeout 0 would wait for ever)
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_transaction_the_server_aborted_is_an_error_for_every_call_in_it_never_a_success(postgres_url):
    """One statement of a group failing on the server (a statement_timeout, say) aborts the
    whole transaction there: the calls of that group must all fail, none may report a value
    that was never stored."""
    import asyncio

    from lightml import AsyncLightMLHandle, LightMLHandle
    from lightml.errors import RegistryUnavailableError
    from lightml.log.postgres_engine import PostgresEngine

    with LightMLHandle(postgres_url, "r") as h:
        h.register_model("m", "org/m")
    original = PostgresEngine.existing_metrics

    def times_out(self, conn, *args):
        conn.execute("SET LOCAL statement_timeout = '50ms'")
        conn.execute("SELECT pg_sleep(1)")  # cancelled by the server: the transaction is aborted

    async def group() -> list:
        async with AsyncLightMLHandle(postgres_url, "r") as h:
            return await asyncio.gather(h.register_model("new", "org/new"),
                                        h.log_model_metric("m", "f", "a", 0.5), h.log_model_metric("m", "f", "b", 0.6),
                                        return_exceptions=True)
    PostgresEngine.existing_metrics = times_out
    try:
        outcomes = asyncio.run(group())
    finally:
        PostgresEngine.existing_metrics = original
    assert all(isinstance(o, Exception) for o in outcomes), outcomes
    assert any(isinstance(o, RegistryUnavailableError) and "aborted this transaction" in str(o) for o in outcomes)
    with LightMLHandle(postgres_url, "r") as h:  # nothing was stored, and the next calls work
        assert not h.model_exists("new")
        assert h.log_model_metric("m", "f", "a", 0.5) == 1


def test_a_password_in_the_query_is_never_shown():
    from lightml.log.engine import engine_for, shown

    for url in ("postgresql://ana@127.0.0.1:1/evals?password=s3cret", "postgresql://ana:s3cret@h1:5432,h2:5433/evals",
                "postgresql://ana@127.0.0.1:1/evals?sslmode=disable&password=s3cret&application_name=x"):
        assert "s3cret" not in shown(url)
        assert "s3cret" not in engine_for(url).location and "s3cret" not in repr(engine_for(url))
