"""One definition per payload: every constructor of ``lightml.log.events`` builds a payload
that its schema (derived from the constructor's signature) accepts, with exactly the
schema's fields, in the key order the log has always stored (replay is byte-identical, and
old logs must verify)."""

from __future__ import annotations

import inspect
from typing import Any, Callable

import pytest
from pydantic import ValidationError

from lightml.log import events as ev
from lightml.log import schemas

MODEL_ROW = ev.model_row(7, "sft", "/m/sft", 3, "notes", 1, 2)
SNAPSHOT = ev.model_snapshot(
    MODEL_ROW, [ev.checkpoint_row(4, 7, 100, "/ck", "2026-01-01T00:00:00")],
    [ev.metric_row(9, None, 4, "eval", "acc", 0.5)], [ev.scores_row(9, "[1,0]", 2, '["a","b"]')], [8])
RUN_ROW = ev.run_row(2, "r", "sweep", '{"gpu": 1}', "2026-01-01 00:00:00")
MARKS = {"merged_from": "/other.db", "original_at": "2026-01-01T00:00:00.000000Z", "original_actor": "a@b (api)"}

# Every constructor with arguments for every parameter, optional ones included (not None).
FULL: dict[Callable[..., Any], dict[str, Any]] = {
    ev.model_row: dict(id=1, model_name="m", path="/p", parent_id=None, notes="n", hidden=0, run_id=1),
    ev.checkpoint_row: dict(id=1, model_id=1, step=0, path=None, created_at=None),
    ev.metric_row: dict(id=1, model_id=1, checkpoint_id=None, family="f", metric_name="m", value=None),
    ev.samples_location: dict(path="/r/m/samples_mmlu.jsonl", sha256="ab" * 32, size=120,
                              mtime_ns=1_700_000_000_000_000_000, offsets="[0]"),
    ev.scores_row: dict(metric_id=1, scores="[1]", n_samples=1, doc_keys='["d"]',
                        samples=ev.samples_location("/r/m/samples_mmlu.jsonl", "ab" * 32, 120, 1, "[0]")),
    ev.repeat_row: dict(metric_id=1, repeat="seed=1", value=0.5, scores="[1,0]", n_samples=2, doc_keys='["a","b"]'),
    ev.model_snapshot: dict(model=MODEL_ROW, checkpoints=[], metrics=[], detailed_scores=[], children=[],
                            repeats=[ev.repeat_row(1, "seed=1", 0.5)], params='{"lr":3e-05}', tags=["dpo"]),
    ev.run_row: dict(id=1, run_name="r", description=None, metadata=None, created_at=None),
    ev.metric_item: dict(metric_id=1, family="f", metric_name="m", value=0.5, scores="[1,0]", n_samples=2,
                         doc_keys='["a","b"]', samples=ev.samples_location("/s.jsonl", "cd" * 32, 240, 5, "[0,120]"),
                         repeat="seed=1"),
    ev.overwritten_item: dict(metric_id=1, family="f", metric_name="m", value=0.5, scores="[1]", n_samples=1,
                              doc_keys='["a"]', samples=ev.samples_location("/s.jsonl", "cd" * 32, 120, 5, "[0]"),
                              previous_value=0.25, repeat="seed=2", new_repeat=True),
    ev.run_created: dict(run_id=1, run_name="r", description="d", metadata="{}", created_at="2026-01-01 00:00:00"),
    ev.model_registered: dict(model_id=1, model_name="m", path="/p", parent_id=None, run_id=1, notes="n", hidden=1),
    ev.checkpoint_registered: dict(checkpoint_id=1, model_id=1, step=10, path="/ck", created_at="2026-01-01T00:00:00"),
    ev.metric_inserted: dict(model_id=1, checkpoint_id=None, step=None,
                             metrics=[ev.metric_item(1, "f", "m", 0.5),
                                      {**ev.metric_item(2, "f", "n", 1), **ev.merge_marks(**MARKS)}],
                             settings={"": [1], "f": [2]}),
    ev.metric_overwritten: dict(model_id=1, checkpoint_id=2, step=10,
                                metrics=[ev.overwritten_item(1, "f", "m", 0.5, previous_value=None)],
                                settings={"f": [1]}),
    ev.model_deleted: dict(model_id=7, model_name="sft", run_id=2, snapshot=SNAPSHOT),
    ev.model_restored: dict(model_id=7, deleted_seq=12, snapshot=SNAPSHOT, relinked_children=[8]),
    ev.schema_rule_added: dict(family="f", metric_name="m"),
    ev.model_notes_set: dict(model_id=1, notes=None, previous="old"),
    ev.model_renamed: dict(model_id=1, run_id=None, model_name="new", previous_name="old"),
    ev.model_hidden_set: dict(model_id=1, hidden=1, previous=0),
    ev.model_reparented: dict(model_id=1, parent_id=None, previous_parent_id=3),
    ev.run_deleted: dict(run_id=2, run_name="r", snapshot=RUN_ROW),
    ev.run_restored: dict(run_id=2, deleted_seq=5, snapshot=RUN_ROW),
    ev.file_imported: dict(path="/r/m/results.json", sha256="ab" * 32, size=10, mtime_ns=1_700_000_000_000_000_000,
                           model_id=1),
    ev.settings_recorded: dict(settings_id=1, settings='{"limit":100,"num_fewshot":5}'),
    ev.model_params_set: dict(model_id=1, params='{"beta":0.1,"lr":3e-05}', previous='{"lr":1e-05}'),
    ev.model_tags_set: dict(model_id=1, tags=["dpo", "tuned"], previous=["dpo"]),
    ev.dashboard_item_saved: dict(item_id=1, kind="chart", name="arc by size", position=0,
                                  spec='{"metrics":[["reasoning","arc"]],"type":"bar"}', previous_name=None,
                                  previous_spec=None),
    ev.dashboard_item_removed: dict(item_id=1, kind="chart", name="arc by size"),
    ev.dashboard_item_restored: dict(item_id=1, kind="chart", name="arc by size", position=2),
    ev.dashboard_items_reordered: dict(kind="view", item_ids=[3, 1, 2], previous=[1, 2, 3]),
}
# The schema of each row and item constructor (those of the events are ``schemas.PAYLOADS``).
# A metric item may also carry the marks of a merged value (``merge_marks``).
PARTS = {ev.model_row: schemas.ModelRow, ev.checkpoint_row: schemas.CheckpointRow, ev.metric_row: schemas.MetricRow,
         ev.samples_location: schemas.SamplesLocation, ev.scores_row: schemas.ScoresRow, ev.repeat_row: schemas.RepeatRow, ev.model_snapshot: schemas.ModelSnapshot, ev.run_row: schemas.RunRow,
         ev.metric_item: schemas.MetricItem, ev.overwritten_item: schemas.OverwrittenItem}


