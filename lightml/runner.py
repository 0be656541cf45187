"""The logic both handles share. Reads run in the caller's thread; writes go to the writer.

``LightMLHandle`` blocks on what this returns and ``AsyncLightMLHandle`` awaits it: every
rule (validation, name resolution, dedupe) lives here and in ``commands`` once.
Write methods validate their input and return the command to run; ``submit`` (or
``submit_many``) queues it to the writer and returns a future that resolves after COMMIT,
and ``run`` returns its result (running it on the calling thread when the writer is idle).
"""

from __future__ import annotations

import os
import threading
import warnings
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, TypeVar

from lightml.log import store, writer
from lightml.read import queries, resolve
from lightml.write import commands, edits, lifecycle, metric_log
from lightml.results import PruneResult
from lightml.defaults import DEFAULT_RUN, PRUNE_GRACE_SECONDS
from lightml.errors import HandleClosedError, InvalidInputError, NotARegistryError
from lightml.log.opening import add_missing_read_tables, needs_upgrade
from lightml.write.validation import (
    check_doc_keys, check_id, check_name, check_notes, check_scores, check_step, check_value, normalize_path,
    scores_disagreement,
)

T = TypeVar("T")
_INF = float("inf")


def registry_path(db: str | os.PathLike, *, create: bool) -> Path:
    """The registry file's absolute path. Missing file: created only if asked and its folder exists."""
    if not isinstance(db, (str, os.PathLike)) or not os.fspath(db):
        raise InvalidInputError("db must be a path to the registry's .db file")
    path = Path(os.path.abspath(Path(db).expanduser()))
    if path.is_dir():
        raise InvalidInputError(f"{path} is a folder; give the registry's .db file (e.g. {path / 'main.db'})")
    if not path.exists():
        if not create:
            raise FileNotFoundError(f"registry not found: {path}")
        if not path.parent.is_dir():
            raise FileNotFoundError(f"cannot create registry {path}: folder {path.parent} does not exist")
    return path


