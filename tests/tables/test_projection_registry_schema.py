"""projections.registry_schema: the allowed (family, metric_name) pairs."""

from __future__ import annotations

from lightml.log import events as ev


def test_schema_rule_added_makes_one_row_per_new_rule(bench):
    changes = bench.log(lambda h: (h.add_schema_rules([("mmlu", "acc"), ("gsm8k", "em"), ("mmlu", "acc")]),
                                   h.add_schema_rule("mmlu", "acc"), h.add_schema_rule("mmlu", "f1")))
    rules = bench.of_type(changes, ev.SCHEMA_RULE_ADDED)
    # The command writes only rules not there yet: the repeats above make no event.
    assert [c.payload for c in rules] == [{"family": "mmlu", "metric_name": "acc"},
                                          {"family": "gsm8k", "metric_name": "em"},
                                          {"family": "mmlu", "metric_name": "f1"}]
    assert bench.rows(bench.live(changes), "registry_schema") == [("gsm8k", "em"), ("mmlu", "acc"), ("mmlu", "f1")]


def test_a_rule_applied_twice_is_kept_once(bench):
    # (A merged log can hold the same rule twice: the projection ignores the second.)
    changes = bench.log(lambda h: h.add_schema_rule("mmlu", "acc"))
    (rule,) = bench.of_type(changes, ev.SCHEMA_RULE_ADDED)
    conn = bench.live(changes)
    bench.apply_live(conn, [rule._replace(seq=rule.seq + 1)])
    assert bench.rows(conn, "registry_schema") == [("mmlu", "acc")]
