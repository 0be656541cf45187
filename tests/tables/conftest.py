"""What the projection tests share: a real registry's log read back as changes, fresh read
tables to apply them to (event by event, each in a LightML write transaction, or rebuilt
from the log in chunks), and the rows of those tables."""

from __future__ import annotations

import shutil
import sqlite3
from collections.abc import Callable, Iterable
from pathlib import Path

import pytest

import projections
from lightml import LightMLHandle
from lightml.ingest.scan import scan_and_import
from lightml.log import store
from lightml.log.events import Change, decode_changes

Script = Callable[[LightMLHandle], object]
LM_EVAL_DATA = Path(__file__).resolve().parents[1] / "data" / "lm_eval_0413"


def read_log(db: Path) -> list[Change]:
    """The registry's events, as replay reads them."""
    conn = sqlite3.connect(db)
    try:
        return decode_changes(conn.execute("SELECT seq, type, version, payload FROM events ORDER BY seq").fetchall())
    finally:
        conn.close()


def table_rows(conn: sqlite3.Connection, table: str) -> list[tuple]:
    """Every row of ``table``, ordered by all its columns (so two files compare row for row)."""
    width = len(conn.execute(f'PRAGMA main.table_info("{table}")').fetchall())
    order = ", ".join(str(i) for i in range(1, width + 1))
    return conn.execute(f'SELECT * FROM main."{table}" ORDER BY {order}').fetchall()


def read_state(conn: sqlite3.Connection) -> dict[str, object]:
    """Every read table's rows, and the read tables' schema (tables, indexes, guard triggers)."""
    state: dict[str, object] = {table: table_rows(conn, table) for table in projections.READ_TABLES}
    names = ", ".join("?" for _ in projections.READ_TABLES)
    state["schema"] = conn.execute(
        f"SELECT type, name, sql FROM sqlite_master WHERE tbl_name IN ({names}) ORDER BY type, name",
        projections.READ_TABLES).fetchall()
    return state


class ProjectionBench:
    """Registries and fresh read tables under one test's ``tmp_path``."""

    def __init__(self, tmp_path: Path) -> None:
        self._dir = tmp_path
        self._files = 0
        self._opened: list[sqlite3.Connection] = []

    def close(self) -> None:
        for conn in self._opened:
            conn.close()

    def _new_file(self, stem: str) -> Path:
        self._files += 1
        return self._dir / f"{stem}-{self._files}.db"

    def log(self, script: Script, run_name: str = "r") -> list[Change]:
        """Run ``script`` on a handle of a new registry (run ``run_name``); its whole log."""
        db = self._new_file("registry")
        with LightMLHandle(db, run_name, synchronous="NORMAL") as handle:
            script(handle)
        return read_log(db)

    @staticmethod
    def log_of(db: Path) -> list[Change]:
        """The whole log of a registry some other way made (migrate, scan)."""
        return read_log(db)

    def _connect(self, stem: str) -> sqlite3.Connection:
        # As a registry is opened (WAL); NORMAL: no fsync per commit, these files are scratch.
        conn = store.connect(self._new_file(stem), synchronous="NORMAL")
        self._opened.append(conn)
        conn.execute("PRAGMA journal_mode = WAL")
        return conn

    def fresh(self) -> sqlite3.Connection:
        """A new file holding the read tables, with their indexes and guards, and no rows."""
        conn = self._connect("fresh")
        conn.execute("BEGIN IMMEDIATE")
        projections.create_tables(conn)
        conn.execute("COMMIT")
        return conn

    @staticmethod
    def apply_live(conn: sqlite3.Connection, changes: Iterable[Change]) -> None:
        """Apply each change alone, in its own write transaction, as a live writer would."""
        for change in changes:
            store.begin_write(conn)
            try:
                projections.apply(conn, [change])
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            store.commit_write(conn)

    def live(self, changes: Iterable[Change]) -> sqlite3.Connection:
        conn = self.fresh()
        self.apply_live(conn, changes)
        return conn

    def rebuilt(self, changes: list[Change], chunk: int | None = None) -> sqlite3.Connection:
        """A new file whose read tables ``projections.rebuild`` made from ``changes``, given
        in chunks of ``chunk`` events (all in one when None)."""
        conn = self._connect("rebuilt")
        size = chunk or max(len(changes), 1)
        conn.execute("BEGIN IMMEDIATE")
        projections.rebuild(conn, [changes[i:i + size] for i in range(0, len(changes), size)])
        conn.execute("COMMIT")
        return conn

    def step(self, changes: list[Change], event_type: str, table: str) -> tuple[list[tuple], list[tuple], Change]:
        """The rows of ``table`` just before and just after the last ``event_type`` event
        of ``changes`` (the events before it applied live first), and that event."""
        index = max(i for i, change in enumerate(changes) if change.type == event_type)
        conn = self.live(changes[:index])
        before = table_rows(conn, table)
        self.apply_live(conn, changes[index:index + 1])
        after = table_rows(conn, table)
        return before, after, changes[index]

    @staticmethod
    def registry_state(db: Path) -> dict[str, object]:
        """``read_state`` of a registry's own tables (made by LightML's writer)."""
        conn = sqlite3.connect(db)
        try:
            return read_state(conn)
        finally:
            conn.close()

    rows = staticmethod(table_rows)
    state = staticmethod(read_state)

    @staticmethod
    def of_type(changes: list[Change], event_type: str) -> list[Change]:
        return [change for change in changes if change.type == event_type]


