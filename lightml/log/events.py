"""The event log's vocabulary: event types, one constructor per payload, payload versions
and upcasting.

Every change to a registry is one of these events, and every writer of events (commands,
edits, the life cycle, metric logging, scan, merge, migrate) builds them with the
constructors below. Payloads carry everything a projection needs (assigned ids, timestamps,
values, previous values), so the read tables are a pure function of the log. A payload
whose shape changes gets a new version and an entry in ``UPCASTERS``; events already
written stay as they are and are upcast when read.
"""

from __future__ import annotations

import json
from typing import Any, Callable, NamedTuple

from lightml.log import codec

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
SETTINGS_RECORDED = "settings_recorded"
MODEL_PARAMS_SET = "model_params_set"
MODEL_TAGS_SET = "model_tags_set"
DASHBOARD_ITEM_SAVED = "dashboard_item_saved"
DASHBOARD_ITEM_REMOVED = "dashboard_item_removed"
DASHBOARD_ITEM_RESTORED = "dashboard_item_restored"
DASHBOARD_ITEMS_REORDERED = "dashboard_items_reordered"


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


# -- the payloads ---------------------------------------------------------------------------
#
# One constructor per payload type, and per row or item a payload holds: the one statement
# of its fields. The signature is the schema (``lightml.log.schemas`` derives the pydantic
# models from it): each parameter is a key, its annotation names its kind (the aliases
# below, which the schemas make strict), and a parameter without a default is a key every
# stored payload must have. The body builds the dict in the order the log has always stored
# its keys: replay is byte-identical, and old logs verify. Plain dicts and tuples, no
# validation: the bulk path builds a hundred thousand metric items a second, from input
# already checked (``lightml.write.validation``), and ``lightml verify`` checks the log.

SqlInt = int  # an integer SQLite's signed 64-bit INTEGER holds (never a bool, a float or text)
Number = float  # a finite number, never text (an int is fine)
JsonArrayText = str  # JSON array text: per-sample scores, document keys
Event = tuple[str, dict[str, Any]]  # (type, payload), as ``WriteTransaction.emit`` takes them
# What the row and item constructors return, named as the payloads holding them name them.
ModelRow = dict[str, Any]
CheckpointRow = dict[str, Any]
MetricRow = dict[str, Any]
ScoresRow = dict[str, Any]
RepeatRow = dict[str, Any]
ModelSnapshot = dict[str, Any]
RunRow = dict[str, Any]
MetricItem = dict[str, Any]
OverwrittenItem = dict[str, Any]
SamplesLocation = dict[str, Any]
SettingsText = str  # a flat JSON object of scalars, keys sorted (``lightml.write.validation.check_settings``)
SettingsIds = dict[str, list[int]]  # family ("" for every family) -> the settings ids its values were produced with
JsonObjectText = str  # a JSON object, keys sorted and compact (``lightml.write.dashboard_items.spec_text``)


# Rows as the projections store them (in delete and restore snapshots).


def model_row(id: SqlInt, model_name: str, path: str | None, parent_id: SqlInt | None, notes: str | None,
              hidden: SqlInt, run_id: SqlInt | None) -> ModelRow:
    return {"id": id, "model_name": model_name, "path": path, "parent_id": parent_id, "notes": notes,
            "hidden": hidden, "run_id": run_id}


def checkpoint_row(id: SqlInt, model_id: SqlInt, step: SqlInt | None, path: str | None,
                   created_at: str | None) -> CheckpointRow:
    return {"id": id, "model_id": model_id, "step": step, "path": path, "created_at": created_at}


def metric_row(id: SqlInt, model_id: SqlInt | None, checkpoint_id: SqlInt | None, family: str, metric_name: str,
               value: Number | None) -> MetricRow:
    return {"id": id, "model_id": model_id, "checkpoint_id": checkpoint_id, "family": family,
            "metric_name": metric_name, "value": value}


def samples_location(path: str, sha256: str, size: SqlInt, mtime_ns: SqlInt, offsets: JsonArrayText) -> SamplesLocation:
    """Where the documents behind a metric's per-sample scores are written out: the lm-eval
    samples file ``scan`` read them from (absolute path; SHA-256, size and modification time
    of its content then) and the byte offset of each score's line in it, in the scores' order
    (JSON array of ints). The texts stay in the file; ``flips`` reads them from there when
    asked, after checking that the file is still the one scanned."""
    return {"path": path, "sha256": sha256, "size": size, "mtime_ns": mtime_ns, "offsets": offsets}


