"""``merge``: bring another registry's runs, models, checkpoints, metrics and scores into this one.

Everything arrives as ordinary events (origin ``merge``) in one transaction: ids are
assigned by this registry, lineage is kept, and what already exists is matched by its
natural key (run name; model name in its run; checkpoint step and path; family and metric)
and skipped, unless ``force`` overwrites metrics whose value or scores differ. Merging the
same file twice therefore adds nothing. The source is only read; it may be a LightML 1.x
database. Deleted models of the source (in its log only) are not merged.

Several sources (paths or glob patterns) are merged in ONE transaction, in the order given
(a glob's matches sorted): all of them or, on any error, none. Every source is found and
read before anything is written, so a missing file or a glob matching nothing changes nothing.

A merged metric keeps its history: each value it had in the source (from the source's log;
a 1.x source has only its row) becomes an event here, ``metric_inserted`` then
``metric_overwritten``, whose metric items carry ``merged_from`` (the source file),
``original_at`` and ``original_actor``; the events' own time is the merge's, so the log
stays in time order. Per-sample scores go with the last value. A metric logged with repeat
labels there comes with each of its repeats (``repeat=`` logging commands, one per label),
so that its value here is their mean again.

The writes are the handles' commands (``commands.ensure_run`` / ``ensure_model`` /
``ensure_checkpoint``, ``metric_log.LogMetrics``) composed into one transaction; the source
is read through ``read.legacy_tables`` (its tables, 1.x included) and
``log.source_registry`` (its log).
"""

from __future__ import annotations

import glob
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from lightml.errors import InvalidInputError
from lightml.ingest.lineage_order import parents_first
from lightml.log import events as ev
from lightml.log import source_registry
from lightml.log.events import actor_text
from lightml.log.transaction import WriteTransaction
from lightml.log.writer import Command
from lightml.read import import_lookups, legacy_tables, settings
from lightml.read.legacy_tables import Checkpoint, DocKeys, Metric, Model, Run, Scores
from lightml.runner import Registry
from lightml.read.params import current_params
from lightml.write import commands, edits, metric_log
from lightml.write.validation import (
    check_doc_keys, check_name, check_repeat, check_scores, check_setting, check_settings, check_step, check_tags,
    check_value,
)
from projections import metric_repeats


@dataclass
class MergeResult:
    runs_created: int = 0
    models_registered: int = 0
    checkpoints_registered: int = 0
    metrics_inserted: int = 0
    metrics_overwritten: int = 0
    metrics_skipped: int = 0
    metrics_unusable: int = 0  # no numeric value in the source (possible in 1.x databases)
    scores_unusable: int = 0  # scores that are not finite numbers or not JSON: the value is merged without them
    sources: list[str] = field(default_factory=list)  # the files merged, in order

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def add(self, other: "MergeResult") -> None:
        for key, value in asdict(other).items():
            if isinstance(value, int):
                setattr(self, key, getattr(self, key) + value)

    def __str__(self) -> str:
        return "\n".join(f"  {key.replace('_', ' '):<24}{value}" for key, value in asdict(self).items()
                         if key != "sources")


class _Entry(NamedTuple):
    """One value a metric had in the source: how it got it, when and by whom (None: unknown)."""

    action: str  # "inserted" or "overwritten"
    value: float
    at: str | None
    actor: str | None


@dataclass
class _Source:
    path: str
    runs: list[Run]
    models: list[Model]
    checkpoints: list[Checkpoint]
    metrics: list[Metric]
    scores: dict[int, str]
    doc_keys: dict[int, str]
    history: dict[int, list[_Entry]]  # source metric id -> its values, oldest first (from its log)
    settings: dict[int, str] = field(default_factory=dict)  # source metric id -> its value's eval settings (canonical)
    repeats: dict[int, list[tuple]] = field(default_factory=dict)  # source metric id -> its (label, value, scores, n, keys)
    params: dict[int, dict[str, Any]] = field(default_factory=dict)  # source model id -> its parameters
    tags: dict[int, list[str]] = field(default_factory=dict)  # source model id -> its tags


