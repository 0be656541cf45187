"""Undoing the deletes of a parent and its child restores the lineage, in any order."""

from __future__ import annotations

import itertools
import sqlite3

import pytest

from lightml import LightMLHandle
from lightml.log.replay import verify


@pytest.mark.parametrize(("delete_order", "restore_order"), list(itertools.product([("p", "c"), ("c", "p")], repeat=2)))
def test_parent_and_child_restored_in_any_order(tmp_path, delete_order, restore_order) -> None:
    db = tmp_path / "reg.db"
    with LightMLHandle(db, "r") as h:
        h.register_model("p", "org/p")
        h.register_model("c", "org/c", parent_name="p")
        h.register_model("g", "org/g", parent_name="c")  # a grandchild that stays live
        for name in delete_order:
            h.delete_model(name)
        for name in restore_order:
            h.restore_model(name)
    with sqlite3.connect(db) as conn:
        parents = dict(conn.execute("SELECT model_name, parent_id FROM model"))
        ids = dict(conn.execute("SELECT model_name, id FROM model"))
    assert parents == {"p": None, "c": ids["p"], "g": ids["c"]}
    assert verify(db).ok


def test_restore_leaves_a_parent_that_is_still_deleted_unlinked(tmp_path) -> None:
    db = tmp_path / "reg.db"
    with LightMLHandle(db, "r") as h:
        h.register_model("p", "org/p")
        h.register_model("c", "org/c", parent_name="p")
        h.delete_model("c")
        h.delete_model("p")
        h.restore_model("c")
        with sqlite3.connect(db) as conn:
            assert conn.execute("SELECT parent_id FROM model WHERE model_name = 'c'").fetchone() == (None,)
        h.restore_model("p")
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT parent_id FROM model WHERE model_name = 'c'").fetchone() == (1,)
