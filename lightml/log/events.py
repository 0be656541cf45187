"""The event log's vocabulary: event types, payload versions, and upcasting.

Every change to a registry is one of these events. Payloads carry everything a projection
needs (assigned ids, timestamps, values, previous values), so the read tables are a pure
function of the log. A payload whose shape changes gets a new version and an entry in
``UPCASTERS``; events already written stay as they are and are upcast when read.
"""

from __future__ import annotations

import json
from typing import Any, Callable, NamedTuple

RUN_CREATED = "run_created"
MODEL_REGISTERED = "model_registered"
CHECKPOINT_REGISTERED = "checkpoint_registered"
METRIC_INSERTED = "metric_inserted"
METRIC_OVERWRITTEN = "metric_overwritten"
MODEL_DELETED = "model_deleted"
MODEL_RESTORED = "model_restored"
SCHEMA_RULE_ADDED = "schema_rule_added"
MODEL_NOTES_SET = "model_notes_set"
MODEL_RENAMED = "model_renamed"
MODEL_HIDDEN_SET = "model_hidden_set"
MODEL_REPARENTED = "model_reparented"
RUN_DELETED = "run_deleted"
RUN_RESTORED = "run_restored"
FILE_IMPORTED = "file_imported"


def actor_text(user: str | None, host: str | None, origin: str) -> str:
    """Who wrote an event, as every history and listing shows it: ``user@host (origin)``
    (``?`` for what the event does not know)."""
    return f"{user or '?'}@{host or '?'} ({origin})"


class Change(NamedTuple):
    """What a projection reads of an event: its log position, type and payload (brought up
    to the current version). Who wrote it and when stay in the ``events`` row; replay reads
    only these columns of the log."""

    seq: int
    type: str
    payload: dict[str, Any]


EVENT_TYPES = (
    RUN_CREATED,
    MODEL_REGISTERED,
    CHECKPOINT_REGISTERED,
    METRIC_INSERTED,
    METRIC_OVERWRITTEN,
    MODEL_DELETED,
    MODEL_RESTORED,
    SCHEMA_RULE_ADDED,
    MODEL_NOTES_SET,
    MODEL_RENAMED,
    MODEL_HIDDEN_SET,
    MODEL_REPARENTED,
    RUN_DELETED,
    RUN_RESTORED,
    FILE_IMPORTED,
)

# The payload version each type is written with now. The pydantic schema of every payload
# is in ``lightml.log.schemas`` (imported only by the tools that validate the log, so
# that opening a handle does not pay for building the models).
# Version 2 of the metric events: a metric item may carry merged_from, original_at and
# original_actor (a value brought in by ``merge``, with its time and actor in the source).
CURRENT_VERSION: dict[str, int] = {event_type: 1 for event_type in EVENT_TYPES} | {
    METRIC_INSERTED: 2, METRIC_OVERWRITTEN: 2}


def _metric_items_v1_to_v2(payload: dict[str, Any]) -> dict[str, Any]:
    """A version-1 metric event is a version-2 one whose values were not merged: the new
    fields are optional and absent means "written here", so the payload is unchanged (and
    replay of an old log stays byte-identical)."""
    return payload


# (event type, version) -> function turning that version's payload into the next version's.
UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {
    (METRIC_INSERTED, 1): _metric_items_v1_to_v2,
    (METRIC_OVERWRITTEN, 1): _metric_items_v1_to_v2,
}


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


# No cycle check: payloads are plain trees built by this library (it saves ~7% on a bulk event).
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False, check_circular=False)


def encode(payload: dict[str, Any]) -> str:
    """A payload as the log stores it: compact JSON, NaN refused."""
    return _ENCODER.encode(payload)


def decode_changes(rows: list[tuple]) -> list[Change]:
    """``(seq, type, version, payload)`` rows of the log -> changes, with one ``json.loads``
    for all the payloads (replay's hot path)."""
    payloads = json.loads("[" + ",".join(row[3] for row in rows) + "]")
    current = CURRENT_VERSION
    return [
        Change(seq, event_type, payload if version == current.get(event_type) else upcast(event_type, version, payload))
        for (seq, event_type, version, _), payload in zip(rows, payloads)
    ]
