"""The runner both handles share: open a registry, read it, run and submit commands.

``LightMLHandle`` blocks on what this returns and ``AsyncLightMLHandle`` awaits it. Writes
are built by ``lightml.write.builders`` (checked input -> a command) and handed here:
``submit`` (or ``submit_many``) queues a command to the process's writer and returns a
future that resolves after COMMIT, and ``run`` returns its result (running it on the
calling thread when the writer is idle). Reads run on this handle's read connection, in
the caller's thread.
"""

from __future__ import annotations

import os
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any, Callable, TypeVar

from lightml.log import network_fs, store, writer
from lightml.log.engine import engine_for, result_location
from lightml.log.opening import add_missing_read_tables, needs_upgrade
from lightml.log.transaction import Actor
from lightml.log.writer import Command
from lightml.read import queries, resolve
from lightml.write import commands, lifecycle
from lightml.write.builders import Scope
from lightml.results import PruneResult
from lightml.defaults import PRUNE_GRACE_SECONDS
from lightml.errors import HandleClosedError, InvalidInputError, NotARegistryError
from lightml.write.validation import check_name, check_step

T = TypeVar("T")


class Registry:
    """One handle's registry: its read connection, the process's writer, its run.

    ``create``: open to write, making the file and the run if missing. A SQLite registry on
    a network filesystem is refused for writing (``lightml.log.network_fs``) unless
    ``allow_network_filesystem``: with ``create``, when it opens (before anything is made);
    without, at its first write (reading it is never refused).
    """

    def __init__(
        self, db: str | os.PathLike, run_name: str | None = None, *, origin: str = "api",
        timeout: float = store.DEFAULT_TIMEOUT, synchronous: str = "FULL", create: bool = True,
        allow_network_filesystem: bool = False,
    ) -> None:
        if run_name is not None:
            check_name(run_name, "run_name")
        if synchronous.upper() not in ("FULL", "NORMAL"):
            raise InvalidInputError("synchronous must be 'FULL' or 'NORMAL'")
        # The registry's engine, at its absolute location; a missing file is created only if asked.
        self.engine = engine_for(db).checked(create=create)
        self._allow_network_filesystem = bool(allow_network_filesystem)
        self._may_write = False  # set once the network filesystem guard has let writes through
        if create:
            self._check_may_write()
        self.path = result_location(self.engine)  # a Path, or a server registry's URL (no password)
        # Model links go beside a registry file; a server's registry has no folder of its own.
        self.registry_dir = self.path.parent if isinstance(self.path, Path) else None
        self.run_name = run_name
        self.actor = Actor.current(origin)
        self._read_lock = threading.Lock()
        self._conn = self.engine.connect(timeout=timeout)
        try:
            if create:
                store.ensure_schema(self._conn, self.path)
            else:
                store.check_format(self._conn, self.path)
                if store.registry_format(self._conn) is None:
                    raise NotARegistryError(f"{self.path} is an empty database, not a LightML registry")
            if needs_upgrade(self._conn):  # tables or guards of an earlier build
                add_missing_read_tables(self.engine.db, timeout=timeout)
        except BaseException:
            self._conn.close()
            raise
        self._writer = writer.acquire(self.engine, float(timeout), synchronous.upper())
        self._closed = False
        self._run_id: int | None = None
        self.scope = Scope(run_name, self.registry_dir)  # what the builders need of this handle
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

    def _check_may_write(self) -> None:
        """The network filesystem guard, asked once per handle (the mount table is read once)."""
        network_fs.refuse_writing(self.engine, allow=self._allow_network_filesystem)
        self._may_write = True

    def _writer_for_a_write(self) -> writer.Writer:
        """The writer, refused on a closed handle and (see the class) on a network filesystem."""
        if self._closed:
            raise HandleClosedError("this LightML handle is closed")
        if not self._may_write:
            self._check_may_write()
        return self._writer

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

    def submit(self, command: Command) -> Future:
        """Queue a command; the future resolves to its result after COMMIT."""
        return self._writer_for_a_write().submit(command, self.actor)

    def run(self, command: Command) -> Any:
        """Run a command and return its result (after COMMIT), raising its error."""
        return self._writer_for_a_write().run_now(command, self.actor).result()

    def submit_many(self, commands_: list[Command]) -> Future:
        """Queue several commands for one transaction; the future resolves to their outcomes."""
        return self._writer_for_a_write().submit_many(commands_, self.actor)

    def read(self, query: Callable[..., T], *args: Any) -> T:
        """Run a query on this handle's read connection (serialized across threads)."""
        if self._closed:
            raise HandleClosedError("this LightML handle is closed")
        with self._read_lock:
            return query(self._conn, *args)

    def _model_id(self, conn, model_name: str) -> int:
        """A model named on a read: by the one naming rule, this handle's run preferred."""
        return resolve.find_model_by_run_id(conn, model_name, self._run_id).id

    # -- reads ----------------------------------------------------------------------------

    def prune_preview(self, grace_seconds: float = PRUNE_GRACE_SECONDS) -> PruneResult:
        """What ``prune`` would remove, without removing it."""
        from datetime import datetime, timezone

        grace = lifecycle.check_grace(grace_seconds)
        found = self.read(lifecycle.prune_candidates, datetime.now(timezone.utc), grace)
        return PruneResult([(name, run) for _, name, run in found.models], [name for _, name in found.runs],
                                 dry_run=True, too_new=found.too_new, grace_seconds=grace)

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
            run = self._run_id if self._run_id is not None else resolve.run_id(conn, self.scope.write_run)
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

    def flips(self, model_a: str, model_b: str, family: str, metric_name: str,
              step_a: int | None = None, step_b: int | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        from lightml.read import flips

        for value, what in ((model_a, "model_a"), (model_b, "model_b"), (family, "family"),
                            (metric_name, "metric_name")):
            check_name(value, what)
        step_a = None if step_a is None else check_step(step_a)
        step_b = None if step_b is None else check_step(step_b)
        flips.check_limit(limit)
        return self.read(lambda c: flips.flips(
            c, model_a, model_b, family, metric_name, step_a, step_b, self._run_id, limit).items)

    def check_regression(self, base: str, candidate: str, family: str | None = None,
                         alpha: float = 0.05) -> dict[str, Any]:
        from lightml.read import regression

        check_name(base, "base")
        check_name(candidate, "candidate")
        if family is not None:
            check_name(family, "family")
        regression.check_alpha(alpha)
        return self.read(lambda c: regression.regression_check(c, base, candidate, family, alpha, self._run_id))

    def model_history(self, model_name: str) -> list[dict[str, Any]]:
        check_name(model_name, "model_name")
        return self.read(queries.model_events, model_name, self._run_id, self.run_name)

    def metric_settings(self, model_name: str, family: str, metric_name: str,
                        step: int | None = None) -> dict[str, Any]:
        from lightml.read import settings

        for value, what in ((model_name, "model_name"), (family, "family"), (metric_name, "metric_name")):
            check_name(value, what)
        step = None if step is None else check_step(step)
        return self.read(lambda c: settings.metric_settings(c, model_name, family, metric_name, step, self._run_id,
                                                            self.run_name))

    def get_params(self, model_name: str) -> dict[str, Any]:
        from lightml.read import params

        check_name(model_name, "model_name")
        return self.read(lambda c: params.params_of(c, model_name, self._run_id))

    def get_tags(self, model_name: str) -> list[str]:
        from lightml.read import params

        check_name(model_name, "model_name")
        return self.read(lambda c: params.tags_of(c, model_name, self._run_id))

    def dashboard_items(self, kind: str | None, removed: bool) -> list[dict[str, Any]]:
        from lightml.read.dashboard_items import dashboard_items
        from lightml.write.dashboard_items import check_kind

        return self.read(dashboard_items, None if kind is None else check_kind(kind), bool(removed))

    def select_models(self, where: str) -> list[dict[str, Any]]:
        from lightml.read import catalog, filters

        filters.parse(where)  # (a bad expression: the error, before any query)
        return self.read(catalog.selected_models, where)

    def get_repeats(self, model_name: str, family: str, metric_name: str,
                    step: int | None = None) -> list[dict[str, Any]]:
        from lightml.read import repeats

        for value, what in ((model_name, "model_name"), (family, "family"), (metric_name, "metric_name")):
            check_name(value, what)
        step = None if step is None else check_step(step)
        return self.read(lambda c: repeats.get_repeats(c, model_name, family, metric_name, step, self._run_id,
                                                       self.run_name))

    def metric_history(self, model_name: str, family: str, metric_name: str,
                       step: int | None = None) -> list[dict[str, Any]]:
        check_name(model_name, "model_name")
        if step is not None:
            step = check_step(step)

        def query(conn):
            ids = queries.history_metric_ids(conn, model_name, family, metric_name, step, self._run_id, self.run_name)
            return queries.metric_history(conn, ids, family)

        return self.read(query)