def _params_and_tags(conn) -> tuple[dict[int, dict[str, Any]], dict[int, list[str]]]:
    """The source's model parameters and tags (a registry older than them has none); values
    this LightML would refuse are left out."""
    names = {name for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    params: dict[int, dict[str, Any]] = {}
    tags: dict[int, list[str]] = {}
    if "model_param" in names:
        for model_id, key, value in conn.execute("SELECT model_id, key, value FROM model_param"):
            try:
                params.setdefault(model_id, {})[key] = check_setting(key, json.loads(value), "params")
            except (InvalidInputError, ValueError, RecursionError):
                continue
    if "model_tag" in names:
        for model_id, tag in conn.execute("SELECT model_id, tag FROM model_tag"):
            try:
                tags.setdefault(model_id, []).extend(check_tags([tag]))
            except InvalidInputError:
                continue
    return params, tags


def _repeats(conn) -> dict[int, list[tuple]]:
    """The source's repeats (a registry older than repeats has none), label order."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'metric_repeats'").fetchone() is None:
        return {}
    found: dict[int, list[tuple]] = {}
    for metric_id, *rest in sorted(conn.execute(
            "SELECT metric_id, repeat, value, scores, n_samples, doc_keys FROM metric_repeats").fetchall(),
            key=lambda row: (row[0], row[1])):
        found.setdefault(metric_id, []).append(tuple(rest))
    return found


def _settings(conn) -> dict[int, str]:
    """The eval settings of the source's current values (a registry older than settings has
    none); a set this LightML would refuse is left out, as a damaged one."""
    if conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'event_settings'").fetchone() is None:
        return {}
    found = {}
    for metric_id, values in settings.settings_where(conn, "1 = 1").items():
        try:
            found[metric_id] = check_settings(values)
        except InvalidInputError:
            continue
    return found


def _read_source(path: Path) -> _Source:
    with source_registry.snapshot(path) as (conn, fmt):
        return _Source(
            path=str(path.resolve()),
            history=_history(source_registry.metric_values(conn)) if fmt > 1 else {},
            settings=_settings(conn) if fmt > 1 else {},
            repeats=_repeats(conn) if fmt > 1 else {},
            **(dict(zip(("params", "tags"), _params_and_tags(conn))) if fmt > 1 else {}),
            runs=legacy_tables.rows(conn, Run),
            models=legacy_tables.rows(conn, Model),
            checkpoints=legacy_tables.rows(conn, Checkpoint),
            metrics=legacy_tables.rows(conn, Metric),
            scores={row.metric_id: row.scores for row in legacy_tables.rows(conn, Scores)},
            doc_keys={row.metric_id: row.doc_keys for row in legacy_tables.rows(conn, DocKeys)},
        )


def _check_source(src: _Source) -> None:
    """Refuse a source holding what the API would refuse (a tool wrote behind its log, or
    it is a 1.x file): names with control characters, a step that is not a non-negative
    integer, a path that is not text. The merged rows then verify against this registry's
    log. (Values and scores that are not usable are counted, not refused: see MergeResult.)"""
    def refuse(table: str, row_id: Any, problem: Exception | str) -> None:
        raise InvalidInputError(f"cannot merge {src.path}: its {table} row id {row_id!r} {problem}; "
                                "nothing was merged") from None

    def path_ok(path: Any) -> bool:
        return path is None or (isinstance(path, str) and "\x00" not in path)

    for run in src.runs:
        try:
            check_name(run.run_name, "run name")
        except InvalidInputError as exc:
            refuse("run", run.id, exc)
    run_ids = {run.id for run in src.runs}
    for model in src.models:
        try:
            check_name(model.model_name, "model name")
        except InvalidInputError as exc:
            refuse("model", model.id, exc)
        if not path_ok(model.path):
            refuse("model", model.id, f"has a path that is not text: {model.path!r}")
        if model.run_id not in run_ids:  # models are keyed by (name, run): it could not be matched or placed
            refuse("model", model.id, f"belongs to no run (run id {model.run_id!r} does not exist)")
    for checkpoint in src.checkpoints:
        try:
            if checkpoint.step is not None:
                check_step(checkpoint.step)
        except InvalidInputError as exc:
            refuse("checkpoint", checkpoint.id, exc)
        if not path_ok(checkpoint.path):
            refuse("checkpoint", checkpoint.id, f"has a path that is not text: {checkpoint.path!r}")
    for metric in src.metrics:
        try:
            check_name(metric.family, "family")
            check_name(metric.metric_name, "metric_name")
        except InvalidInputError as exc:
            refuse("metrics", metric.id, exc)


_ACTIONS = {ev.METRIC_INSERTED: "inserted", ev.METRIC_OVERWRITTEN: "overwritten"}


def _history(values: list[source_registry.MetricValue] | None) -> dict[int, list[_Entry]]:
    """The source's metric values from its log, by metric; {} when the log cannot be read
    that way (a damaged payload): each metric then brings its current value only, as from a
    1.x file. A value that was itself merged keeps the time and actor of where it came from."""
    history: dict[int, list[_Entry]] = {}
    for value in values or ():
        at = value.original_at if value.original_at is not None else value.at
        actor = (value.original_actor if value.original_actor is not None
                 else actor_text(value.user, value.host, value.origin))
        # A damaged payload can hold anything: only text is a time or an actor.
        entry = _Entry(_ACTIONS[value.event_type], value.value, at if isinstance(at, str) else None,
                       actor if isinstance(actor, str) else None)
        history.setdefault(value.metric_id, []).append(entry)
    return history


def _metric_inputs(rows: list[Metric], src: _Source,
                   result: MergeResult) -> tuple[list[metric_log.MetricInput], dict[tuple[str, str], list[_Entry]]]:
    """The metrics of one target, as they are in the source, and each one's values there."""
    # A 1.x source can hold one metric twice (it had no unique index): the later row wins, as
    # in ``migrate``; the earlier one counts as skipped.
    latest = {(row.family, row.metric_name): row for row in rows}  # rows come in id order
    result.metrics_skipped += len(rows) - len(latest)
    items, histories = [], {}
    for row in latest.values():
        family, name = row.family, row.metric_name
        if row.id in src.repeats:
            continue  # (logged repeat by repeat: _log_repeats)
        try:
            number = check_value(row.value, f"{family}/{name}")
        except InvalidInputError:
            result.metrics_unusable += 1
            continue
        histories[(family, name)] = _values_of(src.history.get(row.id, []), number)
        text = src.scores.get(row.id)
        if text is None:
            items.append(metric_log.MetricInput(family, name, number))
            continue
        try:
            encoded, n = check_scores(json.loads(text))
            keys = src.doc_keys.get(row.id)
            doc_keys = None if keys is None else check_doc_keys(json.loads(keys), n)
        except (InvalidInputError, ValueError, RecursionError):  # NaN, text, a broken or too deep list
            result.scores_unusable += 1
            items.append(metric_log.MetricInput(family, name, number))
            continue
        items.append(metric_log.MetricInput(family, name, number, encoded, n, doc_keys))
    return items, histories


