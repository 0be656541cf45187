"""Logging metrics: what to log (``MetricInput``), where (a model or a checkpoint),
``LogMetrics``, the command that deduplicates against the read tables and emits
``metric_inserted`` / ``metric_overwritten``, and ``MetricBuffer``, where a transaction
holds those events back so that a group of small logs is appended as a few events.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from lightml.errors import InvalidInputError, SchemaViolationError
from lightml.log import events as ev
from lightml.log.engine import Connection, ExistingMetrics, engine_of
from lightml.log.transaction import Actor, Entry, WriteTransaction
from lightml.read import resolve
from lightml.results import METRIC_INSERTED, METRIC_SKIPPED, METRIC_UPDATED
from lightml.write import ids
from projections import metric_repeats
from projections import settings as settings_projection


class MetricInput(NamedTuple):
    """One validated metric to log: scores already encoded as JSON text. (A named tuple:
    bulk calls build tens of thousands, and a tuple is several times cheaper to create
    than a frozen dataclass.) Its fields are ``events.metric_item``'s after the metric id,
    in the same order: ``metric_item(metric_id, *item)``."""

    family: str
    metric_name: str
    value: float
    scores: str | None = None
    n_samples: int | None = None
    doc_keys: str | None = None
    samples: dict | None = None  # events.samples_location: where the scores' documents are (scan)


class ModelTarget(NamedTuple):  # named tuples: made once per logged metric, cheaply
    run_name: str | None
    model_name: str


class CheckpointTarget(NamedTuple):
    checkpoint_id: int


# The read tables each cached lookup comes from (the cache forgets it when they change).
_SCHEMA_TABLES = frozenset({"registry_schema"})
_MODEL_TARGET_TABLES = frozenset({"run", "model"})
_CHECKPOINT_TARGET_TABLES = frozenset({"checkpoint"})


def _check_schema(tx: WriteTransaction, items: list[MetricInput]) -> None:
    allowed = tx.cache.get("schema")
    if allowed is None:
        allowed = tx.cache.put("schema", set(tx.conn.execute("SELECT family, metric_name FROM registry_schema")),
                               _SCHEMA_TABLES)
    if not allowed:
        return  # no rules: anything goes
    for item in items:
        if (item.family, item.metric_name) not in allowed:
            raise SchemaViolationError(
                f"metric {item.family}/{item.metric_name} not found in registry schema "
                "(add it with add_schema_rule, or log one of the registered metrics)"
            )


def existing_metrics(conn: Connection, key_column: str, key: int, pairs: set[tuple[str, str]]) -> ExistingMetrics:
    """(family, metric_name) -> (metric id, value) for the pairs that already exist, asked
    of the connection's storage engine in few queries (on SQLite: the pairs as one JSON
    array through ``json_each``; see ``lightml.log.sqlite_lookups``)."""
    return engine_of(conn).existing_metrics(conn, key_column, key, pairs)


def _existing_metrics_one_by_one(conn: Connection, key_column: str, key: int,
                                 pairs: set[tuple[str, str]]) -> ExistingMetrics:
    """As ``existing_metrics``, with one query per pair: the slow twin the fast path is
    pinned to (tests/write/test_metric_lookup_twins.py)."""
    return engine_of(conn).existing_metrics_one_by_one(conn, key_column, key, pairs)


# The highest metric id ever given. Metric ids come only from metric_inserted events, whose id
# ranges never overlap and are never removed, so the last range holds the highest one (a
# counter row, as runs and models have, would cost a page per commit).
_LAST_METRIC_ID = "SELECT last_metric_id FROM metric_insert_range ORDER BY first_metric_id DESC LIMIT 1"


# Eval settings as a command carries them: family ("" for every family) -> the canonical
# texts of the sets that apply (``validation.check_settings``), later ones winning a shared key.
SettingsByFamily = dict[str, tuple[str, ...]]
_NEVER_CHANGES: frozenset[str] = frozenset()
_LAST_SETTINGS_ID = "SELECT id FROM settings ORDER BY id DESC LIMIT 1"


def settings_ids(tx: WriteTransaction, settings: SettingsByFamily) -> dict[str, list[int]]:
    """The ids of the sets, each recorded (``settings_recorded``) the first time it is seen."""
    ids_of: dict[str, int] = {}
    for texts in settings.values():
        for text in texts:
            if text not in ids_of:
                ids_of[text] = _settings_id(tx, text)
    return {family: [ids_of[text] for text in texts] for family, texts in settings.items()}


def _settings_id(tx: WriteTransaction, text: str) -> int:
    key = ("settings", text)
    found = tx.cache.get(key)
    if found is not None:
        return found
    digest = settings_projection.digest(text)
    row = tx.conn.execute("SELECT id FROM settings WHERE digest = ?", (digest,)).fetchone()
    if row is None:
        found = tx.peek_id("settings", _LAST_SETTINGS_ID)
        tx.take_ids("settings", found)
        tx.emit([ev.settings_recorded(settings_id=found, settings=text)])
    else:
        found = row[0]
    # Kept however the table changes: a recorded set keeps its id for ever (a rolled-back
    # savepoint clears the whole cache), so a scan of many folders that records one new set
    # per folder does not lose every other answer each time.
    return tx.cache.put(key, found, _NEVER_CHANGES)


class MetricBuffer:
    """A transaction's metric events, decided and not appended yet, and what later
    decisions in the same transaction must see of them (a ``Buffer``, see
    ``lightml.log.transaction``).

    ``pending``: (key column, key) -> {(family, metric): (metric id, value)} decided, not
    yet in the tables. ``prefetched``: (key column, key) -> (pairs asked about, {pair:
    (metric id, value)} of those that exist), looked up once for a stretch of queued
    ``LogMetrics`` (see ``LogMetrics.prefetch``). Both are forgotten at every flush: the
    tables then say what they said, and the next append may change them.

    The highest metric id given is the transaction's (``peek_metric_id``), so metric ids
    come only from here: a ``metric_inserted`` event appended any other way (``migrate``
    builds its own transaction, without a buffer) must not share a transaction with it.
    """

    EVENT_TYPES = (ev.METRIC_INSERTED, ev.METRIC_OVERWRITTEN)

    def __init__(self) -> None:
        self._events: list[Entry] = []
        self._last_ids: set[int] = set()  # the metric ids the last held overwrite changes
        self.pending: dict[tuple, dict[tuple, tuple]] = {}
        self.prefetched: dict[tuple, tuple] = {}

    def peek_metric_id(self, tx: WriteTransaction) -> int:
        """The next never-used metric id, not taken (see ``take_metric_ids``); the
        transaction remembers the last one given (``WriteTransaction.peek_id``)."""
        return tx.peek_id("metric", _LAST_METRIC_ID)

    def take_metric_ids(self, tx: WriteTransaction, last: int) -> None:
        """Take the metric ids from ``peek_metric_id`` up to ``last``."""
        tx.take_ids("metric", last)

    def defer(self, event_type: str, payload: dict[str, Any], actor: Actor) -> None:
        """Hold a metric event; it joins the one held just before it when that one has the
        same type, target (model_id, checkpoint_id, step) and actor.

        When the async handle batches a hundred single-metric calls into one transaction,
        one event listing a hundred metrics costs a fraction of a hundred events (one JSON
        text, one log row, one id range) and says the same thing. Log order is kept (only
        neighbours join), and an overwrite of a metric the held event already changes
        starts a new event, so that an event changes each metric at most once (a metric's
        history has one row per event). (Inserts never repeat an id.) The payload, and its
        metrics list, become the buffer's: the caller builds them fresh for each call.
        """
        metrics = payload["metrics"]
        overwrite = event_type == ev.METRIC_OVERWRITTEN
        if self._events:
            last_type, last_payload, last_actor = self._events[-1]
            if (last_type == event_type and (last_actor is actor or last_actor == actor)
                    and last_payload["model_id"] == payload["model_id"]
                    and last_payload["checkpoint_id"] == payload["checkpoint_id"]
                    and last_payload["step"] == payload["step"]
                    and last_payload.get("settings") == payload.get("settings")):
                ids = [m["metric_id"] for m in metrics] if overwrite else ()
                if self._last_ids.isdisjoint(ids):
                    last_payload["metrics"].extend(metrics)
                    self._last_ids.update(ids)
                    return
        self._events.append((event_type, payload, actor))
        self._last_ids = {m["metric_id"] for m in metrics} if overwrite else set()

    def flush(self, tx: WriteTransaction) -> None:
        """Append the held events, all in one batch; forget pending and prefetched."""
        events, self._events, self._last_ids = self._events, [], set()
        try:
            if events:
                tx.append(events)
        finally:  # appended, or failed and about to be rolled back: either way no longer pending
            self.pending.clear()
            self.prefetched.clear()

    def discard(self) -> None:
        """Forget everything (the savepoint was rolled back; it gave the transaction back its
        last ids, so the ids of what was rolled back are given again: no gap)."""
        self._events, self._last_ids = [], set()
        self.pending.clear()
        self.prefetched.clear()


class LogMetrics:
    """Insert new metrics, skip existing ones, or overwrite them when ``force``.

    A ``BufferedCommand``: the writer calls ``decide`` for a stretch of queued LogMetrics
    commands and appends all of their events in one go (one INSERT per table for the whole
    group instead of several per call: what makes many concurrent small logs cheap).
    ``decide`` defers its events to the transaction's ``MetricBuffer`` and checks
    everything before it touches the transaction, so a command that fails leaves no trace.
    Metrics decided earlier in the same group are seen through ``MetricBuffer.pending``,
    and ``prefetch`` looks up what the whole stretch will ask for in one query per target.
    """

    def __init__(self, target: ModelTarget | CheckpointTarget, items: list[MetricInput], force: bool,
                 single: bool, settings: SettingsByFamily | None = None, repeat: str | None = None) -> None:
        self.target, self.items, self.force, self.single = target, items, force, single
        self.settings, self.repeat = settings, repeat

    def __call__(self, tx: WriteTransaction) -> Any:
        result = self.decide(tx)
        tx.flush()
        return result

    def _resolve(self, tx: WriteTransaction) -> tuple[int, int | None, int | None, str, int]:
        """(model id, checkpoint id, step, key column, key) of the target, looked up once
        per transaction (``tx.cache`` forgets it when a model or checkpoint changes)."""
        target = self.target
        cache_key = ("target", target)
        resolved = tx.cache.get(cache_key)
        if resolved is None:
            if isinstance(target, CheckpointTarget):
                model_id, step = resolve.checkpoint_owner(tx.conn, target.checkpoint_id)
                resolved = tx.cache.put(cache_key, (model_id, target.checkpoint_id, step, "checkpoint_id",
                                                    target.checkpoint_id), _CHECKPOINT_TARGET_TABLES)
            else:
                model_id = ids.model_id(tx, target.run_name, target.model_name)
                resolved = tx.cache.put(cache_key, (model_id, None, None, "model_id", model_id),
                                        _MODEL_TARGET_TABLES)
        return resolved

    @classmethod
    def prefetch(cls, tx: WriteTransaction, commands: list["LogMetrics"]) -> None:
        """Look up, in one query per target, the metrics a stretch of commands will ask about.

        A target that does not resolve is left out: its command's ``decide`` raises the
        error itself. The answers are valid until the buffer's next flush, which forgets them.
        """
        wanted: dict[tuple[str, int], set[tuple[str, str]]] = {}
        for command in commands:
            try:
                _, _, _, key_column, key = command._resolve(tx)
            except Exception:
                continue
            wanted.setdefault((key_column, key), set()).update(
                (item.family, item.metric_name) for item in command.items)
        prefetched = tx.buffer(MetricBuffer).prefetched
        for (key_column, key), pairs in wanted.items():
            try:
                existing = existing_metrics(tx.conn, key_column, key, pairs)
            except Exception:  # e.g. a name the database cannot take: each command meets the error itself
                continue
            prefetched[(key_column, key)] = (pairs, existing)

    def decide(self, tx: WriteTransaction) -> Any:
        if self.repeat is not None:
            return self._decide_repeat(tx)
        items = self.items
        model_id, checkpoint_id, step, key_column, key = self._resolve(tx)
        _check_schema(tx, items)
        # (before the buffer's view is read: recording a new set appends an event, which flushes it)
        settings = None if self.settings is None else settings_ids(tx, self.settings)
        buffer = tx.buffer(MetricBuffer)

        pairs = {item[:2] for item in items}  # (family, metric_name)
        if len(pairs) != len(items) and self.force:
            # A hand-made list naming one metric twice (builders take dicts, so they cannot): the
            # last value wins, as if logged one after the other; one overwrite per metric keeps
            # the event valid (an event listing a metric twice would fail the whole group at COMMIT).
            items = list({item[:2]: item for item in items}.values())
        known = buffer.prefetched.get((key_column, key))
        if known is not None and pairs <= known[0]:
            existing = known[1]
        else:
            existing = existing_metrics(tx.conn, key_column, key, pairs)
        pending = buffer.pending.setdefault((key_column, key), {})
        next_metric_id = buffer.peek_metric_id(tx)
        inserted, overwritten, skipped = [], [], 0
        metric_item, overwritten_item = ev.metric_item, ev.overwritten_item
        # Bulk calls run this loop tens of thousands of times: plain tuples and dicts.
        for item in items:
            pair = item[:2]
            found = pending.get(pair) or existing.get(pair)
            if found is None:
                if item.scores is None and item.doc_keys is None:  # the bulk case: no optional keys to pass
                    metric = metric_item(next_metric_id, item.family, item.metric_name, item.value)
                else:
                    metric = metric_item(next_metric_id, *item)
                inserted.append(metric)
                pending[pair] = (next_metric_id, item.value)
                next_metric_id += 1
            elif self.force:
                overwritten.append(overwritten_item(found[0], *item, previous_value=found[1]))
                pending[pair] = (found[0], item.value)
            else:
                skipped += 1
        _defer(tx, buffer, (model_id, checkpoint_id, step), inserted, overwritten, next_metric_id, settings)
        if self.single:
            return METRIC_INSERTED if inserted else METRIC_UPDATED if overwritten else METRIC_SKIPPED
        return {"inserted": len(inserted), "updated": len(overwritten), "skipped": skipped}

    def _decide_repeat(self, tx: WriteTransaction) -> Any:
        """``decide`` for values that are the repeat ``self.repeat`` of their metrics: a new
        metric is inserted with that one repeat; a metric with repeats gets a new label
        beside them (no ``force`` needed: nothing is replaced) or, with ``force``, a new value
        for the label it has. A metric logged without a label is refused, unless ``force``
        replaces its value with this labelled repeat: one value silently turned into "one of
        several" would change what the number means."""
        label = self.repeat
        items = list({item[:2]: item for item in self.items}.values())  # (a name given twice: the last wins)
        model_id, checkpoint_id, step, key_column, key = self._resolve(tx)
        _check_schema(tx, items)
        tx.flush()  # every earlier decision of the transaction into the tables, which then say all
        existing = existing_metrics(tx.conn, key_column, key, {item[:2] for item in items})
        repeats = metric_repeats.repeat_values(tx.conn, [found[0] for found in existing.values()])
        if not self.force:
            plain = [pair for pair, (metric_id, _) in existing.items() if metric_id not in repeats]
            if plain:
                family, name = sorted(plain)[0]
                raise InvalidInputError(
                    f"metric {family}/{name} of {self._target_text()} was logged without a repeat label, so its "
                    f"value is not one of several repeats: log it without repeat=, or give force=True to replace "
                    f"it with the repeat {label!r}" + (f" ({len(plain) - 1} more such metrics)" if len(plain) > 1 else ""))
        settings = None if self.settings is None else settings_ids(tx, self.settings)
        buffer = tx.buffer(MetricBuffer)
        pending = buffer.pending.setdefault((key_column, key), {})
        next_metric_id = buffer.peek_metric_id(tx)
        inserted, overwritten, added, updated, skipped = [], [], 0, 0, 0
        for item in items:
            pair = item[:2]
            found = existing.get(pair)
            if found is None:
                inserted.append(ev.metric_item(next_metric_id, *item, repeat=label))
                pending[pair] = (next_metric_id, item.value)
                next_metric_id += 1
                continue
            metric_id, current = found
            values = repeats.get(metric_id, {})
            if label in values and not self.force:
                skipped += 1
                continue
            if label in values:
                overwritten.append(ev.overwritten_item(metric_id, *item, previous_value=values[label], repeat=label))
                updated += 1
            elif values:
                overwritten.append(ev.overwritten_item(metric_id, *item, previous_value=None, repeat=label,
                                                       new_repeat=True))
                added += 1
            else:  # (forced) a value logged without a label, replaced by this repeat
                overwritten.append(ev.overwritten_item(metric_id, *item, previous_value=current, repeat=label))
                updated += 1
            values = {**values, label: item.value}
            pending[pair] = (metric_id, metric_repeats.mean_of(list(values.values())))
        _defer(tx, buffer, (model_id, checkpoint_id, step), inserted, overwritten, next_metric_id, settings)
        if self.single:
            return METRIC_INSERTED if inserted or added else METRIC_UPDATED if updated else METRIC_SKIPPED
        return {"inserted": len(inserted) + added, "updated": updated, "skipped": skipped}

    def _target_text(self) -> str:
        target = self.target
        if isinstance(target, CheckpointTarget):
            return f"checkpoint {target.checkpoint_id}"
        return f"model {target.model_name!r}"


def _defer(tx: WriteTransaction, buffer: MetricBuffer, target: tuple[int, int | None, int | None],
           inserted: list[dict], overwritten: list[dict], next_metric_id: int, settings: dict | None) -> None:
    """The events of one decision, deferred through the transaction, which hands them to its
    MetricBuffer (and which a caller may wrap: merge marks each item with where its value
    comes from); the ids given to the inserted metrics are taken."""
    model_id, checkpoint_id, step = target
    if inserted:
        buffer.take_metric_ids(tx, next_metric_id - 1)
        tx.defer(*ev.metric_inserted(model_id=model_id, checkpoint_id=checkpoint_id, step=step, metrics=inserted,
                                     settings=settings))
    if overwritten:
        tx.defer(*ev.metric_overwritten(model_id=model_id, checkpoint_id=checkpoint_id, step=step,
                                        metrics=overwritten, settings=settings))
