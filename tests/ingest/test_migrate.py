"""Upgrading LightML 1.x databases: fixtures built with plain sqlite3 DDL, as 1.x wrote them.

What a user relies on: a backup identical to the original is written before anything
changes; every id and value survives; the result verifies against its synthesized log;
migrating twice is harmless; the registry is then writable; a database from a newer
LightML, or a file that is not a database, is refused clearly (and in the CLI without a
traceback). (Over 400 lines: the 1.x DDL variants and their rows are spelled out here.)
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from lightml import METRIC_INSERTED, METRIC_SKIPPED, METRIC_UPDATED, LightMLHandle
from lightml.errors import NotARegistryError, SchemaViolationError
from lightml.ingest.migrate import migrate
from lightml.log.replay import verify

# -- 1.x fixtures -------------------------------------------------------------------------------

RUN_DDL = ("CREATE TABLE run (id INTEGER PRIMARY KEY, run_name TEXT UNIQUE, description TEXT, metadata TEXT, "
           "created_at TEXT DEFAULT CURRENT_TIMESTAMP)")
MODEL_DDL = ("CREATE TABLE model (id INTEGER PRIMARY KEY, model_name TEXT, path TEXT, parent_id INTEGER, "
             "notes TEXT, hidden INTEGER DEFAULT 0, run_id INTEGER, UNIQUE(model_name, run_id))")
MODEL_DDL_OLD = ("CREATE TABLE model (id INTEGER PRIMARY KEY, model_name TEXT, path TEXT, parent_id INTEGER, "
                 "run_id INTEGER, UNIQUE(model_name, run_id))")
CHECKPOINT_DDL = ("CREATE TABLE checkpoint (id INTEGER PRIMARY KEY, model_id INTEGER, step INTEGER, path TEXT, "
                  "created_at TEXT DEFAULT CURRENT_TIMESTAMP)")
METRICS_DDL = ("CREATE TABLE metrics (id INTEGER PRIMARY KEY, model_id INTEGER, checkpoint_id INTEGER, "
               "family TEXT, metric_name TEXT, value REAL)")
SCORES_DDL = "CREATE TABLE detailed_scores (metric_id INTEGER PRIMARY KEY, scores TEXT, n_samples INTEGER)"
SCHEMA_DDL = "CREATE TABLE registry_schema (family TEXT, metric_name TEXT)"
# The loosest 1.x shape: columns without declared types (no affinity: an int stays an int).
UNTYPED_DDL = [
    RUN_DDL,
    MODEL_DDL,
    "CREATE TABLE checkpoint (id INTEGER PRIMARY KEY, model_id, step, path, created_at)",
    "CREATE TABLE metrics (id INTEGER PRIMARY KEY, model_id, checkpoint_id, family, metric_name, value)",
    "CREATE TABLE detailed_scores (metric_id PRIMARY KEY, scores TEXT, n_samples)",
    "CREATE TABLE registry_schema (family, metric_name)",
]

RUNS = [
    (1, "baseline", "first sweep", '{"gpu": "A100", "seed": 1}', "2024-03-01 10:00:00"),
    (4, "dpo-sweep", None, None, "2024-05-17 08:30:12"),  # a gap in run ids
]
# (id, model_name, path, parent_id, notes, hidden, run_id). Model 3's parent (9) has a higher
# id than it; 5 -> 3 -> 9 is a chain; ids have gaps.
MODELS = [
    (2, "meta-llama/Llama-3-8B", "/models/llama3-8b", None, "the base", 0, 1),
    (3, "llama3-sft", "/models/llama3-sft", 9, None, 1, 4),
    (5, "llama3-dpo", "/models/llama3-dpo", 3, "beta=0.1", 0, 4),
    (9, "llama3-cpt", "/models/llama3-cpt", 2, None, 0, 4),
]
CHECKPOINTS = [
    (3, 3, 100, "/models/llama3-sft/checkpoint-100", "2024-05-17 09:00:00"),
    (8, 3, 200, "/models/llama3-sft/checkpoint-200", "2024-05-17 10:00:00"),
    (11, 9, 0, "/models/llama3-cpt/checkpoint-0", "2024-05-16 07:00:00"),
]
# (id, model_id, checkpoint_id, family, metric_name, value): gaps, a NULL value (1.x stored
# NaN as NULL), awkward floats, and checkpoint metrics.
METRICS = [
    (1, 2, None, "mmlu", "acc", 0.6512),
    (2, 2, None, "mmlu", "acc_norm", 0.1 + 0.2),
    (5, 3, None, "mmlu", "acc", None),
    (6, 3, None, "gsm8k", "exact_match", 1e-300),
    (10, None, 3, "mmlu", "acc", 0.5),
    (11, None, 8, "mmlu", "acc", 0.625),
    (12, None, 11, "gsm8k", "exact_match", 0.0),
    (20, 5, None, "mmlu", "acc", 0.7),
    (21, 9, None, "hellaswag", "acc", 123456.789),
]
# Scores JSON as 1.x wrote it (json.dumps default: with spaces), kept byte for byte.
SCORES = [
    (1, "[1, 0, 1, 1]", 4),
    (10, "[0.5, 0.25, 1.0]", 3),
    (21, "[ 1 ,0 ]", 2),
]
SCHEMA_RULES = [("mmlu", "acc"), ("mmlu", "acc_norm"), ("gsm8k", "exact_match"), ("hellaswag", "acc"),
                ("arc", "acc")]

VARIANTS = ["full", "no_detailed_scores", "no_notes_hidden", "minimal", "untyped"]


def build_v1(path: Path, variant: str = "full") -> Path:
    """A LightML 1.x database: read tables only, in rollback-journal mode, as 1.x left it."""
    scores = variant not in ("no_detailed_scores", "minimal")
    notes_hidden = variant not in ("no_notes_hidden", "minimal")
    conn = sqlite3.connect(path)
    try:
        if variant == "untyped":
            ddl = UNTYPED_DDL
        else:
            ddl = [RUN_DDL, MODEL_DDL if notes_hidden else MODEL_DDL_OLD, CHECKPOINT_DDL, METRICS_DDL, SCHEMA_DDL]
            if scores:
                ddl.append(SCORES_DDL)
        for statement in ddl:
            conn.execute(statement)
        conn.executemany("INSERT INTO run VALUES (?, ?, ?, ?, ?)", RUNS)
        if notes_hidden:
            conn.executemany("INSERT INTO model VALUES (?, ?, ?, ?, ?, ?, ?)", MODELS)
        else:
            conn.executemany("INSERT INTO model (id, model_name, path, parent_id, run_id) VALUES (?, ?, ?, ?, ?)",
                             [(m[0], m[1], m[2], m[3], m[6]) for m in MODELS])
        conn.executemany("INSERT INTO checkpoint VALUES (?, ?, ?, ?, ?)", CHECKPOINTS)
        metrics = list(METRICS)
        if variant == "untyped":  # an int value stays an INTEGER without a REAL column
            metrics.append((30, 2, None, "arc", "acc", 1))
        conn.executemany("INSERT INTO metrics VALUES (?, ?, ?, ?, ?, ?)", metrics)
        if scores:
            conn.executemany("INSERT INTO detailed_scores VALUES (?, ?, ?)", SCORES)
        conn.executemany("INSERT INTO registry_schema VALUES (?, ?)", SCHEMA_RULES)
        conn.commit()
    finally:
        conn.close()
    return path


def rows(db: Path, table: str, columns: str) -> list[tuple]:
    conn = sqlite3.connect(db)
    try:
        order = ", ".join(str(i + 1) for i in range(len(columns.split(","))))
        return conn.execute(f"SELECT {columns} FROM {table} ORDER BY {order}").fetchall()
    finally:
        conn.close()


def dump(db: Path) -> list[str]:
    conn = sqlite3.connect(db)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def scalar(db: Path, sql: str, params: tuple = ()):
    conn = sqlite3.connect(db)
    try:
        return conn.execute(sql, params).fetchone()[0]
    finally:
        conn.close()


def backups(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if ".backup-" in p.name and p.suffix == ".db")


def same_values(a: list[tuple], b: list[tuple]) -> bool:
    """Row lists equal, and every float bit-identical (-0.0 and 0.0 count as different)."""
    if a != b:
        return False
    return all(repr(x) == repr(y) or (isinstance(x, int) and float(x) == y)
               for ra, rb in zip(a, b) for x, y in zip(ra, rb))


# -- migrate ----------------------------------------------------------------------------------


@pytest.mark.parametrize("variant", VARIANTS)
def test_migrate_preserves_every_row_and_verifies(tmp_path, variant):
    db = build_v1(tmp_path / "registry.db", variant)
    original = dump(db)
    old = {
        "run": rows(db, "run", "id, run_name, description, metadata, created_at"),
        "checkpoint": rows(db, "checkpoint", "id, model_id, step, path, created_at"),
        "metrics": rows(db, "metrics", "id, model_id, checkpoint_id, family, metric_name, value"),
        "registry_schema": rows(db, "registry_schema", "family, metric_name"),
    }
    has_notes = variant not in ("no_notes_hidden", "minimal")
    has_scores = variant not in ("no_detailed_scores", "minimal")
    old_models = rows(db, "model", "id, model_name, path, parent_id, notes, hidden, run_id" if has_notes
                      else "id, model_name, path, parent_id, NULL, 0, run_id")
    old_scores = rows(db, "detailed_scores", "metric_id, scores, n_samples") if has_scores else []

    result = migrate(db)

    assert result.migrated is True
    assert result.warnings == []
    assert result.counts["models"] == len(MODELS)
    assert result.counts["metrics"] == len(old["metrics"])
    # The backup: a separate file, in 1.x format, with exactly the original content.
    assert result.backup is not None and result.backup.is_file() and result.backup != db
    assert backups(tmp_path) == [result.backup]
    assert dump(result.backup) == original

    for table, before in old.items():
        columns = {"run": "id, run_name, description, metadata, created_at",
                   "checkpoint": "id, model_id, step, path, created_at",
                   "metrics": "id, model_id, checkpoint_id, family, metric_name, value",
                   "registry_schema": "family, metric_name"}[table]
        after = rows(db, table, columns)
        assert same_values(before, after), (table, before, after)
    assert rows(db, "model", "id, model_name, path, parent_id, notes, hidden, run_id") == old_models
    assert rows(db, "detailed_scores", "metric_id, scores, n_samples") == old_scores

    check = verify(db)
    assert check.ok, check.differences
    assert scalar(db, "SELECT value FROM lightml_meta WHERE key = 'format_version'") == "2"
    assert scalar(db, "PRAGMA integrity_check") == "ok"
    # The synthesized log is protected like any other.
    conn = sqlite3.connect(db, isolation_level=None)
    try:
        for statement in ("UPDATE events SET payload = '{}'", "DELETE FROM events"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                conn.execute(statement)
    finally:
        conn.close()


def test_migrated_registry_is_usable_through_the_handle(tmp_path):
    db = build_v1(tmp_path / "registry.db")
    migrate(db)
    with LightMLHandle(db, "baseline") as h:
        # Reads see the 1.x data, scores text included.
        assert h.get_detailed_scores("meta-llama/Llama-3-8B", "mmlu", "acc") == [1, 0, 1, 1]
        assert h.search("meta-llama/Llama-3-8B", "mmlu", "acc_norm")[0]["value"] == 0.1 + 0.2
    with LightMLHandle(db, "dpo-sweep") as h:
        assert h.find_checkpoint("llama3-sft", 200) == 8
        assert h.metric_exists("llama3-sft", "mmlu", "acc")
        # Dedupe and force work on migrated rows; the NULL value is the previous value.
        assert h.log_model_metric("llama3-sft", "mmlu", "acc", 0.5) == METRIC_SKIPPED
        assert h.log_model_metric("llama3-sft", "mmlu", "acc", 0.55, force=True) == METRIC_UPDATED
        history = h.metric_history("llama3-sft", "mmlu", "acc")
        assert [(e["action"], e["value"], e["previous_value"]) for e in history] == [
            ("inserted", None, None), ("overwritten", 0.55, None)]
        assert "(migrate)" in history[0]["actor"]
        # New rows get fresh ids: never one that 1.x used, even inside a gap.
        assert h.log_model_metric("llama3-sft", "arc", "acc", 0.4) == METRIC_INSERTED
        new_metric = scalar(db, "SELECT id FROM metrics WHERE family = 'arc' AND metric_name = 'acc'")
        assert new_metric > max(m[0] for m in METRICS)
        new_model = h.register_model("llama3-dpo-v2", "/models/llama3-dpo-v2", parent_name="llama3-dpo")
        assert new_model > max(m[0] for m in MODELS)
        new_checkpoint = h.register_checkpoint("llama3-dpo-v2", 50, "/models/llama3-dpo-v2/checkpoint-50")
        assert new_checkpoint > max(c[0] for c in CHECKPOINTS)
        assert h.log_checkpoint_metric(new_checkpoint, "mmlu", "acc", 0.71) == METRIC_INSERTED
        # The 1.x registry schema still applies.
        with pytest.raises(SchemaViolationError):
            h.log_model_metric("llama3-sft", "not", "allowed", 1.0)
        # Delete and restore a migrated model with its checkpoints, metrics and scores.
        h.delete_model("llama3-sft")
        assert h.restore_model("llama3-sft") == 3
    assert rows(db, "checkpoint", "id, model_id") == sorted(
        [(c[0], c[1]) for c in CHECKPOINTS] + [(new_checkpoint, new_model)])
    assert scalar(db, "SELECT parent_id FROM model WHERE id = 3") == 9
    assert scalar(db, "SELECT parent_id FROM model WHERE id = 5") == 3
    check = verify(db)
    assert check.ok, check.differences


def test_migrate_twice_changes_nothing(tmp_path):
    db = build_v1(tmp_path / "registry.db")
    assert migrate(db).migrated is True
    events = scalar(db, "SELECT count(*) FROM events")
    before = dump(db)

    second = migrate(db)

    assert second.migrated is False
    assert "nothing to do" in second.message
    assert scalar(db, "SELECT count(*) FROM events") == events
    assert dump(db) == before
    assert len(backups(tmp_path)) == 1  # no second backup of an already migrated file
    assert verify(db).ok


def test_failed_migration_leaves_original_untouched_with_backup(tmp_path):
    """The backup is written before anything changes, and a migration that cannot finish
    rolls back: here a 1.x run without a name (1.x allowed it; 2.x requires one)."""
    db = build_v1(tmp_path / "registry.db")
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO run (id, run_name) VALUES (7, NULL)")
    conn.commit()
    conn.close()
    original = dump(db)

    with pytest.raises(Exception):
        migrate(db)

    assert dump(db) == original
    made = backups(tmp_path)
    assert len(made) == 1
    assert dump(made[0]) == original


def build_v1_with_a_metric_twice(path: Path) -> Path:
    """A 1.x file where model 2's mmlu/acc is stored twice (1.x had no unique rule), the later 0.7."""
    db = build_v1(path)
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO metrics VALUES (40, 2, NULL, 'mmlu', 'acc', 0.7)")
    conn.commit()
    conn.close()
    return db