def _values_of(entries: list[_Entry], current: float) -> list[_Entry]:
    """The usable values of a metric's source history, ending with its current value (a 1.x
    source, or a log that does not explain the row: the row alone, time and actor unknown)."""
    usable = []
    for entry in entries:
        try:
            usable.append(entry._replace(value=check_value(entry.value)))
        except InvalidInputError:
            continue
    if not usable or usable[-1].value != current:
        usable.append(_Entry("overwritten" if usable else "inserted", current, None, None))
    return usable


def _changed_only(conn, key_column: str, key: int, items: list[metric_log.MetricInput]) -> list[metric_log.MetricInput]:
    """With force, overwrite only what differs: a second merge of the same file adds nothing."""
    current = import_lookups.values_and_scores(conn, key_column, key)
    return [i for i in items if current.get((i.family, i.metric_name)) != (i.value, i.scores)]


def _merge_command(src: _Source, force: bool, registry_dir: Path) -> Command:
    def command(tx: WriteTransaction) -> MergeResult:
        result = MergeResult()
        run_names: dict[Any, str] = {}  # source run id -> its name (the same here)
        for run in src.runs:
            made = commands.ensure_run(run.run_name, run.description, run.metadata, created_at=run.created_at)(tx)
            result.runs_created += made.created
            run_names[run.id] = run.run_name

        by_id = {model.id: model for model in src.models}
        order, _ = parents_first({model.id: model.parent_id for model in src.models})
        model_ids: dict[Any, int] = {}
        model_keys: dict[Any, tuple[str, str]] = {}  # source id -> (run name, model name)
        for model in map(by_id.__getitem__, order):
            if model.run_id not in run_names:
                continue  # a model without a run (refused by _check_source): nothing to key it by
            run_name = run_names[model.run_id]
            model_keys[model.id] = (run_name, model.model_name)
            # A parent cut from a parent cycle is not registered yet: the model comes without it.
            made = commands.ensure_model(run_name, model.model_name, model.path, None, model_ids.get(model.parent_id),
                                         registry_dir, notes=model.notes, hidden=int(bool(model.hidden)))(tx)
            model_ids[model.id] = made.id
            result.models_registered += made.created
            # Parameters and tags come along: keys the model lacks here (all, with force), every tag.
            here = current_params(tx.conn, made.id)
            edits.change_params(tx, made.id, {key: value for key, value in src.params.get(model.id, {}).items()
                                              if force or key not in here})
            edits.change_tags(tx, made.id, add=src.tags.get(model.id, []))

        checkpoint_ids: dict[Any, int] = {}
        for checkpoint in src.checkpoints:
            if checkpoint.model_id not in model_ids:
                continue
            made = commands.ensure_checkpoint(*model_keys[checkpoint.model_id], checkpoint.step, checkpoint.path,
                                              created_at=checkpoint.created_at)(tx)
            checkpoint_ids[checkpoint.id] = made.id
            result.checkpoints_registered += made.created

        by_target: dict[tuple[str, Any], list[Metric]] = {}
        for row in src.metrics:
            if row.model_id is not None and row.model_id in model_keys:
                by_target.setdefault(("model_id", row.model_id), []).append(row)
            elif row.checkpoint_id is not None and row.checkpoint_id in checkpoint_ids:
                by_target.setdefault(("checkpoint_id", row.checkpoint_id), []).append(row)
        for (column, source_id), rows in by_target.items():
            items, histories = _metric_inputs(rows, src, result)
            if column == "model_id":
                target: Any = metric_log.ModelTarget(*model_keys[source_id])
                key = model_ids[source_id]
            else:
                target = metric_log.CheckpointTarget(checkpoint_ids[source_id])
                key = checkpoint_ids[source_id]
            _log_repeats(tx, target, column, key, [row for row in rows if row.id in src.repeats], src, force, result)
            if force:
                unchanged = len(items)
                items = _changed_only(tx.conn, column, key, items)
                result.metrics_skipped += unchanged - len(items)
            if not items:
                continue
            settings_of = {(row.family, row.metric_name): src.settings.get(row.id) for row in rows}  # (latest wins)
            counts = _log_with_history(tx, target, items, histories, force, src.path, settings_of)
            result.metrics_inserted += counts["inserted"]
            result.metrics_overwritten += counts["updated"]
            result.metrics_skipped += counts["skipped"]
        return result

    return command


