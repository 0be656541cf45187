"""Parents first (``lineage_order.parents_first``): the one order in which merge and migrate
bring in another file's models. Merge assigns new ids in this order, so the order itself is
pinned; migrate cuts a parent cycle where the walk closes it, and only there."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from lightml.handle import LightMLHandle
from lightml.ingest.lineage_order import parents_first
from lightml.ingest.merge import merge
from lightml.ingest.migrate import migrate
from lightml.log.replay import verify


def test_each_model_comes_after_its_ancestors_in_a_depth_first_walk() -> None:
    # 2's parent (4) comes later in the input: it is placed just before 2, not after 3.
    assert parents_first({1: None, 2: 4, 3: None, 4: 1}) == ([1, 4, 2, 3], set())
    assert parents_first({5: 9, 2: None, 9: 2}) == ([2, 9, 5], set())
    assert parents_first({1: 77, 2: 1}) == ([1, 2], set())  # a parent not given puts nothing first


def test_a_cycle_is_cut_where_the_walk_closes_it() -> None:
    assert parents_first({1: 2, 2: 3, 3: 1}) == ([3, 2, 1], {3})
    assert parents_first({4: 4}) == ([4], {4})  # its own parent
    # Descendants of a cycle keep their parents: only a link of the cycle is cut.
    assert parents_first({1: 5, 5: 6, 6: 5}) == ([6, 5, 1], {6})


def test_a_lineage_thousands_deep_needs_no_recursion() -> None:
    depth = 20_000
    order, cut = parents_first({model: model + 1 if model < depth else None for model in range(1, depth + 1)})
    assert order == list(range(depth, 0, -1)) and not cut


@given(st.dictionaries(st.integers(0, 30), st.one_of(st.none(), st.integers(0, 35)), max_size=25))
def test_every_model_once_each_after_its_parent_and_one_cut_per_cycle(parents: dict[int, int | None]) -> None:
    order, cut = parents_first(parents)
    assert sorted(order) == sorted(parents)
    position = {model: i for i, model in enumerate(order)}
    for model, parent in parents.items():
        if parent in parents and model not in cut:
            assert position[parent] < position[model]
    cycles = set()
    for model in parents:  # the cycle a walk up from each model ends in, if any
        seen: list[int] = []
        node = model
        while node in parents and node not in seen:
            seen.append(node)
            node = parents[node]
        if node in seen:
            cycles.add(frozenset(seen[seen.index(node):]))
    assert len(cut) == len(cycles) and all(len(cut & cycle) == 1 for cycle in cycles)


def _1x_lineage(path: Path, models: list[tuple[int, str, int | None]]) -> Path:
    with sqlite3.connect(path) as conn:
        conn.executescript("""
            CREATE TABLE run (id INTEGER PRIMARY KEY, run_name TEXT, description TEXT, metadata TEXT, created_at TEXT);
            CREATE TABLE model (id INTEGER PRIMARY KEY, model_name TEXT, path TEXT, parent_id INTEGER, run_id INTEGER);
            CREATE TABLE metrics (id INTEGER PRIMARY KEY, model_id INTEGER, checkpoint_id INTEGER, family TEXT,
                                  metric_name TEXT, value REAL);
            INSERT INTO run VALUES (1, 'r', NULL, NULL, '2001-01-01 00:00:00');""")
        conn.executemany("INSERT INTO model VALUES (?, ?, NULL, ?, 1)", models)
    return path


def _parents(db: Path) -> dict[str, str | None]:
    with sqlite3.connect(db) as conn:
        return dict(conn.execute("SELECT m.model_name, p.model_name FROM model m LEFT JOIN model p ON p.id = m.parent_id"))


def test_migrate_cuts_one_link_per_parent_cycle_and_keeps_the_rest(tmp_path: Path) -> None:
    # a -> b -> c -> a is a cycle; d hangs below it, e below d.
    db = _1x_lineage(tmp_path / "old.db", [(1, "a", 2), (2, "b", 3), (3, "c", 1), (4, "d", 1), (5, "e", 4)])
    result = migrate(db)
    assert [w for w in result.warnings if "cycle" in w] == ["model 'c' (id 3) was in a parent cycle: parent cleared"]
    assert _parents(db) == {"a": "b", "b": "c", "c": None, "d": "a", "e": "d"}
    assert verify(db).ok


def test_migrate_registers_the_models_parents_first_in_the_merge_order(tmp_path: Path) -> None:
    db = _1x_lineage(tmp_path / "old.db", [(1, "base", None), (2, "dpo", 4), (3, "other", None), (4, "sft", 1)])
    migrate(db)
    with sqlite3.connect(db) as conn:
        registered = [row[0] for row in conn.execute(
            "SELECT json_extract(payload, '$.model_id') FROM events WHERE type = 'model_registered' ORDER BY seq")]
    assert registered == [1, 4, 2, 3]


def test_merge_gives_ids_in_parents_first_order(tmp_path: Path) -> None:
    source = _1x_lineage(tmp_path / "old.db", [(1, "base", None), (2, "dpo", 4), (3, "other", None), (4, "sft", 1)])
    target = tmp_path / "new.db"
    with LightMLHandle(target, "mine") as h:
        h.register_model("first", "org/first")
    merge(target, source)
    with sqlite3.connect(target) as conn:
        ids = dict(conn.execute("SELECT model_name, id FROM model"))
    assert ids == {"first": 1, "base": 2, "sft": 3, "dpo": 4, "other": 5}
    assert _parents(target) == {"first": None, "base": None, "sft": "base", "dpo": "sft", "other": None}