def test_migrate_reports_duplicated_metric_as_overwrite(tmp_path):
    db = build_v1_with_a_metric_twice(tmp_path / "registry.db")

    result = migrate(db)

    assert any("40" in w and "duplicates" in w for w in result.warnings), result.warnings
    assert rows(db, "metrics", "id, value") == sorted(
        [(m[0], m[5]) for m in METRICS if m[0] != 1] + [(1, 0.7)])
    with LightMLHandle(db) as h:
        history = h.metric_history("meta-llama/Llama-3-8B", "mmlu", "acc")
    assert [(e["action"], e["value"]) for e in history] == [("inserted", 0.6512), ("overwritten", 0.7)]
    assert verify(db).ok


def test_migrate_reports_scores_it_cannot_keep(tmp_path):
    """Per-sample scores of a metric that no longer exists cannot be represented: the
    module promises such rows are reported (they stay in the backup), not dropped silently."""
    db = build_v1(tmp_path / "registry.db")
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO detailed_scores VALUES (99, '[1, 1, 0]', 3)")
    conn.commit()
    conn.close()

    result = migrate(db)

    assert rows(db, "detailed_scores", "metric_id") == [(1,), (10,), (21,)]
    assert any("99" in w for w in result.warnings), result.warnings
    assert result.counts["detailed_scores"] == len(SCORES)