def _log_repeats(tx: WriteTransaction, target: Any, column: str, key: int, rows: list[Metric], src: _Source,
                 force: bool, result: MergeResult) -> None:
    """The source's metrics logged with repeat labels, each repeat as one ``repeat=`` command
    (its scores with it). Here, a metric logged without labels is skipped, unless ``force``
    replaces it with the repeats; a metric with repeats gets the source's labels beside its
    own (``force``: the source's value of a label both have wins)."""
    latest = {(row.family, row.metric_name): row for row in rows}
    existing = metric_log.existing_metrics(tx.conn, column, key, set(latest)) if latest else {}
    repeated_here = metric_repeats.repeat_rows(tx.conn, [metric_id for metric_id, _ in existing.values()])
    for pair, row in latest.items():
        found = existing.get(pair)
        if found is not None and found[0] not in repeated_here and not force:
            result.metrics_skipped += 1
            continue
        text = src.settings.get(row.id)
        changed = False
        here = {} if found is None else repeated_here.get(found[0], {})
        for label, value, scores, _, doc_keys in src.repeats[row.id]:
            try:
                item = _repeat_input(pair, label, value, scores, doc_keys)
            except InvalidInputError:
                result.metrics_unusable += 1
                continue
            if here.get(label) == (item.value, item.scores):
                continue  # (the same repeat here already: a second merge of a file adds nothing, forced or not)
            marked = _WithProvenance(tx, {pair: ev.merge_marks(src.path)})
            logged = metric_log.LogMetrics(target, [item], force, single=False, repeat=label,
                                           settings=None if text is None else {"": (text,)})(marked)
            changed = changed or bool(logged["inserted"] or logged["updated"])
        if not changed:
            result.metrics_skipped += 1
        elif found is None:
            result.metrics_inserted += 1
        else:
            result.metrics_overwritten += 1