MARKED = (ev.metric_item, ev.overwritten_item)


def parameters(constructor: Callable[..., Any]) -> set[str]:
    """The keys a payload of the constructor may have."""
    names = set(inspect.signature(constructor).parameters)
    return names | set(inspect.signature(ev.merge_marks).parameters) if constructor in MARKED else names


def built(constructor: Callable[..., Any], arguments: dict[str, Any], marks: dict[str, Any]) -> tuple[type, dict]:
    """(schema, payload) of what the constructor builds (a metric item with ``marks``)."""
    made = constructor(**arguments)
    if constructor in MARKED:
        made.update(ev.merge_marks(**marks))
    if constructor in PARTS:
        return PARTS[constructor], made
    event_type, payload = made
    assert ev.CONSTRUCTORS[event_type] is constructor
    return schemas.PAYLOADS[event_type], payload


def test_every_event_type_has_one_constructor_a_version_and_a_schema() -> None:
    assert list(ev.CONSTRUCTORS) == list(ev.EVENT_TYPES)
    assert set(ev.EVENT_TYPES) == set(ev.CURRENT_VERSION) == set(schemas.PAYLOADS)
    assert set(ev.CONSTRUCTORS.values()) | set(PARTS) == set(FULL)


@pytest.mark.parametrize("constructor", list(FULL), ids=lambda c: c.__name__)
def test_a_full_payload_validates_with_exactly_the_schema_fields(constructor: Callable[..., Any]) -> None:
    schema, payload = built(constructor, FULL[constructor], MARKS)
    schema.model_validate(payload)
    assert set(payload) == set(schema.model_fields) == parameters(constructor)


@pytest.mark.parametrize("constructor", list(FULL), ids=lambda c: c.__name__)
def test_a_payload_of_the_required_arguments_only_validates(constructor: Callable[..., Any]) -> None:
    parameters = inspect.signature(constructor).parameters
    required = {name: value for name, value in FULL[constructor].items() if parameters[name].default is parameters[name].empty}
    schema, payload = built(constructor, required, {})
    schema.model_validate(payload)
    # A payload lacking a required key is refused (verify names such an event).
    for name in required:
        with pytest.raises(ValidationError):
            schema.model_validate({key: value for key, value in payload.items() if key != name})


