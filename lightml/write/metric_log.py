"""Logging metrics: what to log (``MetricInput``), where (a model or a checkpoint), and
``LogMetrics``, the command that deduplicates against the read tables and emits
``metric_inserted`` / ``metric_overwritten``.
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

from lightml.errors import SchemaViolationError
from lightml.log import events as ev
from lightml.log.writer import WriteTransaction
from lightml.read import resolve
from lightml.results import METRIC_INSERTED, METRIC_SKIPPED, METRIC_UPDATED
from lightml.write import ids


class MetricInput(NamedTuple):
    """One validated metric to log: scores already encoded as JSON text. (A named tuple:
    bulk calls build tens of thousands, and a tuple is several times cheaper to create
    than a frozen dataclass.)"""

    family: str
    metric_name: str
    value: float
    scores: str | None = None
    n_samples: int | None = None
    doc_keys: str | None = None

    def payload(self, metric_id: int) -> dict[str, Any]:
        """The event payload item; scores only when there are some (keeps bulk events small)."""
        item = {"metric_id": metric_id, "family": self.family, "metric_name": self.metric_name, "value": self.value}
        if self.scores is not None:
            item["scores"] = self.scores
            item["n_samples"] = self.n_samples
        if self.doc_keys is not None:
            item["doc_keys"] = self.doc_keys
        return item


class ModelTarget(NamedTuple):  # named tuples: made once per logged metric, cheaply
    run_name: str | None
    model_name: str


class CheckpointTarget(NamedTuple):
    checkpoint_id: int


def _check_schema(tx: WriteTransaction, items: list[MetricInput]) -> None:
    allowed = tx.cache.get("schema")
    if allowed is None:
        allowed = tx.cache["schema"] = set(tx.conn.execute("SELECT family, metric_name FROM registry_schema"))
    if not allowed:
        return  # no rules: anything goes
    for item in items:
        if (item.family, item.metric_name) not in allowed:
            raise SchemaViolationError(
                f"metric {item.family}/{item.metric_name} not found in registry schema "
                "(add it with add_schema_rule, or log one of the registered metrics)"
            )


def _existing_metrics(conn, key_column: str, key: int, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], tuple]:
    """(family, metric_name) -> (metric id, value) for the pairs that already exist.

    The pairs go in as one JSON array, and each is looked up in the unique index: a
    query linear in the pairs asked for, however many metrics the target already has.
    A bulk call asks first which of its families the target has at all (new families,
    the usual case, then cost one probe each instead of one per metric).
    """
    if len(pairs) == 1:  # a single log_model_metric: one plain indexed lookup
        return _existing_metrics_one_by_one(conn, key_column, key, pairs)
    families = list({family for family, _ in pairs})
    if len(families) * 4 <= len(pairs):
        families_json = _json_names(families)
        if families_json is None:
            return _existing_metrics_one_by_one(conn, key_column, key, pairs)
        present = {family for (family,) in conn.execute(
            "SELECT wanted.value FROM json_each(?) AS wanted WHERE EXISTS (SELECT 1 FROM metrics AS m "
            f"WHERE m.{key_column} = ? AND m.{key_column} IS NOT NULL AND m.family = wanted.value)",
            (families_json, key))}
        if not present:
            return {}
        if len(present) < len(families):
            pairs = {pair for pair in pairs if pair[0] in present}
    pairs_json = _json_names(list(pairs))
    if pairs_json is None:
        return _existing_metrics_one_by_one(conn, key_column, key, pairs)
    sql = (
        "SELECT m.family, m.metric_name, m.id, m.value FROM json_each(?) AS wanted CROSS JOIN metrics AS m "
        f"WHERE m.{key_column} = ? AND m.{key_column} IS NOT NULL "
        "AND m.family = json_extract(wanted.value, '$[0]') AND m.metric_name = json_extract(wanted.value, '$[1]')"
    )
    rows = conn.execute(sql, (pairs_json, key))
    return {(family, name): (mid, value) for family, name, mid, value in rows}


def _json_names(values: list) -> str | None:
    """The JSON text of names (or name pairs) for a lookup through json_each, or None when
    a name holds a NUL character, which SQLite's JSON functions do not give back intact
    (names from the API never do: only a merged 1.x file can bring one)."""
    text = json.dumps(values, ensure_ascii=False)  # a lone surrogate fails here, in its own call
    return None if "\\u0000" in text else text


def _existing_metrics_one_by_one(conn, key_column: str, key: int, pairs: set[tuple[str, str]]) -> dict[tuple[str, str], tuple]:
    """As ``_existing_metrics``, with one query per pair."""
    sql = (f"SELECT id, value FROM metrics WHERE {key_column} = ? AND {key_column} IS NOT NULL "
           "AND family = ? AND metric_name = ?")
    existing = {}
    for family, name in pairs:
        row = conn.execute(sql, (key, family, name)).fetchone()
        if row is not None:
            existing[(family, name)] = row
    return existing


class LogMetrics:
    """Insert new metrics, skip existing ones, or overwrite them when ``force``.

    The writer calls ``decide`` for a run of queued LogMetrics commands and appends all of
    their events in one go (one INSERT per table for the whole group instead of several per
    call: what makes many concurrent small logs cheap). ``decide`` writes nothing and checks
    everything before it touches the transaction, so a command that fails leaves no trace.
    Metrics decided earlier in the same group are seen through ``tx.pending_metrics``, and
    ``prefetch`` looks up what the whole run will ask for in one query per target.
    """

    deferrable = True

    def __init__(self, target: ModelTarget | CheckpointTarget, items: list[MetricInput], force: bool,
                 single: bool) -> None:
        self.target, self.items, self.force, self.single = target, items, force, single

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
                resolved = (model_id, target.checkpoint_id, step, "checkpoint_id", target.checkpoint_id)
            else:
                model_id = ids.model_id(tx, target.run_name, target.model_name)
                resolved = (model_id, None, None, "model_id", model_id)
            tx.cache[cache_key] = resolved
        return resolved

    @staticmethod
    def prefetch(tx: WriteTransaction, commands: list["LogMetrics"]) -> None:
        """Look up, in one query per target, the metrics a run of commands will ask about.

        A target that does not resolve is left out: its command's ``decide`` raises the
        error itself. The answers are valid until the next ``tx.flush``, which forgets them.
        """
        wanted: dict[tuple[str, int], set[tuple[str, str]]] = {}
        for command in commands:
            try:
                _, _, _, key_column, key = command._resolve(tx)
            except Exception:
                continue
            wanted.setdefault((key_column, key), set()).update(
                (item.family, item.metric_name) for item in command.items)
        for (key_column, key), pairs in wanted.items():
            try:
                existing = _existing_metrics(tx.conn, key_column, key, pairs)
            except Exception:  # e.g. a name SQLite cannot take: each command meets the error itself
                continue
            tx.prefetched[(key_column, key)] = (pairs, existing)

    def decide(self, tx: WriteTransaction) -> Any:
        items = self.items
        model_id, checkpoint_id, step, key_column, key = self._resolve(tx)
        _check_schema(tx, items)

        pairs = {item[:2] for item in items}  # (family, metric_name)
        known = tx.prefetched.get((key_column, key))
        if known is not None and pairs <= known[0]:
            existing = known[1]
        else:
            existing = _existing_metrics(tx.conn, key_column, key, pairs)
        pending = tx.pending_metrics.setdefault((key_column, key), {})
        next_metric_id = tx.peek_id("metric")
        inserted, overwritten, skipped = [], [], 0
        # Bulk calls run this loop tens of thousands of times: plain tuples and dicts.
        for item in items:
            pair = item[:2]
            found = pending.get(pair) or existing.get(pair)
            if found is None:
                if item.scores is None and item.doc_keys is None:
                    metric = {"metric_id": next_metric_id, "family": item.family,
                              "metric_name": item.metric_name, "value": item.value}
                else:
                    metric = item.payload(next_metric_id)
                inserted.append(metric)
                pending[pair] = (next_metric_id, item.value)
                next_metric_id += 1
            elif self.force:
                overwritten.append({**item.payload(found[0]), "previous_value": found[1]})
                pending[pair] = (found[0], item.value)
            else:
                skipped += 1
        if inserted:
            tx.take_ids("metric", next_metric_id - 1)
            tx.defer(ev.METRIC_INSERTED,
                     {"model_id": model_id, "checkpoint_id": checkpoint_id, "step": step, "metrics": inserted})
        if overwritten:
            tx.defer(ev.METRIC_OVERWRITTEN,
                     {"model_id": model_id, "checkpoint_id": checkpoint_id, "step": step, "metrics": overwritten})
        if self.single:
            return METRIC_INSERTED if inserted else METRIC_UPDATED if overwritten else METRIC_SKIPPED
        return {"inserted": len(inserted), "updated": len(overwritten), "skipped": skipped}