def _repeat_input(pair: tuple[str, str], label: Any, value: Any, scores: str | None,
                  doc_keys: str | None) -> metric_log.MetricInput:
    """One repeat of the source as a metric to log (refused, InvalidInputError, as the API would)."""
    check_repeat(label)
    number = check_value(value, f"{pair[0]}/{pair[1]} repeat {label!r}")
    if scores is None:
        return metric_log.MetricInput(*pair, number)
    try:
        encoded, n = check_scores(json.loads(scores))
        keys = None if doc_keys is None else check_doc_keys(json.loads(doc_keys), n)
    except (ValueError, RecursionError):
        raise InvalidInputError(f"{pair[0]}/{pair[1]} repeat {label!r}: scores that are not JSON") from None
    return metric_log.MetricInput(*pair, number, encoded, n, keys)


class _WithProvenance:
    """The transaction as ``LogMetrics`` sees it, with each metric item it queues marked with
    where and when its value comes from; records which metrics it wrote."""

    def __init__(self, tx: WriteTransaction, provenance: dict[tuple[str, str], dict[str, Any]]) -> None:
        self._tx, self._provenance, self.written = tx, provenance, set()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._tx, name)

    def defer(self, event_type: str, payload: dict[str, Any]) -> None:
        for metric in payload["metrics"]:
            pair = (metric["family"], metric["metric_name"])
            metric.update(self._provenance[pair])
            self.written.add(pair)
        self._tx.defer(event_type, payload)