def scores_row(metric_id: SqlInt, scores: JsonArrayText, n_samples: SqlInt | None,
               doc_keys: JsonArrayText | None = None, samples: SamplesLocation | None = None) -> ScoresRow:
    """``doc_keys``: which document each score is for (absent: unknown); ``samples``: where
    those documents' texts are (absent: unknown)."""
    row = {"metric_id": metric_id, "scores": scores, "n_samples": n_samples}
    if doc_keys is not None:
        row["doc_keys"] = doc_keys
    if samples is not None:
        row["samples"] = samples
    return row


def repeat_row(metric_id: SqlInt, repeat: str, value: Number, scores: JsonArrayText | None = None,
               n_samples: SqlInt | None = None, doc_keys: JsonArrayText | None = None) -> RepeatRow:
    """One repeat of a metric logged with repeat labels (``metric_repeats``); the scores (and
    their document keys) are left out when it has none."""
    row = {"metric_id": metric_id, "repeat": repeat, "value": value}
    if scores is not None:
        row["scores"] = scores
        row["n_samples"] = n_samples
    if doc_keys is not None:
        row["doc_keys"] = doc_keys
    return row


def model_snapshot(model: ModelRow, checkpoints: list[CheckpointRow], metrics: list[MetricRow],
                   detailed_scores: list[ScoresRow], children: list[SqlInt],
                   repeats: list[RepeatRow] | None = None, params: SettingsText | None = None,
                   tags: list[str] | None = None) -> ModelSnapshot:
    """Everything a model owned when it was deleted: enough to put it back exactly.
    Version 3 of the delete and restore events: ``repeats``, its metrics' repeats; ``params``
    and ``tags``, its parameters (canonical JSON text) and tags; each left out when it has none."""
    snapshot = {"model": model, "checkpoints": checkpoints, "metrics": metrics, "detailed_scores": detailed_scores,
                "children": children}
    if repeats:
        snapshot["repeats"] = repeats
    if params is not None:
        snapshot["params"] = params
    if tags:
        snapshot["tags"] = tags
    return snapshot


def run_row(id: SqlInt, run_name: str, description: str | None, metadata: str | None,
            created_at: str | None) -> RunRow:
    return {"id": id, "run_name": run_name, "description": description, "metadata": metadata,
            "created_at": created_at}


# The items of the metric events. Optional keys are left out when None (bulk events stay small).


def metric_item(metric_id: SqlInt, family: str, metric_name: str, value: Number | None,
                scores: JsonArrayText | None = None, n_samples: SqlInt | None = None,
                doc_keys: JsonArrayText | None = None, samples: SamplesLocation | None = None, *,
                repeat: str | None = None) -> MetricItem:
    """One metric's value. ``scores``: the per-sample scores, as the exact JSON text stored in
    detailed_scores, with their ``n_samples``; ``doc_keys``: the documents they are for, in the
    same order (JSON array of ids or hashes); ``samples``: where their texts are
    (``samples_location``, version 3); ``repeat`` (version 4): the label of the repeat this
    value is (``"seed=1234"``), the metric's value being the mean of its repeats."""
    item = {"metric_id": metric_id, "family": family, "metric_name": metric_name, "value": value}
    if scores is not None:
        item["scores"] = scores
        item["n_samples"] = n_samples
    if doc_keys is not None:
        item["doc_keys"] = doc_keys
    if samples is not None:
        item["samples"] = samples
    if repeat is not None:
        item["repeat"] = repeat
    return item


def overwritten_item(metric_id: SqlInt, family: str, metric_name: str, value: Number | None,
                     scores: JsonArrayText | None = None, n_samples: SqlInt | None = None,
                     doc_keys: JsonArrayText | None = None, samples: SamplesLocation | None = None, *,
                     previous_value: Number | None, repeat: str | None = None,
                     new_repeat: bool = False) -> OverwrittenItem:
    """A metric's new value, as ``metric_item``, with the value it replaces; the new scores
    replace the old. With ``repeat``: the value of that repeat of the metric, replacing the
    repeat's ``previous_value`` (or, the first label given to a metric logged without one, the
    metric's value); ``new_repeat``: a label the metric did not have, added beside the others
    (``previous_value`` None)."""
    item = metric_item(metric_id, family, metric_name, value, scores, n_samples, doc_keys, samples, repeat=repeat)
    item["previous_value"] = previous_value
    if new_repeat:
        item["new_repeat"] = True
    return item


