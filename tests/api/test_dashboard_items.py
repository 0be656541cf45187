"""The dashboard's saved items through both handles and on both engines: ids never reused,
names unique among the live items of a kind, order kept, removed items restorable, bad specs
refused before anything is written."""

from __future__ import annotations

import pytest

from lightml.errors import ConflictError, InvalidInputError, NotFoundError


@pytest.fixture
def registry(open_handle, db):
    handle = open_handle(db, "r")  # (db: on each engine, tests/api/conftest.py)
    handle.register_model("m", "/m")
    return handle


def names(handle, kind: str, removed: bool = False) -> list[str]:
    return [item["name"] for item in handle.dashboard_items(kind, removed=removed)]


def test_items_keep_their_order_and_come_back_after_a_remove(registry) -> None:
    h = registry
    a = h.save_dashboard_item("chart", "a", {"type": "bar", "metrics": [["f", "m"]]})
    b = h.save_dashboard_item("chart", "b", {"type": "radar"})
    view = h.save_dashboard_item("view", "a", {"family": None, "checkpoints": True})
    assert (a, b, view) == (1, 2, 3) and names(h, "chart") == ["a", "b"] and names(h, "view") == ["a"]
    assert h.dashboard_items("view")[0]["spec"] == {"family": None, "checkpoints": True}
    assert h.reorder_dashboard_items("chart", [b, a]) is True and names(h, "chart") == ["b", "a"]
    assert h.reorder_dashboard_items("chart", [b, a]) is False  # the same order: nothing written
    assert h.remove_dashboard_item(b) is True and h.remove_dashboard_item(b) is False
    assert names(h, "chart") == ["a"] and names(h, "chart", removed=True) == ["b"]
    c = h.save_dashboard_item("chart", "c", {"type": "line"})
    assert c == 4  # a removed item's id is never given again
    assert h.restore_dashboard_item(b) is True and names(h, "chart") == ["a", "c", "b"]  # back, last
    assert h.restore_dashboard_item(b) is False
    assert [item["kind"] for item in h.dashboard_items()] == ["chart"] * 3 + ["view"]


def test_renames_and_refusals(registry) -> None:
    h = registry
    a = h.save_dashboard_item("summary", "reasoning", {"metrics": [["r", "arc"], ["r", "hellaswag"]]})
    h.save_dashboard_item("summary", "knowledge", {"metrics": [["k", "mmlu"]]})
    assert h.save_dashboard_item("summary", "reasoning avg", {"metrics": [["r", "arc"]]}, item_id=a) == a
    assert names(h, "summary") == ["reasoning avg", "knowledge"]
    with pytest.raises(ConflictError, match="already exists"):
        h.save_dashboard_item("summary", "knowledge", {"metrics": [["k", "mmlu"]]}, item_id=a)
    with pytest.raises(InvalidInputError, match="is a summary, not a chart"):
        h.save_dashboard_item("chart", "x", {"type": "bar"}, item_id=a)
    with pytest.raises(NotFoundError):
        h.remove_dashboard_item(99)
    with pytest.raises(InvalidInputError, match="must name every summary once"):
        h.reorder_dashboard_items("summary", [a])
    with pytest.raises(InvalidInputError, match="not finite|must be"):
        h.save_dashboard_item("chart", "x", {"type": "bar", "error_bars": float("nan")})
    with pytest.raises(InvalidInputError, match="kind must be one of"):
        h.dashboard_items("board")
    assert names(h, "summary") == ["reasoning avg", "knowledge"]