@pytest.fixture
def bench(tmp_path: Path):
    made = ProjectionBench(tmp_path)
    yield made
    made.close()


def _every_event(handle: LightMLHandle) -> None:
    """Every event type but two, through the API: a lineage with checkpoints, scores and
    document keys, overwrites, edits, parameters, tags and repeats, a delete and its restore, a
    prune and its restore."""
    handle.register_model("base", "org/base")
    handle.register_model("sft", "org/sft", parent_name="base")
    handle.register_model("dpo", "org/dpo", parent_name="sft")
    handle.register_model("rm", "org/rm", parent_name="sft")
    checkpoint = handle.register_checkpoint("sft", 100, "ckpt/sft-100")
    handle.log_model_metric("base", "mmlu", "acc", 0.5, scores=[1, 0], doc_ids=["q1", "q2"])
    handle.log_metrics("sft", {"mmlu": {"acc": 0.75, "f1": 0.5}, "gsm8k": {"em": 0.25}})
    handle.log_metrics("dpo", {"mmlu": {"acc": 0.8}})
    handle.log_metrics("rm", {"mmlu": {"acc": 0.7}})
    handle.log_checkpoint_metric(checkpoint, "mmlu", "acc", 0.625, scores=[1, 1, 1, 1, 1, 0, 0, 0])
    handle.log_model_metric("base", "mmlu", "acc", 1.0, scores=[1, 1], doc_ids=["q1", "q2"], force=True)
    handle.log_metrics("sft", {"mmlu": {"acc": 0.75, "f1": 0.55}}, force=True)
    handle.set_notes("dpo", "beta=0.1")
    handle.rename_model("dpo", "dpo-v2")
    handle.set_hidden("base")
    handle.set_params("sft", {"lr": 3e-5, "beta": 0.1, "dataset": "uf"})
    handle.add_tags("sft", ["tuned", "dpo-base"])
    for seed, value in ((1, 0.4), (2, 0.44)):  # repeats (with scores), which the delete and restore keep
        handle.log_model_metric("sft", "hs", "acc", value, scores=[1, 0, seed % 2], doc_ids=["a", "b", "c"],
                                repeat=f"seed={seed}")
    handle.delete_model("sft")
    handle.set_parent("rm", "base")
    handle.restore_model("sft")
    handle.register_model("empty", "org/empty", run_name="scratch")
    handle.prune(grace_seconds=0)
    handle.restore_model("empty", run_name="scratch")
    # The dashboard's saved items: saved, renamed, reordered, removed (its name then reused) and restored.
    chart = handle.save_dashboard_item("chart", "arc", {"type": "bar", "metrics": [["reasoning", "arc"]]})
    view = handle.save_dashboard_item("view", "tuned", {"where": "tag:tuned", "sort_by": "model", "sort_dir": -1})
    handle.save_dashboard_item("view", "tuned models", {"where": "tag:tuned"}, item_id=view)
    second = handle.save_dashboard_item("chart", "arc radar", {"type": "radar", "models": [1, 2]})
    handle.reorder_dashboard_items("chart", [second, chart])
    handle.remove_dashboard_item(chart)
    handle.save_dashboard_item("chart", "arc", {"type": "line", "metrics": [["reasoning", "arc"]]})
    handle.save_dashboard_item("chart", "arc (old)", {"type": "line"}, item_id=second)
    handle.remove_dashboard_item(second)
    handle.restore_dashboard_item(second)


@pytest.fixture(scope="module")
def every_event_registry(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry whose log holds every event type (read it; copy it to change it): the
    API's, then a scan (file_imported), a delete of a scanned model, schema rules."""
    folder = tmp_path_factory.mktemp("every_event")
    db = folder / "registry.db"
    evals = folder / "evals"
    for model in ("dummy-a", "dummy-d"):
        shutil.copytree(LM_EVAL_DATA / model, evals / model)
    with LightMLHandle(db, "r", synchronous="NORMAL") as handle:
        _every_event(handle)
    scan_and_import(db, "r", evals)
    with LightMLHandle(db, "r", synchronous="NORMAL") as handle:
        handle.delete_model("dummy-d")
        handle.add_schema_rules([("mmlu", "acc"), ("mmlu", "f1"), ("gsm8k", "em")])
    return db