class Registry:
    def __init__(
        self, db: str | os.PathLike, run_name: str | None = None, *, origin: str = "api",
        timeout: float = store.DEFAULT_TIMEOUT, synchronous: str = "FULL", create: bool = True,
    ) -> None:
        if run_name is not None:
            check_name(run_name, "run_name")
        if synchronous.upper() not in ("FULL", "NORMAL"):
            raise InvalidInputError("synchronous must be 'FULL' or 'NORMAL'")
        self.path = registry_path(db, create=create)
        self.registry_dir = self.path.parent
        self.run_name = run_name
        self.actor = writer.Actor.current(origin)
        self._read_lock = threading.Lock()
        self._conn = store.connect(self.path, timeout=timeout)
        try:
            if create:
                store.ensure_schema(self._conn, self.path)
            else:
                store.check_format(self._conn, self.path)
                if store.registry_format(self._conn) is None:
                    raise NotARegistryError(f"{self.path} is an empty database, not a LightML registry")
            if needs_upgrade(self._conn):  # tables or guards of an earlier build
                add_missing_read_tables(self.path, timeout=timeout)
        except BaseException:
            self._conn.close()
            raise
        self._writer = writer.acquire(str(self.path), float(timeout), synchronous.upper())
        self._closed = False
        self._run_id: int | None = None
        # The run the writes go to: the handle's, else LightML 1.4's default run.
        self._write_run = run_name if run_name is not None else DEFAULT_RUN
        if run_name is not None:
            try:
                self._run_id = self._open_run(run_name, create)
            except BaseException:
                self.close()  # e.g. RegistryLockedError: give back the connection and the writer
                raise

    def _open_run(self, run_name: str, create: bool) -> int:
        """The run's id. An existing run is found by a read, without the write lock (a long
        replay or merge elsewhere must not stop a read-mostly script from opening); only a
        missing one is created (``create``) in a write transaction."""
        if not create:  # read-only use: the run must exist, nothing is written
            return self.read(resolve.require_run_id, run_name)
        run_id = self.read(resolve.run_id, run_name)
        return run_id if run_id is not None else self.run(commands.create_run(run_name))

    # -- plumbing -------------------------------------------------------------------------

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        writer.release(self._writer)
        with self._read_lock:
            self._conn.close()

    @property
    def closed(self) -> bool:
        return self._closed

    def submit(self, command: writer.Command) -> Future:
        """Queue a command; the future resolves to its result after COMMIT."""
        if self._closed:
            raise HandleClosedError("this LightML handle is closed")
        return self._writer.submit(command, self.actor)

    def run(self, command: writer.Command) -> Any:
        """Run a command and return its result (after COMMIT), raising its error."""
        if self._closed:
            raise HandleClosedError("this LightML handle is closed")
        return self._writer.run_now(command, self.actor).result()

    def submit_many(self, commands_: list[writer.Command]) -> Future:
        """Queue several commands for one transaction; the future resolves to their outcomes."""
        if self._closed:
            raise HandleClosedError("this LightML handle is closed")
        return self._writer.submit_many(commands_, self.actor)

    def read(self, query: Callable[..., T], *args: Any) -> T:
        """Run a query on this handle's read connection (serialized across threads)."""
        if self._closed:
            raise HandleClosedError("this LightML handle is closed")
        with self._read_lock:
            return query(self._conn, *args)

    def _model_id(self, conn, model_name: str) -> int:
        """A model named on a read: by the one naming rule, this handle's run preferred."""
        return resolve.find_model_by_run_id(conn, model_name, self._run_id).id

    # -- writes ---------------------------------------------------------------------------

    def register_model(self, model_name: str, path: str | os.PathLike, parent_name: str | None = None,
                       parent_id: int | None = None, run_name: str | None = None) -> writer.Command:
        if run_name is not None:
            check_name(run_name, "run_name")
        check_name(model_name, "model_name")
        stored_path = normalize_path(path)
        if parent_name is not None:
            check_name(parent_name, "parent_name")
        if parent_id is not None:
            parent_id = check_id(parent_id, "parent_id")
        # Another run than the handle's (or the default run) is created, if new, in the
        # registration's transaction.
        return commands.register_model(
            run_name if run_name is not None else self._write_run, model_name, stored_path, parent_name, parent_id,
            self.registry_dir, create_run_if_new=run_name is not None or self.run_name is None)

    def register_checkpoint(self, model_name: str, step: int, path: str | os.PathLike) -> writer.Command:
        check_name(model_name, "model_name")
        return commands.register_checkpoint(
            self._write_run, model_name, check_step(step), normalize_path(path))

    @staticmethod
    def metric_input(family: str, metric_name: str, value: Any, scores: Any = None,
                     doc_ids: Any = None) -> metric_log.MetricInput:
        check_name(family, "family")
        check_name(metric_name, "metric_name")
        number = check_value(value, f"value of {family}/{metric_name}")
        if scores is None:
            if doc_ids is not None:
                raise InvalidInputError("doc_ids name the documents of per-sample scores: give scores too")
            return metric_log.MetricInput(family, metric_name, number)
        if hasattr(scores, "tolist") and not isinstance(scores, (list, tuple)):
            scores = scores.tolist()  # a numpy array: converted once, for both checks below
        text, n = check_scores(scores)
        keys = None if doc_ids is None else check_doc_keys(doc_ids, n)
        disagreement = scores_disagreement(number, scores)
        if disagreement is not None:  # logged all the same: the caller may know better
            warnings.warn(f"lightml: {family}/{metric_name}: {disagreement}", UserWarning, stacklevel=4)
        return metric_log.MetricInput(family, metric_name, number, text, n, keys)

    def log_model_metric(self, model_name: str, family: str, metric_name: str, value: Any,
                         scores: Any = None, force: bool = False, doc_ids: Any = None) -> writer.Command:
        check_name(model_name, "model_name")
        item = self.metric_input(family, metric_name, value, scores, doc_ids)
        target = metric_log.ModelTarget(self._write_run, model_name)
        return metric_log.LogMetrics(target, [item], bool(force), single=True)

    def log_checkpoint_metric(self, checkpoint_id: int, family: str, metric_name: str, value: Any,
                              scores: Any = None, force: bool = False, doc_ids: Any = None) -> writer.Command:
        target = metric_log.CheckpointTarget(check_id(checkpoint_id, "checkpoint_id"))
        item = self.metric_input(family, metric_name, value, scores, doc_ids)
        return metric_log.LogMetrics(target, [item], bool(force), single=True)

    def log_metrics(self, model_name: str, metrics: Mapping[str, Mapping[str, Any]], force: bool = False) -> writer.Command:
        check_name(model_name, "model_name")
        if not isinstance(metrics, Mapping):
            raise InvalidInputError("metrics must be a dict {family: {metric_name: value}}")
        items = []
        for family, values in metrics.items():
            if not isinstance(values, Mapping):
                raise InvalidInputError(f"metrics[{family!r}] must be a dict {{metric_name: value}}")
            items.extend(self._family_inputs(family, values))
        return self._log_many(model_name, items, force)

    def log_metrics_flat(self, model_name: str, metrics: Mapping[str, Any], family: str,
                         force: bool = False) -> writer.Command:
        check_name(model_name, "model_name")
        if not isinstance(metrics, Mapping):
            raise InvalidInputError("metrics must be a dict {metric_name: value}")
        return self._log_many(model_name, self._family_inputs(family, metrics), force)

    @staticmethod
    def _family_inputs(family: str, values: Mapping[str, Any]) -> list[metric_log.MetricInput]:
        check_name(family, "family")
        make = metric_log.MetricInput
        return [
            # a finite Python float is the usual value: skip building check_value's message for it
            make(family, check_name(name, "metric_name"),
                 value if type(value) is float and -_INF < value < _INF else check_value(value, f"value of {family}/{name}"))
            for name, value in values.items()
        ]

    def _log_many(self, model_name: str, items: list[metric_log.MetricInput], force: bool) -> writer.Command:
        target = metric_log.ModelTarget(self._write_run, model_name)
        return metric_log.LogMetrics(target, items, bool(force), single=False)

    def delete_model(self, model_name: str) -> writer.Command:
        check_name(model_name, "model_name")
        return lifecycle.delete_model(self.run_name, model_name, self.registry_dir)

    def restore_model(self, model_name: str, run_name: str | None = None) -> writer.Command:
        check_name(model_name, "model_name")
        if run_name is not None:
            check_name(run_name, "run_name")
        return lifecycle.restore_model(run_name if run_name is not None else self.run_name, model_name,
                                      self.registry_dir)

    def set_notes(self, model_name: str, notes: str | None) -> writer.Command:
        check_name(model_name, "model_name")
        return edits.set_notes(self.run_name, model_name, check_notes(notes))

    def rename_model(self, old_name: str, new_name: str) -> writer.Command:
        check_name(old_name, "old_name")
        check_name(new_name, "new_name")
        return edits.rename_model(self.run_name, old_name, new_name, self.registry_dir)

    def set_hidden(self, model_name: str, hidden: bool) -> writer.Command:
        check_name(model_name, "model_name")
        if not isinstance(hidden, bool):
            raise InvalidInputError(f"hidden must be True or False, got {hidden!r}")
        return edits.set_hidden(self.run_name, model_name, hidden)

    def set_parent(self, model_name: str, parent_name: str | None) -> writer.Command:
        check_name(model_name, "model_name")
        if parent_name is not None:
            check_name(parent_name, "parent_name")
        return edits.set_parent(self.run_name, model_name, parent_name)

    def prune(self, grace_seconds: float = PRUNE_GRACE_SECONDS) -> writer.Command:
        return lifecycle.prune(self.registry_dir, grace_seconds)

    def prune_preview(self, grace_seconds: float = PRUNE_GRACE_SECONDS) -> PruneResult:
        """What ``prune`` would remove, without removing it."""
        from datetime import datetime, timezone

        grace = lifecycle.check_grace(grace_seconds)
        found = self.read(lifecycle.prune_candidates, datetime.now(timezone.utc), grace)
        return PruneResult([(name, run) for _, name, run in found.models], [name for _, name in found.runs],
                                 dry_run=True, too_new=found.too_new, grace_seconds=grace)

    def add_schema_rules(self, rules: Iterable[tuple[str, str]]) -> writer.Command:
        checked = [(check_name(f, "family"), check_name(m, "metric_name")) for f, m in rules]
        return commands.add_schema_rules(checked)

    # -- reads ----------------------------------------------------------------------------

    def find_checkpoint(self, model_name: str, step: int, path_hint: str | None = None) -> int | None:
        check_name(model_name, "model_name")
        step = check_step(step)
        return self.read(lambda c: queries.find_checkpoint(c, self._model_id(c, model_name), step, path_hint))

    def model_exists(self, model_name: str) -> bool:
        """Is there a model of that name in any run? (as in LightML 1.2)"""
        check_name(model_name, "model_name")
        return self.read(queries.model_exists, model_name)

    def metric_exists(self, model_name: str, family: str, metric_name: str) -> bool:
        """Does a model of that name, in any run, have this model-level metric? (as in 1.2)"""
        for value, what in ((model_name, "model_name"), (family, "family"), (metric_name, "metric_name")):
            check_name(value, what)
        return self.read(queries.metric_exists_any_run, model_name, family, metric_name)

    def run_metric_exists(self, model_name: str, family: str, metric_name: str) -> bool:
        """Does the model of this handle's run (without one: the default run, ``benchmarks``)
        have this metric (the check an eval loop makes)?"""
        for value, what in ((model_name, "model_name"), (family, "family"), (metric_name, "metric_name")):
            check_name(value, what)

        def query(conn) -> bool:
            run = self._run_id if self._run_id is not None else resolve.run_id(conn, self._write_run)
            return run is not None and queries.metric_exists_in_run(conn, model_name, family, metric_name, run)

        return self.read(query)

    def search(self, model: str, family: str | None = None, metric: str | None = None) -> list[dict[str, Any]]:
        check_name(model, "model pattern")
        return self.read(queries.search, model, family, metric, self._run_id)

    def get_detailed_scores(self, model_name: str, family: str, metric_name: str) -> list | None:
        check_name(model_name, "model_name")
        return self.read(
            lambda c: queries.detailed_scores(c, self._model_id(c, model_name), family, metric_name))

    def compare_stats(self, model_a: str, model_b: str, family: str, metric_name: str,
                      **options: Any) -> dict[str, Any]:
        from lightml.read import significance

        for value, what in ((model_a, "model_a"), (model_b, "model_b"), (family, "family"),
                            (metric_name, "metric_name")):
            check_name(value, what)
        return self.read(lambda c: significance.compare_stats(
            c, model_a, model_b, family, metric_name, self._run_id, **options))

    def compare_stats_all(self, model_a: str, model_b: str, family: str | None = None,
                          **options: Any) -> list[dict[str, Any]]:
        from lightml.read import significance

        check_name(model_a, "model_a")
        check_name(model_b, "model_b")
        if family is not None:
            check_name(family, "family")
        return self.read(lambda c: significance.compare_stats_all(
            c, model_a, model_b, family, self._run_id, **options))

    def model_history(self, model_name: str) -> list[dict[str, Any]]:
        check_name(model_name, "model_name")
        return self.read(queries.model_events, model_name, self._run_id, self.run_name)

    def metric_history(self, model_name: str, family: str, metric_name: str,
                       step: int | None = None) -> list[dict[str, Any]]:
        check_name(model_name, "model_name")
        if step is not None:
            step = check_step(step)

        def query(conn):
            ids = queries.history_metric_ids(conn, model_name, family, metric_name, step, self._run_id, self.run_name)
            return queries.metric_history(conn, ids)

        return self.read(query)
