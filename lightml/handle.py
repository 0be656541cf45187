"""``LightMLHandle``: the synchronous API (the one LightML 1.2 users know).

A thin facade: each write builds its command (``lightml.write.builders``) and runs it on
``lightml.runner.Registry``, blocking until its commit; reads run in the calling thread.
No event loop is involved, so it works unchanged inside Jupyter (where one is already
running) and a handle that is never closed holds nothing open that could lose data or
delay interpreter exit.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping, Sequence

from lightml.runner import Registry
from lightml.write import builders
from lightml.defaults import PRUNE_GRACE_SECONDS
from lightml.results import PruneResult
from lightml.results import DeleteResult
from lightml.log.store import DEFAULT_TIMEOUT


class LightMLHandle:
    """Open (or create) a registry; with ``run_name``, log into that run (created if new).
    Without one, writes go to the run ``benchmarks`` (LightML 1.4's default, created by the
    first registration), and reads resolve names across runs.

    ``timeout``: seconds to wait for another process's write lock before raising
    ``RegistryLockedError``. ``synchronous``: ``"FULL"`` (default: every commit is
    fsynced, survives power loss) or ``"NORMAL"`` (survives a crash of the process, not of
    the machine; several times faster per commit). ``create=False`` opens an existing
    registry and run for reading and creates neither.

    A SQLite registry on a network filesystem (NFS, SMB, Lustre, GPFS, BeeGFS, a FUSE
    network mount) is refused for writing with ``NetworkFilesystemError`` (at opening, or
    with ``create=False`` at the first write; reading is never refused):
    ``allow_network_filesystem=True`` (or ``LIGHTML_ALLOW_NETWORK_FS=1``) lets it through
    when you know only one machine writes it.
    """

    def __init__(self, db: str | os.PathLike, run_name: str | None = None, *,
                 timeout: float = DEFAULT_TIMEOUT, synchronous: str = "FULL", origin: str = "api",
                 create: bool = True, allow_network_filesystem: bool = False) -> None:
        self._core = Registry(db, run_name, timeout=timeout, synchronous=synchronous, origin=origin, create=create,
                              allow_network_filesystem=allow_network_filesystem)
        self._scope = self._core.scope

    @property
    def db_path(self):
        return self._core.path

    @property
    def run_name(self) -> str | None:
        return self._core.run_name

    def close(self) -> None:
        self._core.close()

    def _run(self, command: Any) -> Any:
        return self._core.run(command)

    def __enter__(self) -> "LightMLHandle":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._core.closed else "open"
        return f"<LightMLHandle {self._core.path} run={self._core.run_name!r} {state}>"

    # writes: each returns after COMMIT

    def register_model(self, model_name: str, path: str | os.PathLike, parent_name: str | None = None,
                       parent_id: int | None = None, run_name: str | None = None, *,
                       params: Mapping[str, Any] | None = None, tags: Iterable[str] | None = None) -> int:
        """Register (idempotent by name and run). ``run_name``: a run other than the handle's,
        created in the same transaction if new (a refused registration leaves no empty run).
        ``params`` and ``tags``: set on the model as ``set_params`` and ``add_tags`` do."""
        return self._run(builders.register_model(self._scope, model_name, path, parent_name, parent_id, run_name,
                                                 params, tags))

    def register_checkpoint(self, model_name: str, step: int, path: str | os.PathLike) -> int:
        return self._run(builders.register_checkpoint(self._scope, model_name, step, path))

    def log_model_metric(self, model_name: str, family: str, metric_name: str, value: float,
                         scores: Any = None, force: bool = False, *, doc_ids: Any = None,
                         settings: Mapping[str, Any] | None = None, repeat: str | None = None) -> int:
        return self._run(
            builders.log_model_metric(self._scope, model_name, family, metric_name, value, scores, force, doc_ids,
                                      settings, repeat))

    def log_checkpoint_metric(self, checkpoint_id: int, family: str, metric_name: str, value: float,
                              scores: Any = None, force: bool = False, *, doc_ids: Any = None,
                              settings: Mapping[str, Any] | None = None, repeat: str | None = None) -> int:
        return self._run(
            builders.log_checkpoint_metric(checkpoint_id, family, metric_name, value, scores, force, doc_ids,
                                           settings, repeat))

    def log_metrics(self, model_name: str, metrics: Mapping[str, Mapping[str, float]],
                    force: bool = False, *, settings: Mapping[str, Any] | None = None,
                    repeat: str | None = None) -> dict[str, int]:
        return self._run(builders.log_metrics(self._scope, model_name, metrics, force, settings, repeat))

    def log_metrics_flat(self, model_name: str, metrics: Mapping[str, float], family: str,
                         force: bool = False) -> dict[str, int]:
        return self._run(builders.log_metrics_flat(self._scope, model_name, metrics, family, force))

    def delete_model(self, model_name: str) -> DeleteResult:
        return self._run(builders.delete_model(self._scope, model_name))

    def restore_model(self, model_name: str, run_name: str | None = None) -> int:
        """Undo the latest delete of the model. ``run_name``: the run it was deleted from, when
        it is not the handle's (a run prune removed is named here: it comes back too)."""
        return self._run(builders.restore_model(self._scope, model_name, run_name))

    def set_notes(self, model_name: str, notes: str | None) -> bool:
        """Set (or with None / "" clear) the model's notes. True when something changed."""
        return self._run(builders.set_notes(self._scope, model_name, notes))

    def rename_model(self, old_name: str, new_name: str) -> bool:
        """Rename a model within its run (ids, metrics and lineage stay). True when renamed."""
        return self._run(builders.rename_model(self._scope, old_name, new_name))

    def set_hidden(self, model_name: str, hidden: bool = True) -> bool:
        """Hide a model from listings, diff, export and the dashboard (or show it again)."""
        return self._run(builders.set_hidden(self._scope, model_name, hidden))

    def set_params(self, model_name: str, params: Mapping[str, Any]) -> bool:
        """Set these parameters of the model (a value None removes its key); True when they changed."""
        return self._run(builders.set_params(self._scope, model_name, params))

    def add_tags(self, model_name: str, tags: Iterable[str]) -> bool:
        return self._run(builders.add_tags(self._scope, model_name, tags))

    def remove_tags(self, model_name: str, tags: Iterable[str]) -> bool:
        return self._run(builders.remove_tags(self._scope, model_name, tags))

    def save_dashboard_item(self, kind: str, name: str, spec: Mapping[str, Any], item_id: int | None = None) -> int:
        """Save a dashboard chart, view or summary set (``kind``) in the registry: a new one
        (``item_id`` None), or that item renamed or with a new spec. Returns its id."""
        return self._run(builders.save_dashboard_item(kind, name, spec, item_id))[0]

    def remove_dashboard_item(self, item_id: int) -> bool:
        return self._run(builders.remove_dashboard_item(item_id))

    def restore_dashboard_item(self, item_id: int) -> bool:
        return self._run(builders.restore_dashboard_item(item_id))

    def reorder_dashboard_items(self, kind: str, item_ids: Sequence[int]) -> bool:
        """Put every live item of ``kind`` in this order."""
        return self._run(builders.reorder_dashboard_items(kind, item_ids))

    def dashboard_items(self, kind: str | None = None, removed: bool = False) -> list[dict[str, Any]]:
        """The saved items of ``kind`` (every kind if None) in their order, or the removed ones."""
        return self._core.dashboard_items(kind, removed)

    def get_params(self, model_name: str) -> dict[str, Any]:
        return self._core.get_params(model_name)

    def get_tags(self, model_name: str) -> list[str]:
        return self._core.get_tags(model_name)

    def select_models(self, where: str) -> list[dict[str, Any]]:
        """The models the filter expression selects (see the README's filter expressions), in
        name order: [{"model", "run", "params", "tags"}] (hidden ones included)."""
        return self._core.select_models(where)

    def set_parent(self, model_name: str, parent_name: str | None) -> bool:
        """Change the model's parent, or remove it with None. Refuses a cycle."""
        return self._run(builders.set_parent(self._scope, model_name, parent_name))

    def prune(self, dry_run: bool = False, grace_seconds: float = PRUNE_GRACE_SECONDS) -> PruneResult:
        """Delete models with no metrics, checkpoints or children, then runs left empty.
        Models registered (or restored) less than ``grace_seconds`` ago are kept: an eval
        may be about to log them. Each model comes back with ``restore_model`` (and its run
        with it)."""
        if dry_run:
            return self._core.prune_preview(grace_seconds)
        return self._run(builders.prune(self._scope, grace_seconds))

    def add_schema_rule(self, family: str, metric_name: str) -> bool:
        """Allow (family, metric_name). Once the schema has a rule, only listed pairs can be logged."""
        return self._run(builders.add_schema_rules([(family, metric_name)])) == 1

    def add_schema_rules(self, rules: Iterable[tuple[str, str]]) -> int:
        return self._run(builders.add_schema_rules(rules))

    # reads

    def find_checkpoint(self, model_name: str, step: int, path_hint: str | None = None) -> int | None:
        return self._core.find_checkpoint(model_name, step, path_hint)

    def model_exists(self, model_name: str) -> bool:
        return self._core.model_exists(model_name)

    def metric_exists(self, model_name: str, family: str, metric_name: str) -> bool:
        return self._core.metric_exists(model_name, family, metric_name)

    def run_metric_exists(self, model_name: str, family: str, metric_name: str) -> bool:
        return self._core.run_metric_exists(model_name, family, metric_name)

    def search(self, model: str, family: str | None = None, metric: str | None = None) -> list[dict[str, Any]]:
        return self._core.search(model, family, metric)

    def get_detailed_scores(self, model_name: str, family: str, metric_name: str) -> list | None:
        return self._core.get_detailed_scores(model_name, family, metric_name)

    def compare_stats(self, model_a: str, model_b: str, family: str, metric_name: str, *,
                      resamples: int = 10_000, confidence: float = 0.95, seed: int = 42,
                      strict: bool = False) -> dict[str, Any]:
        """Paired test of two models on one metric's per-sample scores (McNemar for 0/1
        scores, bootstrap otherwise). See the README for the keys of the result."""
        return self._core.compare_stats(model_a, model_b, family, metric_name,
                                        resamples=resamples, confidence=confidence, seed=seed, strict=strict)

    def compare_stats_all(self, model_a: str, model_b: str, family: str | None = None, *,
                          resamples: int = 10_000, confidence: float = 0.95, seed: int = 42,
                          strict: bool = False) -> list[dict[str, Any]]:
        """``compare_stats`` for every metric both models have scores for, with Holm and
        Benjamini-Hochberg adjusted p-values (``p_holm``, ``p_bh``)."""
        return self._core.compare_stats_all(model_a, model_b, family,
                                            resamples=resamples, confidence=confidence, seed=seed, strict=strict)

    def flips(self, model_a: str, model_b: str, family: str, metric_name: str,
              step_a: int | None = None, step_b: int | None = None, *, limit: int | None = None) -> list[dict[str, Any]]:
        """The documents where the two models' per-sample scores of one metric differ (of their
        checkpoints at ``step_a`` / ``step_b`` if given; the first ``limit``): ``doc``, ``a``,
        ``b``, ``better``, and the texts where scan recorded the samples files."""
        return self._core.flips(model_a, model_b, family, metric_name, step_a, step_b, limit)

    def check_regression(self, base: str, candidate: str, family: str | None = None, *,
                         alpha: float = 0.05) -> dict[str, Any]:
        """The regression gate: ``passed`` is False when a metric of ``candidate`` is
        significantly worse than ``base``'s (paired tests, Holm-adjusted, at ``alpha``)."""
        return self._core.check_regression(base, candidate, family, alpha)

    def model_history(self, model_name: str) -> list[dict[str, Any]]:
        """Every event about the model, oldest first: registration, notes, renames, hide,
        reparent, checkpoints, metric logs, delete, restore (``seq``, ``at``, ``type``,
        ``actor``, ``what``)."""
        return self._core.model_history(model_name)

    def metric_settings(self, model_name: str, family: str, metric_name: str,
                        step: int | None = None) -> dict[str, Any]:
        """The eval settings the value was produced with (of the checkpoint at ``step`` if
        given): what ``settings=`` or ``scan`` recorded; {} when none were."""
        return self._core.metric_settings(model_name, family, metric_name, step)

    def get_repeats(self, model_name: str, family: str, metric_name: str,
                    step: int | None = None) -> list[dict[str, Any]]:
        """The repeats of a value logged with repeat labels (of the checkpoint at ``step`` if
        given), in label order: [{"repeat", "value"}]; [] for a value logged without one."""
        return self._core.get_repeats(model_name, family, metric_name, step)

    def metric_history(self, model_name: str, family: str, metric_name: str,
                       step: int | None = None) -> list[dict[str, Any]]:
        return self._core.metric_history(model_name, family, metric_name, step)