def merge_marks(merged_from: str | None = None, original_at: str | None = None,
                original_actor: str | None = None) -> dict[str, Any]:
    """Version 2 of the metric events: what marks a metric item (either kind) as a value
    ``merge`` brought in: from which registry file, and when and by whom it was first written
    there (the event's own time and actor are the merge's). Added last, after every other key
    of the item (``item.update(merge_marks(...))``); each is left out when None. (A
    constructor of its own: the item constructors run for every metric the bulk path logs,
    and stay lean.)"""
    marks = {}
    if merged_from is not None:
        marks["merged_from"] = merged_from
    if original_at is not None:
        marks["original_at"] = original_at
    if original_actor is not None:
        marks["original_actor"] = original_actor
    return marks


# The events, one constructor per type.


def run_created(*, run_id: SqlInt, run_name: str, description: str | None = None, metadata: str | None = None,
                created_at: str | None) -> Event:
    return RUN_CREATED, {"run_id": run_id, "run_name": run_name, "description": description,
                         "metadata": metadata, "created_at": created_at}


def model_registered(*, model_id: SqlInt, model_name: str, path: str | None, parent_id: SqlInt | None,
                     run_id: SqlInt | None, notes: str | None = None, hidden: SqlInt = 0) -> Event:
    return MODEL_REGISTERED, {"model_id": model_id, "model_name": model_name, "path": path,
                              "parent_id": parent_id, "run_id": run_id, "notes": notes, "hidden": hidden}


def checkpoint_registered(*, checkpoint_id: SqlInt, model_id: SqlInt, step: SqlInt | None, path: str | None,
                          created_at: str | None) -> Event:
    return CHECKPOINT_REGISTERED, {"checkpoint_id": checkpoint_id, "model_id": model_id, "step": step,
                                   "path": path, "created_at": created_at}


def metric_inserted(*, model_id: SqlInt, checkpoint_id: SqlInt | None, step: SqlInt | None,
                    metrics: list[MetricItem], settings: SettingsIds | None = None) -> Event:
    """New metrics of one target: a model (checkpoint_id None) or one of its checkpoints.
    ``settings`` (version 4): what produced the values (see ``settings_recorded``), once per
    event rather than once per metric: family -> settings ids, ``""`` for every family; a
    metric's settings are those of ``""`` and of its family, later ids winning a shared key.
    Absent: unknown."""
    payload = {"model_id": model_id, "checkpoint_id": checkpoint_id, "step": step, "metrics": metrics}
    if settings is not None:
        payload["settings"] = settings
    return METRIC_INSERTED, payload


def metric_overwritten(*, model_id: SqlInt, checkpoint_id: SqlInt | None, step: SqlInt | None,
                       metrics: list[OverwrittenItem], settings: SettingsIds | None = None) -> Event:
    """Forced overwrites of existing metrics of one target; ``settings`` as for
    ``metric_inserted`` (those of the new values: absent, the new values' are unknown)."""
    payload = {"model_id": model_id, "checkpoint_id": checkpoint_id, "step": step, "metrics": metrics}
    if settings is not None:
        payload["settings"] = settings
    return METRIC_OVERWRITTEN, payload


def model_deleted(*, model_id: SqlInt, model_name: str, run_id: SqlInt | None, snapshot: ModelSnapshot) -> Event:
    return MODEL_DELETED, {"model_id": model_id, "model_name": model_name, "run_id": run_id,
                           "snapshot": snapshot}


def model_restored(*, model_id: SqlInt, deleted_seq: SqlInt, snapshot: ModelSnapshot,
                   relinked_children: list[SqlInt]) -> Event:
    """``snapshot``: as put back; ``relinked_children``: children the delete unlinked that
    still had no parent, linked again."""
    return MODEL_RESTORED, {"model_id": model_id, "deleted_seq": deleted_seq, "snapshot": snapshot,
                            "relinked_children": relinked_children}


