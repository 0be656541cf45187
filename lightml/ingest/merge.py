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
stays in time order. Per-sample scores go with the last value.
"""

from __future__ import annotations

import glob
import json
import os
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from lightml.log import store
from lightml.read import resolve
from lightml.write import metric_log, symlinks
from lightml.log import events as ev
from lightml.log.events import actor_text
from lightml.runner import Registry
from lightml.errors import InvalidInputError, NotARegistryError
from lightml.write.validation import check_doc_keys, check_name, check_scores, check_step, check_value
from lightml.log.writer import Command, WriteTransaction


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
    runs: list[tuple]
    models: list[tuple]
    checkpoints: list[tuple]
    metrics: list[tuple]
    scores: dict[int, str]
    doc_keys: dict[int, str]
    history: dict[int, list[_Entry]]  # source metric id -> its values, oldest first (from its log)


def _read_source(path: Path) -> _Source:
    conn = store.connect_readonly(path)
    try:
        fmt = store.registry_format(conn)
        if fmt is None:
            raise NotARegistryError(f"{path} is an empty database, not a LightML registry")
        conn.execute("BEGIN")  # one consistent snapshot of the source
        has_scores = "detailed_scores" in store.table_names(conn)
        return _Source(
            path=str(path.resolve()),
            history=_read_history(conn) if fmt > 1 else {},
            runs=conn.execute("SELECT id, run_name, description, metadata, created_at FROM run").fetchall(),
            models=conn.execute(f"SELECT id, model_name, path, parent_id, run_id, {_optional(conn)} FROM model "
                                "ORDER BY id").fetchall(),
            checkpoints=conn.execute("SELECT id, model_id, step, path, created_at FROM checkpoint ORDER BY id").fetchall(),
            metrics=conn.execute("SELECT id, model_id, checkpoint_id, family, metric_name, value FROM metrics "
                                 "ORDER BY id").fetchall(),
            scores=dict(conn.execute("SELECT metric_id, scores FROM detailed_scores")) if has_scores else {},
            doc_keys=(dict(conn.execute("SELECT metric_id, doc_keys FROM score_docs"))
                      if "score_docs" in store.table_names(conn) else {}),
        )
    finally:
        conn.close()


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

    for rid, name, *_ in src.runs:
        try:
            check_name(name, "run name")
        except InvalidInputError as exc:
            refuse("run", rid, exc)
    run_ids = {row[0] for row in src.runs}
    for mid, name, path, _, run, *_ in src.models:
        try:
            check_name(name, "model name")
        except InvalidInputError as exc:
            refuse("model", mid, exc)
        if not path_ok(path):
            refuse("model", mid, f"has a path that is not text: {path!r}")
        if run not in run_ids:  # models are keyed by (name, run): it could not be matched or placed
            refuse("model", mid, f"belongs to no run (run id {run!r} does not exist)")
    for cid, _, step, path, _ in src.checkpoints:
        try:
            if step is not None:
                check_step(step)
        except InvalidInputError as exc:
            refuse("checkpoint", cid, exc)
        if not path_ok(path):
            refuse("checkpoint", cid, f"has a path that is not text: {path!r}")
    for metric_id, _, _, family, name, _ in src.metrics:
        try:
            check_name(family, "family")
            check_name(name, "metric_name")
        except InvalidInputError as exc:
            refuse("metrics", metric_id, exc)


# Every value the source's metrics were given, with when and by whom: one pass over its log.
# A value that was itself merged keeps the time and actor of where it came from.
_HISTORY = """
SELECT e.type, json_extract(item.value, '$.metric_id'), json_extract(item.value, '$.value'),
       coalesce(json_extract(item.value, '$.original_at'), e.at), json_extract(item.value, '$.original_actor'),
       e.user, e.host, e.origin
