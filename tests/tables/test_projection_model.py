"""projections.model: the ``model`` rows of registrations, deletes, restores and edits.

Columns: (id, model_name, path, parent_id, notes, hidden, run_id).
"""

from __future__ import annotations

from lightml.log import events as ev


def _lineage(handle) -> None:
    handle.register_model("base", "org/base")
    handle.register_model("sft", "org/sft", parent_name="base")
    handle.register_model("dpo", "org/dpo", parent_name="sft")
    handle.register_model("rm", "org/rm", parent_name="sft")


def test_model_registered_inserts_the_row_with_its_parent_and_run(bench):
    changes = bench.log(_lineage)
    before, after, event = bench.step(changes, ev.MODEL_REGISTERED, "model")
    assert event.payload["model_id"] == 4
    assert after == before + [(4, "rm", "org/rm", 2, None, 0, 1)]
    assert after == [(1, "base", "org/base", None, None, 0, 1), (2, "sft", "org/sft", 1, None, 0, 1),
                     (3, "dpo", "org/dpo", 2, None, 0, 1), (4, "rm", "org/rm", 2, None, 0, 1)]


def test_model_deleted_removes_the_row_and_unlinks_its_children(bench):
    changes = bench.log(lambda h: (_lineage(h), h.delete_model("sft")))
    before, after, event = bench.step(changes, ev.MODEL_DELETED, "model")
    assert event.payload["snapshot"]["children"] == [3, 4]
    assert [(row[0], row[3]) for row in before] == [(1, None), (2, 1), (3, 2), (4, 2)]
    assert after == [(1, "base", "org/base", None, None, 0, 1),
                     (3, "dpo", "org/dpo", None, None, 0, 1), (4, "rm", "org/rm", None, None, 0, 1)]


def test_model_restored_puts_the_row_back_and_relinks_only_the_children_it_names(bench):
    def script(h):
        _lineage(h)
        h.set_notes("sft", "the good one")
        h.delete_model("sft")
        h.set_parent("rm", "base")  # given a parent since the delete: not re-linked
        h.restore_model("sft")

    changes = bench.log(script)
    before, after, event = bench.step(changes, ev.MODEL_RESTORED, "model")
    assert event.payload["relinked_children"] == [3]
    assert before == [(1, "base", "org/base", None, None, 0, 1), (3, "dpo", "org/dpo", None, None, 0, 1),
                      (4, "rm", "org/rm", 1, None, 0, 1)]
    assert after == [(1, "base", "org/base", None, None, 0, 1), (2, "sft", "org/sft", 1, "the good one", 0, 1),
                     (3, "dpo", "org/dpo", 2, None, 0, 1), (4, "rm", "org/rm", 1, None, 0, 1)]


def test_model_notes_set_changes_only_the_notes(bench):
    changes = bench.log(lambda h: (_lineage(h), h.set_notes("dpo", "beta=0.1"), h.set_notes("dpo", None)))
    notes = bench.of_type(changes, ev.MODEL_NOTES_SET)
    assert [c.payload for c in notes] == [{"model_id": 3, "notes": "beta=0.1", "previous": None},
                                          {"model_id": 3, "notes": None, "previous": "beta=0.1"}]
    conn = bench.live(changes[:-1])
    assert bench.rows(conn, "model")[2] == (3, "dpo", "org/dpo", 2, "beta=0.1", 0, 1)
    bench.apply_live(conn, changes[-1:])
    assert bench.rows(conn, "model")[2] == (3, "dpo", "org/dpo", 2, None, 0, 1)


def test_model_renamed_changes_only_the_name(bench):
    changes = bench.log(lambda h: (_lineage(h), h.rename_model("dpo", "dpo-v2")))
    before, after, _ = bench.step(changes, ev.MODEL_RENAMED, "model")
    assert after == before[:2] + [(3, "dpo-v2", "org/dpo", 2, None, 0, 1)] + before[3:]


def test_model_hidden_set_hides_and_shows(bench):
    changes = bench.log(lambda h: (_lineage(h), h.set_hidden("base"), h.set_hidden("base", False)))
    assert [c.payload["hidden"] for c in bench.of_type(changes, ev.MODEL_HIDDEN_SET)] == [1, 0]
    conn = bench.live(changes[:-1])
    assert bench.rows(conn, "model")[0] == (1, "base", "org/base", None, None, 1, 1)
    bench.apply_live(conn, changes[-1:])
    assert bench.rows(conn, "model")[0] == (1, "base", "org/base", None, None, 0, 1)


def test_model_reparented_sets_or_clears_the_parent(bench):
    changes = bench.log(lambda h: (_lineage(h), h.set_parent("dpo", "base"), h.set_parent("sft", None)))
    conn = bench.live(changes[:-1])
    assert bench.rows(conn, "model")[2] == (3, "dpo", "org/dpo", 1, None, 0, 1)
    bench.apply_live(conn, changes[-1:])
    assert [row[3] for row in bench.rows(conn, "model")] == [None, None, 1, 2]