def test_migrate_skips_a_value_that_is_not_a_number(tmp_path):
    """Untyped 1.x columns could hold text; such a metric is reported and left in the backup."""
    db = build_v1(tmp_path / "registry.db")
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO metrics VALUES (41, 2, NULL, 'mmlu', 'text_value', 'oops')")
    conn.commit()
    conn.close()

    result = migrate(db)

    assert any("41" in w and "not a finite number" in w for w in result.warnings), result.warnings
    assert scalar(db, "SELECT count(*) FROM metrics WHERE id = 41") == 0
    assert verify(db).ok


def test_migrate_stops_before_commit_on_rows_it_cannot_represent(tmp_path):
    """A checkpoint step that is not an integer: the migration stops with a clear error and
    the file is still the 1.x database, so it can be fixed and migrated again."""
    db = build_v1(tmp_path / "registry.db")
    conn = sqlite3.connect(db)
    conn.execute("UPDATE checkpoint SET step = 'last' WHERE id = (SELECT min(id) FROM checkpoint)")
    conn.commit()
    conn.close()
    original = dump(db)

    with pytest.raises(NotARegistryError, match="step"):
        migrate(db)

    assert dump(db) == original
    conn = sqlite3.connect(db)
    conn.execute("UPDATE checkpoint SET step = 3 WHERE step = 'last'")
    conn.commit()
    conn.close()
    assert migrate(db).migrated and verify(db).ok