FROM events e, json_each(e.payload, '$.metrics') AS item
WHERE e.type IN ('metric_inserted', 'metric_overwritten') ORDER BY e.seq"""
_ACTIONS = {ev.METRIC_INSERTED: "inserted", ev.METRIC_OVERWRITTEN: "overwritten"}


def _read_history(conn: sqlite3.Connection) -> dict[int, list[_Entry]]:
    """The source's metric values from its log; {} when the log cannot be read that way (a
    damaged payload): each metric then brings its current value only, as from a 1.x file."""
    history: dict[int, list[_Entry]] = {}
    try:
        rows = conn.execute(_HISTORY).fetchall()
    except sqlite3.Error:
        return {}
    for event_type, metric_id, value, at, original_actor, user, host, origin in rows:
        actor = original_actor if original_actor is not None else actor_text(user, host, origin)
        # A damaged payload can hold anything: only text is a time or an actor.
        entry = _Entry(_ACTIONS[event_type], value, at if isinstance(at, str) else None,
                       actor if isinstance(actor, str) else None)
        history.setdefault(metric_id, []).append(entry)
    return history


def _optional(conn: sqlite3.Connection) -> str:
    """notes and hidden, which LightML 1.2 databases do not have."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(model)")}
    return ", ".join(c if c in columns else f"NULL AS {c}" for c in ("notes", "hidden"))


def _parents_first(models: list[tuple]) -> list[tuple]:
    by_id = {m[0]: m for m in models}
    ordered, placed = [], set()

    def place(model: tuple, seen: frozenset) -> None:
        if model[0] in placed or model[0] in seen:
            return
        parent = by_id.get(model[3])
        if parent is not None:
            place(parent, seen | {model[0]})
        placed.add(model[0])
        ordered.append(model)

    for model in models:
        place(model, frozenset())
    return ordered


def _metric_inputs(rows: list[tuple], src: _Source,
                   result: MergeResult) -> tuple[list[metric_log.MetricInput], dict[tuple[str, str], list[_Entry]]]:
    """The metrics of one target, as they are in the source, and each one's values there."""
    # A 1.x source can hold one metric twice (it had no unique index): the later row wins, as
    # in ``migrate``; the earlier one counts as skipped.
    latest = {(row[3], row[4]): row for row in rows}  # rows come in id order
    result.metrics_skipped += len(rows) - len(latest)
    items, histories = [], {}
    for metric_id, _, _, family, name, value in latest.values():
        try:
            number = check_value(value, f"{family}/{name}")
        except InvalidInputError:
            result.metrics_unusable += 1
            continue
        histories[(family, name)] = _values_of(src.history.get(metric_id, []), number)
        text = src.scores.get(metric_id)
        if text is None:
            items.append(metric_log.MetricInput(family, name, number))
            continue
        try:
            encoded, n = check_scores(json.loads(text))
            keys = src.doc_keys.get(metric_id)
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
    current = {
        (family, name): (value, scores)
        for family, name, value, scores in conn.execute(
            f"SELECT m.family, m.metric_name, m.value, d.scores FROM metrics m "
            f"LEFT JOIN detailed_scores d ON d.metric_id = m.id WHERE m.{key_column} = ?", (key,))
    }
    return [i for i in items if current.get((i.family, i.metric_name)) != (i.value, i.scores)]