def schema_rule_added(*, family: str, metric_name: str) -> Event:
    return SCHEMA_RULE_ADDED, {"family": family, "metric_name": metric_name}


def model_notes_set(*, model_id: SqlInt, notes: str | None, previous: str | None) -> Event:
    """``notes`` None clears them."""
    return MODEL_NOTES_SET, {"model_id": model_id, "notes": notes, "previous": previous}


def model_renamed(*, model_id: SqlInt, run_id: SqlInt | None, model_name: str, previous_name: str) -> Event:
    return MODEL_RENAMED, {"model_id": model_id, "run_id": run_id, "model_name": model_name,
                           "previous_name": previous_name}


def model_hidden_set(*, model_id: SqlInt, hidden: SqlInt, previous: SqlInt) -> Event:
    """``hidden``: 1 hidden, 0 shown."""
    return MODEL_HIDDEN_SET, {"model_id": model_id, "hidden": hidden, "previous": previous}


def model_reparented(*, model_id: SqlInt, parent_id: SqlInt | None, previous_parent_id: SqlInt | None) -> Event:
    """``parent_id`` None: deliberately no parent."""
    return MODEL_REPARENTED, {"model_id": model_id, "parent_id": parent_id, "previous_parent_id": previous_parent_id}


def model_params_set(*, model_id: SqlInt, params: SettingsText | None, previous: SettingsText | None) -> Event:
    """A model's parameters (``lr``, ``beta``, ``dataset``...) after the change, as a flat JSON
    object of scalars (canonical, as eval settings are; None: none left), and before it."""
    return MODEL_PARAMS_SET, {"model_id": model_id, "params": params, "previous": previous}


def model_tags_set(*, model_id: SqlInt, tags: list[str], previous: list[str]) -> Event:
    """A model's tags after the change (sorted) and before it."""
    return MODEL_TAGS_SET, {"model_id": model_id, "tags": tags, "previous": previous}


def run_deleted(*, run_id: SqlInt, run_name: str, snapshot: RunRow) -> Event:
    """An empty run removed by prune; its row is kept here so that it can come back."""
    return RUN_DELETED, {"run_id": run_id, "run_name": run_name, "snapshot": snapshot}


def run_restored(*, run_id: SqlInt, deleted_seq: SqlInt, snapshot: RunRow) -> Event:
    return RUN_RESTORED, {"run_id": run_id, "deleted_seq": deleted_seq, "snapshot": snapshot}


def file_imported(*, path: str, sha256: str, size: SqlInt, mtime_ns: SqlInt, model_id: SqlInt) -> Event:
    """A file ``scan`` imported for a model: a later scan skips it while it is unchanged."""
    return FILE_IMPORTED, {"path": path, "sha256": sha256, "size": size, "mtime_ns": mtime_ns,
                           "model_id": model_id}


def settings_recorded(*, settings_id: SqlInt, settings: SettingsText) -> Event:
    """A set of eval settings (what produced some values: harness and task versions, n-shot,
    limit, seeds...), recorded once however many values name it. Metric events name it by
    ``settings_id``."""
    return SETTINGS_RECORDED, {"settings_id": settings_id, "settings": settings}


def dashboard_item_saved(*, item_id: SqlInt, kind: str, name: str, position: SqlInt, spec: JsonObjectText,
                         previous_name: str | None, previous_spec: JsonObjectText | None) -> Event:
    """A chart, saved view or summary set of the dashboard (``kind``), new (``previous_name``
    None) or changed: renamed, or given another ``spec``. Saved in the registry, so that everyone
    reading it sees the same ones."""
    return DASHBOARD_ITEM_SAVED, {"item_id": item_id, "kind": kind, "name": name, "position": position,
                                  "spec": spec, "previous_name": previous_name, "previous_spec": previous_spec}


def dashboard_item_removed(*, item_id: SqlInt, kind: str, name: str) -> Event:
    """The item leaves the dashboard; its row stays (marked removed) for a restore."""
    return DASHBOARD_ITEM_REMOVED, {"item_id": item_id, "kind": kind, "name": name}


def dashboard_item_restored(*, item_id: SqlInt, kind: str, name: str, position: SqlInt) -> Event:
    """A removed item back, at ``position`` (after the items of its kind)."""
    return DASHBOARD_ITEM_RESTORED, {"item_id": item_id, "kind": kind, "name": name, "position": position}