def _log_with_history(tx: WriteTransaction, target: Any, items: list[metric_log.MetricInput],
                      histories: dict[tuple[str, str], list[_Entry]], force: bool, source: str,
                      settings_of: dict[tuple[str, str], str | None]) -> dict[str, int]:
    """Log the items the way they got their values in the source: round 0 gives each metric
    its first value (inserted, or overwritten with ``force``), round k its k-th, as forced
    overwrites, only for the metrics round 0 wrote; the last round of a metric brings its
    scores and its current value's eval settings (one logging command per distinct set).
    The counts are those of round 0 (one per metric)."""
    counts: dict[str, int] = {}
    written: set[tuple[str, str]] | None = None
    depth = max(len(histories[i.family, i.metric_name]) for i in items)
    for round_number in range(depth):
        batch, provenance = [], {}
        for item in items:
            pair = (item.family, item.metric_name)
            entries = histories[pair]
            if round_number >= len(entries) or (written is not None and pair not in written):
                continue
            entry = entries[round_number]
            last = round_number == len(entries) - 1
            batch.append(item if last else metric_log.MetricInput(item.family, item.metric_name, entry.value))
            provenance[pair] = ev.merge_marks(source, entry.at, entry.actor)
        if not batch:
            break
        by_settings: dict[str | None, list[metric_log.MetricInput]] = {}
        for item in batch:
            pair = (item.family, item.metric_name)
            last = round_number == len(histories[pair]) - 1
            by_settings.setdefault(settings_of.get(pair) if last else None, []).append(item)
        marked = _WithProvenance(tx, provenance)
        round_counts = {"inserted": 0, "updated": 0, "skipped": 0}
        for text, group in by_settings.items():
            logged = metric_log.LogMetrics(target, group, force or round_number > 0, single=False,
                                           settings=None if text is None else {"": (text,)})(marked)
            round_counts = {key: round_counts[key] + logged[key] for key in round_counts}
        if written is None:
            counts, written = round_counts, marked.written
    return counts


def source_files(sources: str | os.PathLike | list[str | os.PathLike]) -> list[Path]:
    """The files to merge: each path as given, each glob pattern (``*``, ``?``, ``[``) as
    its matches, sorted; a missing file or a pattern matching nothing is an error."""
    if isinstance(sources, (str, os.PathLike)):
        sources = [sources]
    if not sources:
        raise InvalidInputError("no registry to merge from: give at least one --from file")
    files: list[Path] = []
    for source in sources:
        text = os.fspath(source)
        if isinstance(text, str) and "://" in text:  # merge reads a source's SQLite file directly
            from lightml.log.engine import shown

            raise InvalidInputError(
                f"merge takes registry files, and {shown(text)} is a server's registry: copy it into a file "
                f"first (lightml copy --from {shown(text)} --to snapshot.db), then merge that file")
        if glob.has_magic(text) and not Path(text).exists():
            matches = sorted(m for m in glob.glob(text) if Path(m).is_file())
            if not matches:
                raise FileNotFoundError(f"no file matches {text!r}: nothing merged")
            files.extend(Path(m) for m in matches)
        elif not Path(text).is_file():
            raise FileNotFoundError(f"{text}: no such file" + (" (it is a folder)" if Path(text).is_dir() else "")
                                    + ": nothing merged")
        else:
            files.append(Path(text))
    unique = {os.path.realpath(f): f for f in reversed(files)}  # the same file twice is merged once
    return [f for f in files if unique.get(os.path.realpath(f)) is f]


def merge(db: str | os.PathLike, source: str | os.PathLike | list[str | os.PathLike], *,
          force: bool = False) -> MergeResult:
    """Merge registry ``source`` (a path, a glob, or a list of them) into registry ``db``, all
    in one transaction; see the module docstring."""
    target = Path(db)
    files = source_files(source)
    for path in files:
        if target.exists() and os.path.samefile(path, target):
            raise InvalidInputError(f"cannot merge a registry into itself ({path})")
    sources = [_read_source(path) for path in files]
    for src in sources:  # a source is refused whole, before anything is written
        _check_source(src)
    registry = Registry(db, None, origin="merge", create=False)
    try:
        return registry.run(_merge_all_command(sources, bool(force), registry.registry_dir))
    finally:
        registry.close()


def _merge_all_command(sources: list[_Source], force: bool, registry_dir: Path) -> Command:
    def command(tx: WriteTransaction) -> MergeResult:
        total = MergeResult()
        for src in sources:
            total.add(_merge_command(src, force, registry_dir)(tx))
            total.sources.append(src.path)
        return total

    return command