def _merge_command(src: _Source, force: bool, registry_dir: Path) -> Command:
    def command(tx: WriteTransaction) -> MergeResult:
        conn, result = tx.conn, MergeResult()
        run_ids: dict[int, tuple[int, str]] = {}
        for rid, name, description, metadata, created_at in src.runs:
            existing = resolve.run_id(conn, name)
            if existing is None:
                existing = tx.next_id("run")
                tx.emit([(ev.RUN_CREATED, {"run_id": existing, "run_name": name, "description": description,
                                           "metadata": metadata, "created_at": created_at})])
                result.runs_created += 1
            run_ids[rid] = (existing, name)

        model_ids: dict[int, int] = {}
        model_keys: dict[int, tuple[str, str]] = {}  # source id -> (run name, model name)
        for mid, name, path, parent, run, notes, hidden in _parents_first(src.models):
            if run not in run_ids:
                continue  # a model without a run (not possible in a sane registry): nothing to key it by
            target_run, run_name = run_ids[run]
            model_keys[mid] = (run_name, name)
            row = conn.execute("SELECT id FROM model WHERE model_name = ? AND run_id = ?", (name, target_run)).fetchone()
            if row:
                model_ids[mid] = row[0]
                continue
            new_id = tx.next_id("model")
            tx.emit([(ev.MODEL_REGISTERED, {
                "model_id": new_id, "model_name": name, "path": path, "parent_id": model_ids.get(parent),
                "run_id": target_run, "notes": notes, "hidden": int(bool(hidden)),
            })])
            if path:
                tx.after_commit.append(lambda n=name, i=new_id, p=path: symlinks.create(registry_dir, n, i, p))
            model_ids[mid] = new_id
            result.models_registered += 1

        checkpoint_ids: dict[int, int] = {}
        for cid, mid, step, path, created_at in src.checkpoints:
            if mid not in model_ids:
                continue
            target_model = model_ids[mid]
            row = conn.execute("SELECT id FROM checkpoint WHERE model_id = ? AND step = ? AND path IS ?",
                               (target_model, step, path)).fetchone()
            if row:
                checkpoint_ids[cid] = row[0]
                continue
            new_id = tx.next_id("checkpoint")
            tx.emit([(ev.CHECKPOINT_REGISTERED, {"checkpoint_id": new_id, "model_id": target_model, "step": step,
                                                 "path": path, "created_at": created_at})])
            checkpoint_ids[cid] = new_id
            result.checkpoints_registered += 1

        by_target: dict[tuple[str, int], list[tuple]] = {}
        for row in src.metrics:
            _, mid, cid, *_ = row
            if mid is not None and mid in model_keys:
                by_target.setdefault(("model_id", mid), []).append(row)
            elif cid is not None and cid in checkpoint_ids:
                by_target.setdefault(("checkpoint_id", cid), []).append(row)
        for (column, source_id), rows in by_target.items():
            items, histories = _metric_inputs(rows, src, result)
            if column == "model_id":
                target: Any = metric_log.ModelTarget(*model_keys[source_id])
                key = model_ids[source_id]
            else:
                target = metric_log.CheckpointTarget(checkpoint_ids[source_id])
                key = checkpoint_ids[source_id]
            if force:
                unchanged = len(items)
                items = _changed_only(conn, column, key, items)
                result.metrics_skipped += unchanged - len(items)
            if not items:
                continue
            counts = _log_with_history(tx, target, items, histories, force, src.path)
            result.metrics_inserted += counts["inserted"]
            result.metrics_overwritten += counts["updated"]
            result.metrics_skipped += counts["skipped"]
        return result

    return command


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


def _provenance(source: str, entry: _Entry) -> dict[str, Any]:
    marks: dict[str, Any] = {"merged_from": source}
    if entry.at is not None:
        marks["original_at"] = entry.at
    if entry.actor is not None:
        marks["original_actor"] = entry.actor
    return marks


def _log_with_history(tx: WriteTransaction, target: Any, items: list[metric_log.MetricInput],
                      histories: dict[tuple[str, str], list[_Entry]], force: bool, source: str) -> dict[str, int]:
    """Log the items the way they got their values in the source: round 0 gives each metric
    its first value (inserted, or overwritten with ``force``), round k its k-th, as forced
    overwrites, only for the metrics round 0 wrote; the last round of a metric brings its scores.
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
            provenance[pair] = _provenance(source, entry)
        if not batch:
            break
        marked = _WithProvenance(tx, provenance)
        round_counts = metric_log.LogMetrics(target, batch, force or round_number > 0, single=False)(marked)
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