def test_payloads_keep_the_key_order_of_the_log() -> None:
    assert ev.encode(ev.model_registered(model_id=1, model_name="m", path=None, parent_id=None, run_id=1)[1]) == (
        '{"model_id":1,"model_name":"m","path":null,"parent_id":null,"run_id":1,"notes":null,"hidden":0}')
    assert ev.encode(MODEL_ROW) == (
        '{"id":7,"model_name":"sft","path":"/m/sft","parent_id":3,"notes":"notes","hidden":1,"run_id":2}')
    # Optional keys are left out when None; scores go with their count, the marks of a merged
    # value come last, after the value an overwrite replaced.
    assert ev.encode(ev.metric_item(1, "f", "m", 0.5)) == '{"metric_id":1,"family":"f","metric_name":"m","value":0.5}'
    assert ev.encode(ev.metric_item(1, "f", "m", 0.5, "[1]", None)) == (
        '{"metric_id":1,"family":"f","metric_name":"m","value":0.5,"scores":"[1]","n_samples":null}')
    merged = ev.overwritten_item(1, "f", "m", 0.5, "[1]", 1, '["d"]', previous_value=0.25)
    merged.update(ev.merge_marks("/x.db", None, "a@b (api)"))
    assert ev.encode(merged) == (
        '{"metric_id":1,"family":"f","metric_name":"m","value":0.5,"scores":"[1]","n_samples":1,'
        '"doc_keys":"[\\"d\\"]","previous_value":0.25,"merged_from":"/x.db","original_actor":"a@b (api)"}')
    assert ev.encode(ev.scores_row(9, "[1]", 1)) == '{"metric_id":9,"scores":"[1]","n_samples":1}'
    # Where the texts are comes after the document keys (version 3 of the metric events).
    samples = ev.samples_location("/s", "ab", 9, 7, "[0]")
    assert ev.encode(ev.metric_item(1, "f", "m", 0.5, "[1]", 1, '["d"]', samples)) == (
        '{"metric_id":1,"family":"f","metric_name":"m","value":0.5,"scores":"[1]","n_samples":1,'
        '"doc_keys":"[\\"d\\"]","samples":{"path":"/s","sha256":"ab","size":9,"mtime_ns":7,"offsets":"[0]"}}')


@pytest.mark.parametrize("event_type, payload", [
    (ev.RUN_CREATED, {"run_id": True, "run_name": "r", "created_at": None}),  # a bool is not an id
    (ev.RUN_CREATED, {"run_id": 2**63, "run_name": "r", "created_at": None}),  # beyond SQLite's INTEGER
    (ev.MODEL_HIDDEN_SET, {"model_id": 1, "hidden": 1.0, "previous": 0}),  # a float is not an integer
    (ev.METRIC_INSERTED, {"model_id": 1, "checkpoint_id": None, "step": None,
                          "metrics": [{"metric_id": 1, "family": "f", "metric_name": "m", "value": "0.5"}]}),
    (ev.METRIC_INSERTED, {"model_id": 1, "checkpoint_id": None, "step": None,
                          "metrics": [{"metric_id": 1, "family": "f", "metric_name": "m", "value": float("inf")}]}),
    (ev.METRIC_INSERTED, {"model_id": 1, "checkpoint_id": None, "step": None,
                          "metrics": [{"metric_id": 1, "family": "f", "metric_name": "m", "value": 1, "scores": "{}"}]}),
    (ev.METRIC_INSERTED, {"model_id": 1, "checkpoint_id": None, "step": None,  # offsets must be a JSON array
                          "metrics": [{"metric_id": 1, "family": "f", "metric_name": "m", "value": 1, "scores": "[1]",
                                       "n_samples": 1, "samples": {"path": "/s", "sha256": "ab", "size": 1,
                                                                             "mtime_ns": 1, "offsets": "0"}}]}),
    (ev.SCHEMA_RULE_ADDED, {"family": "f", "metric_name": "m", "extra": 1}),  # unknown keys are refused
])
def test_the_derived_schemas_are_strict(event_type: str, payload: dict[str, Any]) -> None:
    assert schemas.payload_problem(event_type, payload) is not None
