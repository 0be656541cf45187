"""A damaged log: an event whose payload or type was changed is named (seq and type) by verify
and replay, and no table is built from it. CLI commands run in this process (``cli``)."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

from lightml.errors import NotARegistryError
from lightml.log.replay import replay, verify


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


@pytest.mark.tampered  # the log itself is damaged
@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_event_is_named_and_no_table_is_built_from_it(tmp_path, damage, make_small_registry, dump, cli):
    db = make_small_registry(tmp_path / "reg.db")
    seq, event_type = _metric_event(db)
    _damage(db, seq, DAMAGE[damage])
    before = dump(db)
    named = f"#{seq} ({event_type})"

    result = verify(db)
    assert not result.ok and any(named in line for line in result.differences["events"])
    cli_verify = cli("verify", "--db", str(db))
    assert cli_verify.returncode == 1 and named in cli_verify.stderr

    with pytest.raises(NotARegistryError, match=f"#{seq} \\({event_type}\\)"):
        replay(db)
    cli_result = cli("replay", "--db", str(db), "--force")
    assert cli_result.returncode == 2 and len(cli_result.stderr.strip().splitlines()) == 1, cli_result
    assert named in cli_result.stderr, cli_result
    assert dump(db) == before  # untouched, the text value included
    out = tmp_path / "past.db"
    with pytest.raises(NotARegistryError, match=f"#{seq}"):
        replay(db, out=out)
    assert not out.exists()


@pytest.mark.tampered  # the log itself is damaged
def test_an_event_whose_type_was_changed_is_named(tmp_path, make_small_registry, dump):
    db = make_small_registry(tmp_path / "reg.db")
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
