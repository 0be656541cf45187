"""The CLI on a PostgreSQL registry: ``init --db URL``, the URL from ``--db``, ``LIGHTML_DB``
or ``.lightml``, and the user errors a server brings (one line on stderr, exit 2, nothing
written, no password shown)."""

from __future__ import annotations

import pytest

from lightml import verify

psycopg = pytest.importorskip("psycopg", reason="the PostgreSQL tests need psycopg (the postgres extra)")


def _tables(url: str) -> set[str]:
    with psycopg.connect(url, autocommit=True) as conn:
        return {r[0] for r in conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'")}


def test_init_creates_the_registry_once_and_every_command_takes_the_url(postgres_url, cli, tmp_path):
    done = cli("init", "--db", postgres_url)
    assert done.returncode == 0 and done.stdout.strip() == f"Registry ready at: {postgres_url}"
    assert {"events", "metrics", "model", "run"} <= _tables(postgres_url)
    again = cli("init", "--db", postgres_url)  # an existing registry is left as it is
    assert again.returncode == 0
    assert cli("model-register", "--db", postgres_url, "--run", "r", "--model", "base", "--path", "org/base").returncode == 0
    assert cli("metric-log", "--db", postgres_url, "--run", "r", "--model", "base", "--family", "mmlu",
               "--metric", "acc", "--value", "0.5").returncode == 0
    by_env = cli("metric-get", "--model", "base", "--family", "mmlu", "--metric", "acc", "--raw",
                 env={"LIGHTML_DB": postgres_url}, cwd=tmp_path)
    assert by_env.returncode == 0 and by_env.stdout.strip() == "0.5"
    (tmp_path / ".lightml").write_text(f"db={postgres_url}\n")
    by_file = cli("list", "--json", cwd=tmp_path, env={"LIGHTML_DB": None})
    assert by_file.returncode == 0 and '"base"' in by_file.stdout
    assert verify(postgres_url).ok


def test_a_database_holding_other_tables_is_refused_and_untouched(postgres_url, cli, assert_user_error):
    with psycopg.connect(postgres_url, autocommit=True) as conn:
        conn.execute("CREATE TABLE results (body text)")
    assert_user_error(cli("init", "--db", postgres_url), "not a LightML registry: it has tables results but no event log")
    assert _tables(postgres_url) == {"results"}


def test_a_write_to_a_database_without_a_registry_says_how_to_make_one(postgres_url, cli, assert_user_error):
    done = cli("metric-log", "--db", postgres_url, "--model", "m", "--family", "f", "--metric", "a", "--value", "1")
    assert_user_error(done)
    assert done.stderr.strip().endswith(f"(create one with: lightml init --db {postgres_url})")
    assert _tables(postgres_url) == set()  # nothing created


@pytest.mark.parametrize("mangle, problem", [
    (lambda url: url.rsplit("/", 1)[0] + "/no_such_database", "registry not found"),
    (lambda url: url.replace("127.0.0.1:", "127.0.0.1:1").rsplit(":", 1)[0] + ":1/x", "cannot connect to"),
])
def test_a_url_that_reaches_no_registry_is_one_clear_line(postgres_url, cli, mangle, problem, assert_user_error):
    assert_user_error(cli("summary", "--db", mangle(postgres_url)), problem)
