"""The event log's vocabulary: event types, their payload schemas, and upcasting.

Every change to a registry is one of these events. Payloads carry everything a projection
needs (assigned ids, timestamps, values, previous values), so the read tables are a pure
function of the log. A payload whose shape changes gets a new version and an entry in
``UPCASTERS``; events already written stay as they are and are upcast when read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Callable

from pydantic import BaseModel, ConfigDict

RUN_CREATED = "run_created"
MODEL_REGISTERED = "model_registered"
CHECKPOINT_REGISTERED = "checkpoint_registered"
METRIC_INSERTED = "metric_inserted"
METRIC_OVERWRITTEN = "metric_overwritten"
MODEL_DELETED = "model_deleted"
MODEL_RESTORED = "model_restored"
SCHEMA_RULE_ADDED = "schema_rule_added"

ORIGINS = ("api", "cli", "scan", "web", "migrate", "merge")


@dataclass(slots=True)
class Event:
    """One row of the ``events`` table, with its payload decoded."""

    seq: int
    type: str
    version: int
    payload: dict[str, Any]
    at: str
    user: str | None
    host: str | None
    pid: int | None
    origin: str


class _Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- rows as the projections store them (also used in delete/restore snapshots) ----------


class ModelRow(_Payload):
    id: int
    model_name: str
    path: str | None
    parent_id: int | None
    notes: str | None
    hidden: int
    run_id: int | None


class CheckpointRow(_Payload):
    id: int
    model_id: int
    step: int | None
    path: str | None
    created_at: str | None


class MetricRow(_Payload):
    id: int
    model_id: int | None
    checkpoint_id: int | None
    family: str
    metric_name: str
    value: float | None


class ScoresRow(_Payload):
    metric_id: int
    scores: str
    n_samples: int | None


class ModelSnapshot(_Payload):
    """Everything a model owned when it was deleted: enough to put it back exactly."""

    model: ModelRow
    checkpoints: list[CheckpointRow]
    metrics: list[MetricRow]
    detailed_scores: list[ScoresRow]
    children: list[int]


# -- payloads, one per event type ---------------------------------------------------------


class RunCreated(_Payload):
    run_id: int
    run_name: str
    description: str | None = None
    metadata: str | None = None
    created_at: str | None


class ModelRegistered(_Payload):
    model_id: int
    model_name: str
    path: str | None
    parent_id: int | None
    run_id: int | None
    notes: str | None = None
    hidden: int = 0


class CheckpointRegistered(_Payload):
    checkpoint_id: int
    model_id: int
    step: int | None
    path: str | None
    created_at: str | None


class MetricValue(_Payload):
    metric_id: int
    family: str
    metric_name: str
    value: float | None
    # Per-sample scores as the exact JSON text stored in detailed_scores (None: no scores).
    scores: str | None = None
    n_samples: int | None = None


class OverwrittenValue(MetricValue):
    previous_value: float | None


class MetricInserted(_Payload):
    """New metrics of one target: a model (checkpoint_id None) or one of its checkpoints."""

    model_id: int
    checkpoint_id: int | None
    step: int | None
    metrics: list[MetricValue]


class MetricOverwritten(_Payload):
    """Forced overwrites of existing metrics of one target; the new scores replace the old."""

    model_id: int
    checkpoint_id: int | None
    step: int | None
    metrics: list[OverwrittenValue]


class ModelDeleted(_Payload):
    model_id: int
    model_name: str
    run_id: int | None
    snapshot: ModelSnapshot


class ModelRestored(_Payload):
    model_id: int
    deleted_seq: int
    snapshot: ModelSnapshot
    # Children that were unlinked by the delete and still have no parent: re-linked.
    relinked_children: list[int]


class SchemaRuleAdded(_Payload):
    family: str
    metric_name: str


PAYLOADS: dict[str, type[_Payload]] = {
    RUN_CREATED: RunCreated,
    MODEL_REGISTERED: ModelRegistered,
    CHECKPOINT_REGISTERED: CheckpointRegistered,
    METRIC_INSERTED: MetricInserted,
    METRIC_OVERWRITTEN: MetricOverwritten,
    MODEL_DELETED: ModelDeleted,
    MODEL_RESTORED: ModelRestored,
    SCHEMA_RULE_ADDED: SchemaRuleAdded,
}

CURRENT_VERSION: dict[str, int] = {event_type: 1 for event_type in PAYLOADS}

# (event type, version) -> function turning that version's payload into the next version's.
UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {}


class UnknownEventError(ValueError):
    """An event this version of LightML cannot read (unknown type or newer version)."""


def upcast(event_type: str, version: int, payload: dict[str, Any]) -> dict[str, Any]:
    """Bring a stored payload up to the current version of its type."""
    current = CURRENT_VERSION.get(event_type)
    if current is None:
        raise UnknownEventError(f"unknown event type {event_type!r}: written by a newer LightML?")
    if version > current:
        raise UnknownEventError(
            f"event type {event_type!r} version {version} is newer than this LightML reads "
            f"(version {current}); upgrade light-ml-registry"
        )
    while version < current:
        payload = UPCASTERS[(event_type, version)](payload)
        version += 1
    return payload


def validate_payload(event_type: str, payload: dict[str, Any]) -> None:
    """Raise pydantic.ValidationError if a payload does not match its type's schema."""
    PAYLOADS[event_type].model_validate(payload)


def encode(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def decode_row(row: tuple) -> Event:
    """An ``events`` row (seq, type, version, payload, at, user, host, pid, origin) -> Event."""
    seq, event_type, version, payload_json, at, user, host, pid, origin = row
    payload = json.loads(payload_json)
    if version != CURRENT_VERSION.get(event_type):
        payload = upcast(event_type, version, payload)
        version = CURRENT_VERSION[event_type]
    return Event(seq, event_type, version, payload, at, user, host, pid, origin)
