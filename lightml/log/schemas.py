"""Pydantic schemas of the event payloads: the documented shape of the log.

``lightml verify`` checks every stored payload against these; the writer does not (it
builds payloads from validated input, and validating each one would cost more than the
insert). A test checks that every event the library writes matches its schema.
"""

from __future__ import annotations

import json
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from lightml.log.events import (
    CHECKPOINT_REGISTERED,
    FILE_IMPORTED,
    METRIC_INSERTED,
    METRIC_OVERWRITTEN,
    MODEL_DELETED,
    MODEL_HIDDEN_SET,
    MODEL_NOTES_SET,
    MODEL_REGISTERED,
    MODEL_RENAMED,
    MODEL_REPARENTED,
    MODEL_RESTORED,
    RUN_CREATED,
    RUN_DELETED,
    RUN_RESTORED,
    SCHEMA_RULE_ADDED,
)

# Every integer of a payload is a real int (not a bool, a float or text) that SQLite's signed
# 64-bit INTEGER can hold: a larger one would fail the projection with a bare OverflowError.
SqlInt = Annotated[int, Field(strict=True, ge=-(2**63), le=2**63 - 1)]
# A value is a number (an int is fine), never text such as "0.5" that a lax check would convert.
Number = Annotated[float, Field(strict=True)]


def is_json_array_text(text: object) -> bool:
    """Per-sample scores and document keys are stored as JSON array text (``migrate`` asks
    this of 1.x rows before it turns them into events)."""
    try:
        return isinstance(text, str) and isinstance(json.loads(text), list)
    except (ValueError, RecursionError):
        return False


def _json_array_text(text: str) -> str:
    if not is_json_array_text(text):
        raise ValueError("not JSON array text")
    return text


JsonArrayText = Annotated[str, AfterValidator(_json_array_text)]


class _Payload(BaseModel):
    # No NaN or infinity anywhere: the log holds what the tables can (SQLite stores NaN as NULL).
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


# -- rows as the projections store them (also used in delete/restore snapshots) ----------


class ModelRow(_Payload):
    id: SqlInt
    model_name: str
    path: str | None
    parent_id: SqlInt | None
    notes: str | None
    hidden: SqlInt
    run_id: SqlInt | None


class CheckpointRow(_Payload):
    id: SqlInt
    model_id: SqlInt
    step: SqlInt | None
    path: str | None
    created_at: str | None


class MetricRow(_Payload):
    id: SqlInt
    model_id: SqlInt | None
    checkpoint_id: SqlInt | None
    family: str
    metric_name: str
    value: Number | None


class ScoresRow(_Payload):
    metric_id: SqlInt
    scores: JsonArrayText
    n_samples: SqlInt | None
    doc_keys: JsonArrayText | None = None  # which document each score is for (absent: unknown)


class ModelSnapshot(_Payload):
    """Everything a model owned when it was deleted: enough to put it back exactly."""

    model: ModelRow
    checkpoints: list[CheckpointRow]
    metrics: list[MetricRow]
    detailed_scores: list[ScoresRow]
    children: list[SqlInt]


# -- payloads, one per event type ---------------------------------------------------------


class RunCreated(_Payload):
    run_id: SqlInt
    run_name: str
    description: str | None = None
    metadata: str | None = None
    created_at: str | None


class ModelRegistered(_Payload):
    model_id: SqlInt
    model_name: str
    path: str | None
    parent_id: SqlInt | None
    run_id: SqlInt | None
    notes: str | None = None
    hidden: SqlInt = 0


class CheckpointRegistered(_Payload):
    checkpoint_id: SqlInt
    model_id: SqlInt
    step: SqlInt | None
    path: str | None
    created_at: str | None


class MetricValue(_Payload):
    metric_id: SqlInt
    family: str
    metric_name: str
    value: Number | None
    # Per-sample scores as the exact JSON text stored in detailed_scores (None: no scores).
    scores: JsonArrayText | None = None
    n_samples: SqlInt | None = None
    # The documents the scores are for, in the same order (JSON array of ids or hashes).
    doc_keys: JsonArrayText | None = None
    # Version 2: a value brought in by ``merge`` says from which registry file, and when and
    # by whom it was first written there (the event's own time and actor are the merge's).
    merged_from: str | None = None
    original_at: str | None = None
    original_actor: str | None = None