def newer_registry(path: Path) -> Path:
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, type TEXT, version INTEGER, payload TEXT, "
                 "at TEXT, user TEXT, host TEXT, pid INTEGER, origin TEXT)")
    conn.execute("CREATE TABLE lightml_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    conn.execute("INSERT INTO lightml_meta VALUES ('format_version', '99')")
    conn.execute("CREATE TABLE hologram (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    return path


def test_newer_format_is_refused_with_clear_message(tmp_path):
    db = newer_registry(tmp_path / "future.db")
    before = db.read_bytes()

    with pytest.raises(NotARegistryError, match=r"newer LightML.*upgrade"):
        migrate(db)
    with pytest.raises(NotARegistryError, match="newer LightML"):
        LightMLHandle(db, "run")

    assert db.read_bytes() == before
    assert backups(tmp_path) == []


def test_empty_database_is_not_migrated(tmp_path):
    db = tmp_path / "empty.db"
    sqlite3.connect(db).close()
    with pytest.raises(NotARegistryError, match="empty"):
        migrate(db)
    assert backups(tmp_path) == []


# -- CLI (in this process: ``cli``) -------------------------------------------------------------


def test_cli_migrate_succeeds_then_is_a_no_op(tmp_path, cli):
    db = build_v1(tmp_path / "registry.db")
    result = cli("migrate", "--db", str(db))
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert len(backups(tmp_path)) == 1
    assert verify(db).ok
    assert same_values(rows(db, "metrics", "id, model_id, checkpoint_id, family, metric_name, value"),
                       sorted(METRICS))

    again = cli("migrate", "--db", str(db), "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["migrated"] is False
    assert len(backups(tmp_path)) == 1


@pytest.mark.parametrize("content", [
    b"model,metric,value\nllama,acc,0.5\n" * 20,
    b"SQLite format 3\x00" + b"\xff" * 200,  # a damaged header
], ids=["csv", "damaged"])
def test_cli_migrate_refuses_non_sqlite_file_in_one_line(tmp_path, content, cli):
    path = tmp_path / "results.db"
    path.write_bytes(content)
    result = cli("migrate", "--db", str(path))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert str(path) in lines[0] or "database" in lines[0]
    assert path.read_bytes() == content
    assert backups(tmp_path) == []


def test_cli_migrate_refuses_newer_format_in_one_line(tmp_path, cli):
    db = newer_registry(tmp_path / "future.db")
    result = cli("migrate", "--db", str(db))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "newer LightML" in lines[0], result.stderr


# -- registries from an earlier 2.x build ------------------------------------------------------


def _registry_from_an_earlier_2x_build(path: Path) -> None:
    """A 2.x registry written before ``score_docs`` and ``imported_file`` existed: its
    events are the same, only those read tables are absent."""
    with LightMLHandle(str(path), "r") as h:
        h.register_model("a", "/m/a")
        h.register_model("b", "/m/b")
        h.log_model_metric("a", "eval", "acc", 0.5, scores=[1, 0, 1, 0], doc_ids=["d1", "d2", "d3", "d4"])
        h.log_model_metric("b", "eval", "acc", 0.75, scores=[1, 1, 1, 0], doc_ids=["d1", "d2", "d3", "d4"])
    conn = sqlite3.connect(path)
    conn.execute("DROP TABLE score_docs")
    conn.execute("DROP TABLE imported_file")
    conn.commit()
    conn.close()


def _tables(path: Path) -> set[str]:
    conn = sqlite3.connect(path)
    try:
        return {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    finally:
        conn.close()


def test_registry_from_earlier_2x_build_gets_missing_tables_on_open(tmp_path):
    db = tmp_path / "old.db"
    _registry_from_an_earlier_2x_build(db)
    with LightMLHandle(str(db), "r") as h:
        # the doc keys come back from the log, so the pairing by document still works
        result = h.compare_stats("a", "b", "eval", "acc")
        assert result["contingency"]["only_b"] == 1
        assert h.log_model_metric("a", "eval", "f1", 0.4) == METRIC_INSERTED
    assert {"score_docs", "imported_file"} <= _tables(db)
    assert verify(str(db)).ok


def test_read_only_commands_upgrade_an_earlier_2x_registry(tmp_path, cli):
    db = tmp_path / "old.db"
    _registry_from_an_earlier_2x_build(db)
    out = cli("stats", "--db", str(db), "--run", "r", "--model-a", "a", "--model-b", "b", "--family", "eval",
              "--metric", "acc")
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    assert {"score_docs", "imported_file"} <= _tables(db)
    assert verify(str(db)).ok


def test_an_earlier_2x_registry_that_cannot_be_written_is_still_readable(tmp_path, monkeypatch):
    from lightml.log import opening
    from lightml.log.opening import open_registry_readonly

    db = tmp_path / "old.db"
    _registry_from_an_earlier_2x_build(db)

    def read_only_media(path, **_):
        raise NotARegistryError(f"{path}: attempt to write a readonly database")

    monkeypatch.setattr(opening, "add_missing_read_tables", read_only_media)
    conn = open_registry_readonly(db)
    try:
        assert conn.execute("SELECT count(*) FROM score_docs").fetchone() == (0,)
        assert conn.execute("SELECT count(*) FROM metrics").fetchone() == (2,)
    finally:
        conn.close()
    assert not {"score_docs", "imported_file"} & _tables(db)  # nothing was written to the file


def test_merge_of_a_1x_file_with_a_metric_twice_keeps_the_later_value_like_migrate(tmp_path):
    from lightml.ingest.merge import merge

    source = build_v1_with_a_metric_twice(tmp_path / "v1.db")
    target = tmp_path / "target.db"
    LightMLHandle(str(target)).close()
    result = merge(target, source)
    assert result.metrics_skipped == 1
    with sqlite3.connect(target) as conn:
        values = conn.execute("SELECT x.value FROM metrics x JOIN model m ON m.id = x.model_id "
                              "WHERE m.model_name = 'meta-llama/Llama-3-8B' AND x.family = 'mmlu' "
                              "AND x.metric_name = 'acc'").fetchall()
    assert values == [(0.7,)]


def test_merge_of_a_1x_duplicate_whose_later_copy_has_no_value(tmp_path):
    from lightml.ingest.merge import merge

    source = build_v1(tmp_path / "v1.db")
    conn = sqlite3.connect(source)
    conn.execute("INSERT INTO metrics VALUES (40, 2, NULL, 'mmlu', 'acc', NULL)")  # the later copy: no value
    conn.commit()
    conn.close()
    plain, target = tmp_path / "plain.db", tmp_path / "target.db"
    for path in (plain, target):
        LightMLHandle(str(path)).close()
    baseline = merge(plain, build_v1(tmp_path / "v1-plain.db"))  # the fixture has unusable rows of its own
    result = merge(target, source)
    # the later row wins (the earlier is skipped), and it has no value: unusable
    assert result.metrics_skipped == baseline.metrics_skipped + 1
    assert result.metrics_unusable == baseline.metrics_unusable + 1
    assert result.metrics_inserted == baseline.metrics_inserted - 1
