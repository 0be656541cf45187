"""projections.id_counter: the highest run, model and checkpoint id ever given, (entity, last_id)."""

from __future__ import annotations

from lightml.log import events as ev


def test_each_registration_raises_its_counter(bench):
    changes = bench.log(lambda h: (h.register_model("a", "org/a"), h.register_model("b", "org/b", run_name="other"),
                                   h.register_checkpoint("a", 1, "ckpt/1")))
    conn = bench.fresh()
    seen = []
    for change in changes:
        bench.apply_live(conn, [change])
        seen.append((change.type, bench.rows(conn, "id_counter")))
    assert seen == [
        (ev.RUN_CREATED, [("run", 1)]),
        (ev.MODEL_REGISTERED, [("model", 1), ("run", 1)]),
        (ev.RUN_CREATED, [("model", 1), ("run", 2)]),
        (ev.MODEL_REGISTERED, [("model", 2), ("run", 2)]),
        (ev.CHECKPOINT_REGISTERED, [("checkpoint", 1), ("model", 2), ("run", 2)]),
    ]


def test_deletes_never_lower_a_counter_so_ids_are_not_given_again(bench):
    def script(h):
        h.register_model("a", "org/a")
        h.register_model("b", "org/b")
        h.delete_model("b")
        h.register_model("c", "org/c")

    changes = bench.log(script)
    before, after, _ = bench.step(changes, ev.MODEL_DELETED, "id_counter")
    assert before == after == [("model", 2), ("run", 1)]
    conn = bench.live(changes)
    assert bench.rows(conn, "id_counter") == [("model", 3), ("run", 1)]
    assert [row[:2] for row in bench.rows(conn, "model")] == [(1, "a"), (3, "c")]


def test_a_batch_keeps_the_highest_id_whatever_its_order(bench):
    # In a rebuild, a run of registrations is one batch; the counter takes their maximum.
    changes = bench.log(lambda h: (h.register_model("a", "org/a"), h.register_model("b", "org/b")))
    first, second = bench.of_type(changes, ev.MODEL_REGISTERED)
    conn = bench.live(bench.of_type(changes, ev.RUN_CREATED))
    bench.apply_live(conn, [second, first])
    assert ("model", 2) in bench.rows(conn, "id_counter")