def dashboard_items_reordered(*, kind: str, item_ids: list[SqlInt], previous: list[SqlInt]) -> Event:
    """Every live item of ``kind`` in its new order (``item_ids``) and in the one before."""
    return DASHBOARD_ITEMS_REORDERED, {"kind": kind, "item_ids": item_ids, "previous": previous}


# Every event type and its constructor, in the order the types were introduced.
CONSTRUCTORS: dict[str, Callable[..., Event]] = {
    RUN_CREATED: run_created,
    MODEL_REGISTERED: model_registered,
    CHECKPOINT_REGISTERED: checkpoint_registered,
    METRIC_INSERTED: metric_inserted,
    METRIC_OVERWRITTEN: metric_overwritten,
    MODEL_DELETED: model_deleted,
    MODEL_RESTORED: model_restored,
    SCHEMA_RULE_ADDED: schema_rule_added,
    MODEL_NOTES_SET: model_notes_set,
    MODEL_RENAMED: model_renamed,
    MODEL_HIDDEN_SET: model_hidden_set,
    MODEL_REPARENTED: model_reparented,
    RUN_DELETED: run_deleted,
    RUN_RESTORED: run_restored,
    FILE_IMPORTED: file_imported,
    SETTINGS_RECORDED: settings_recorded,
    MODEL_PARAMS_SET: model_params_set,
    MODEL_TAGS_SET: model_tags_set,
    DASHBOARD_ITEM_SAVED: dashboard_item_saved,
    DASHBOARD_ITEM_REMOVED: dashboard_item_removed,
    DASHBOARD_ITEM_RESTORED: dashboard_item_restored,
    DASHBOARD_ITEMS_REORDERED: dashboard_items_reordered,
}
EVENT_TYPES = tuple(CONSTRUCTORS)

# The payload version each type is written with now (the constructors above build that
# version). The pydantic schemas (``lightml.log.schemas``) are imported only by the tools
# that validate the log, so that opening a handle does not pay for building the models.
# Version 2 of the metric events: a metric item may carry merged_from, original_at and
# original_actor (a value brought in by ``merge``, with its time and actor in the source).
# Version 3 of the metric events, version 2 of the model delete and restore events: a metric
# item, and a snapshot's scores row, may carry ``samples`` (where the documents' texts are).
# Version 4 of the metric events: the event may carry ``settings`` (the values' eval settings),
# an item ``repeat`` (its repeat label) and an overwritten item ``new_repeat``.
# Version 3 of the model delete and restore events: the snapshot may carry ``repeats``,
# ``params`` and ``tags``.
CURRENT_VERSION: dict[str, int] = {event_type: 1 for event_type in EVENT_TYPES} | {
    METRIC_INSERTED: 4, METRIC_OVERWRITTEN: 4, MODEL_DELETED: 3, MODEL_RESTORED: 3}


def _with_optional_keys(payload: dict[str, Any]) -> dict[str, Any]:
    """An older version is the next one without its new keys: each is optional, and absent
    means what the older version meant (not merged; texts or settings unknown), so the payload is
    unchanged (and replay of an old log stays byte-identical)."""
    return payload


# (event type, version) -> function turning that version's payload into the next version's.
UPCASTERS: dict[tuple[str, int], Callable[[dict[str, Any]], dict[str, Any]]] = {
    (METRIC_INSERTED, 1): _with_optional_keys,
    (METRIC_OVERWRITTEN, 1): _with_optional_keys,
    (METRIC_INSERTED, 2): _with_optional_keys,
    (METRIC_OVERWRITTEN, 2): _with_optional_keys,
    (METRIC_INSERTED, 3): _with_optional_keys,
    (METRIC_OVERWRITTEN, 3): _with_optional_keys,
    (MODEL_DELETED, 1): _with_optional_keys,
    (MODEL_RESTORED, 1): _with_optional_keys,
    (MODEL_DELETED, 2): _with_optional_keys,
    (MODEL_RESTORED, 2): _with_optional_keys,
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
    payloads = codec.loads("[" + ",".join(row[3] for row in rows) + "]")
    current = CURRENT_VERSION
    return [
        Change(seq, event_type, payload if version == current.get(event_type) else upcast(event_type, version, payload))
        for (seq, event_type, version, _), payload in zip(rows, payloads)
    ]
