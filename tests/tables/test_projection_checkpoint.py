"""projections.checkpoint: the ``checkpoint`` rows of registrations, model deletes and restores.

Columns: (id, model_id, step, path, created_at).
"""

from __future__ import annotations

from lightml.log import events as ev


def _two_models_with_checkpoints(handle) -> None:
    handle.register_model("a", "org/a")
    handle.register_model("b", "org/b")
    handle.register_checkpoint("a", 100, "ckpt/a-100")
    handle.register_checkpoint("b", 100, "ckpt/b-100")
    handle.register_checkpoint("a", 200, "ckpt/a-200")


def test_checkpoint_registered_inserts_the_row_with_its_time_as_1x_wrote_it(bench):
    changes = bench.log(_two_models_with_checkpoints)
    before, after, event = bench.step(changes, ev.CHECKPOINT_REGISTERED, "checkpoint")
    created_at = event.payload["created_at"]
    assert not created_at.endswith("Z") and "T" in created_at  # naive UTC isoformat
    assert after == before + [(3, 1, 200, "ckpt/a-200", created_at)]
    assert [row[:4] for row in after] == [(1, 1, 100, "ckpt/a-100"), (2, 2, 100, "ckpt/b-100"),
                                          (3, 1, 200, "ckpt/a-200")]


def test_model_deleted_removes_that_models_checkpoints_only(bench):
    changes = bench.log(lambda h: (_two_models_with_checkpoints(h), h.delete_model("a")))
    before, after, event = bench.step(changes, ev.MODEL_DELETED, "checkpoint")
    assert [c["id"] for c in event.payload["snapshot"]["checkpoints"]] == [1, 3]
    assert after == [before[1]]


def test_model_restored_puts_the_same_rows_back(bench):
    changes = bench.log(lambda h: (_two_models_with_checkpoints(h), h.delete_model("a"), h.restore_model("a")))
    deleted_at = [c.type for c in changes].index(ev.MODEL_DELETED)
    registered = bench.rows(bench.live(changes[:deleted_at]), "checkpoint")
    before, after, _ = bench.step(changes, ev.MODEL_RESTORED, "checkpoint")
    assert [row[0] for row in before] == [2]
    assert after == registered  # ids, steps, paths and times as registered