class OverwrittenValue(MetricValue):
    previous_value: Number | None


class MetricInserted(_Payload):
    """New metrics of one target: a model (checkpoint_id None) or one of its checkpoints."""

    model_id: SqlInt
    checkpoint_id: SqlInt | None
    step: SqlInt | None
    metrics: list[MetricValue]


class MetricOverwritten(_Payload):
    """Forced overwrites of existing metrics of one target; the new scores replace the old."""

    model_id: SqlInt
    checkpoint_id: SqlInt | None
    step: SqlInt | None
    metrics: list[OverwrittenValue]


class ModelDeleted(_Payload):
    model_id: SqlInt
    model_name: str
    run_id: SqlInt | None
    snapshot: ModelSnapshot


class ModelRestored(_Payload):
    model_id: SqlInt
    deleted_seq: SqlInt
    snapshot: ModelSnapshot
    # Children that were unlinked by the delete and still have no parent: re-linked.
    relinked_children: list[SqlInt]


class SchemaRuleAdded(_Payload):
    family: str
    metric_name: str


class ModelNotesSet(_Payload):
    model_id: SqlInt
    notes: str | None  # None clears them
    previous: str | None


class ModelRenamed(_Payload):
    model_id: SqlInt
    run_id: SqlInt | None
    model_name: str
    previous_name: str


class ModelHiddenSet(_Payload):
    model_id: SqlInt
    hidden: SqlInt  # 1 hidden, 0 shown
    previous: SqlInt


class ModelReparented(_Payload):
    model_id: SqlInt
    parent_id: SqlInt | None  # None: deliberately no parent
    previous_parent_id: SqlInt | None


class RunRow(_Payload):
    id: SqlInt
    run_name: str
    description: str | None
    metadata: str | None
    created_at: str | None


class RunDeleted(_Payload):
    """An empty run removed by prune; the row is kept here so it can come back."""

    run_id: SqlInt
    run_name: str
    snapshot: RunRow


class RunRestored(_Payload):
    run_id: SqlInt
    deleted_seq: SqlInt
    snapshot: RunRow


class FileImported(_Payload):
    """A file ``scan`` imported for a model: a later scan skips it while it is unchanged."""

    path: str
    sha256: str
    size: SqlInt
    mtime_ns: SqlInt
    model_id: SqlInt


PAYLOADS: dict[str, type[_Payload]] = {
    RUN_CREATED: RunCreated,
    MODEL_REGISTERED: ModelRegistered,
    CHECKPOINT_REGISTERED: CheckpointRegistered,
    METRIC_INSERTED: MetricInserted,
    METRIC_OVERWRITTEN: MetricOverwritten,
    MODEL_DELETED: ModelDeleted,
    MODEL_RESTORED: ModelRestored,
    SCHEMA_RULE_ADDED: SchemaRuleAdded,
    MODEL_NOTES_SET: ModelNotesSet,
    MODEL_RENAMED: ModelRenamed,
    MODEL_HIDDEN_SET: ModelHiddenSet,
    MODEL_REPARENTED: ModelReparented,
    RUN_DELETED: RunDeleted,
    RUN_RESTORED: RunRestored,
    FILE_IMPORTED: FileImported,
}

# The schemas above are those of CURRENT_VERSION (lightml.log.events): older payloads are
# validated after upcasting.


def validate_payload(event_type: str, payload: dict[str, Any]) -> None:
    """Raise pydantic.ValidationError if a payload does not match its type's schema."""
    PAYLOADS[event_type].model_validate(payload)


def payload_problem(event_type: str, payload: dict[str, Any]) -> str | None:
    """None when the payload matches its schema, else where and why it does not, in one line."""
    from pydantic import ValidationError

    try:
        validate_payload(event_type, payload)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(map(str, error["loc"]))
        return f"{where}: {error['msg']} (got {error.get('input')!r})"
    return None
