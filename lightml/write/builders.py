"""Builders: the API's write calls turned into commands, without running them.

Each builder checks its input (``lightml.write.validation``) and returns the command that
the runner (``lightml.runner.Registry.run`` / ``submit``) runs later inside the write
transaction. Building touches no file and no database (httpx's ``build_request`` before
``send``): bad input raises here, before anything is queued, and a test can build a
command and look at it without a registry. What a builder needs of the handle is its
``Scope``.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

from lightml.defaults import DEFAULT_RUN, PRUNE_GRACE_SECONDS
from lightml.errors import InvalidInputError
from lightml.log.writer import Command
from lightml.write import commands, dashboard_items, edits, lifecycle
from lightml.write.metric_log import CheckpointTarget, LogMetrics, MetricInput, ModelTarget, SettingsByFamily
from lightml.write.validation import (
    check_doc_keys, check_id, check_name, check_notes, check_params, check_repeat, check_scores, check_settings,
    check_step, check_tags, check_value, normalize_path,
    scores_disagreement,
)

_INF = float("inf")


@dataclass(frozen=True, slots=True)
class Scope:
    """Where a handle's writes go: ``run_name`` is the handle's run (None: names resolve
    across runs), ``write_run`` the run that new models and metrics go to (the handle's,
    else LightML 1.4's default run), ``registry_dir`` the folder of the model links."""

    run_name: str | None
    registry_dir: Path | None  # None: a server registry (no model links)

    @property
    def write_run(self) -> str:
        return self.run_name if self.run_name is not None else DEFAULT_RUN


def register_model(scope: Scope, model_name: str, path: str | os.PathLike, parent_name: str | None = None,
                   parent_id: int | None = None, run_name: str | None = None, params: Any = None,
                   tags: Any = None) -> Command:
    if run_name is not None:
        check_name(run_name, "run_name")
    check_name(model_name, "model_name")
    stored_path = normalize_path(path)
    if parent_name is not None:
        check_name(parent_name, "parent_name")
    if parent_id is not None:
        parent_id = check_id(parent_id, "parent_id")
    checked_params, checked_tags = check_params(params), check_tags(tags)
    # Another run than the handle's (or the default run) is created, if new, in the
    # registration's transaction.
    register = commands.register_model(
        run_name if run_name is not None else scope.write_run, model_name, stored_path, parent_name, parent_id,
        scope.registry_dir, create_run_if_new=run_name is not None or scope.run_name is None)
    if not checked_params and not checked_tags:
        return register

    def with_params_and_tags(tx) -> int:  # (one transaction: the model comes with them, or not at all)
        model_id = register(tx)
        edits.change_params(tx, model_id, checked_params)
        edits.change_tags(tx, model_id, add=checked_tags)
        return model_id

    return with_params_and_tags


def register_checkpoint(scope: Scope, model_name: str, step: int, path: str | os.PathLike) -> Command:
    check_name(model_name, "model_name")
    return commands.register_checkpoint(scope.write_run, model_name, check_step(step), normalize_path(path))


def metric_input(family: str, metric_name: str, value: Any, scores: Any = None, doc_ids: Any = None) -> MetricInput:
    """One metric, checked. Scores that disagree with the value are logged all the same
    (the caller may know better), with a warning pointed at the caller of the handle's
    method (``stacklevel``: here, the builder, the handle's method, its caller)."""
    check_name(family, "family")
    check_name(metric_name, "metric_name")
    number = check_value(value, f"value of {family}/{metric_name}")
    if scores is None:
        if doc_ids is not None:
            raise InvalidInputError("doc_ids name the documents of per-sample scores: give scores too")
        return MetricInput(family, metric_name, number)
    if hasattr(scores, "tolist") and not isinstance(scores, (list, tuple)):
        scores = scores.tolist()  # a numpy array: converted once, for both checks below
    text, n = check_scores(scores)
    keys = None if doc_ids is None else check_doc_keys(doc_ids, n)
    disagreement = scores_disagreement(number, scores)
    if disagreement is not None:
        warnings.warn(f"lightml: {family}/{metric_name}: {disagreement}", UserWarning, stacklevel=4)
    return MetricInput(family, metric_name, number, text, n, keys)


def log_model_metric(scope: Scope, model_name: str, family: str, metric_name: str, value: Any,
                     scores: Any = None, force: bool = False, doc_ids: Any = None,
                     settings: Any = None, repeat: Any = None) -> LogMetrics:
    check_name(model_name, "model_name")
    item = metric_input(family, metric_name, value, scores, doc_ids)
    return LogMetrics(ModelTarget(scope.write_run, model_name), [item], bool(force), single=True,
                      settings=settings_input(settings), repeat=check_repeat(repeat))


def log_checkpoint_metric(checkpoint_id: int, family: str, metric_name: str, value: Any,
                          scores: Any = None, force: bool = False, doc_ids: Any = None,
                          settings: Any = None, repeat: Any = None) -> LogMetrics:
    target = CheckpointTarget(check_id(checkpoint_id, "checkpoint_id"))
    item = metric_input(family, metric_name, value, scores, doc_ids)
    return LogMetrics(target, [item], bool(force), single=True, settings=settings_input(settings),
                      repeat=check_repeat(repeat))


def log_metrics(scope: Scope, model_name: str, metrics: Mapping[str, Mapping[str, Any]],
                force: bool = False, settings: Any = None, repeat: Any = None) -> LogMetrics:
    check_name(model_name, "model_name")
    repeat = check_repeat(repeat)
    if not isinstance(metrics, Mapping):
        raise InvalidInputError("metrics must be a dict {family: {metric_name: value}}")
    items = []
    for family, values in metrics.items():
        if not isinstance(values, Mapping):
            raise InvalidInputError(f"metrics[{family!r}] must be a dict {{metric_name: value}}")
        items.extend(_family_inputs(family, values))
    return LogMetrics(ModelTarget(scope.write_run, model_name), items, bool(force), single=False,
                      settings=settings_input(settings), repeat=repeat)


def log_metrics_flat(scope: Scope, model_name: str, metrics: Mapping[str, Any], family: str,
                     force: bool = False) -> LogMetrics:
    check_name(model_name, "model_name")
    if not isinstance(metrics, Mapping):
        raise InvalidInputError("metrics must be a dict {metric_name: value}")
    return LogMetrics(ModelTarget(scope.write_run, model_name), _family_inputs(family, metrics), bool(force),
                      single=False)


def settings_input(settings: Any) -> SettingsByFamily | None:
    """``settings=`` of a logging call: the same set for every metric it logs."""
    text = check_settings(settings)
    return None if text is None else {"": (text,)}


def _family_inputs(family: str, values: Mapping[str, Any]) -> list[MetricInput]:
    check_name(family, "family")
    return [
        # a finite Python float is the usual value: skip building check_value's message for it
        MetricInput(family, check_name(name, "metric_name"),
                    value if type(value) is float and -_INF < value < _INF
                    else check_value(value, f"value of {family}/{name}"))
        for name, value in values.items()
    ]


def delete_model(scope: Scope, model_name: str) -> Command:
    check_name(model_name, "model_name")
    return lifecycle.delete_model(scope.run_name, model_name, scope.registry_dir)


def restore_model(scope: Scope, model_name: str, run_name: str | None = None) -> Command:
    check_name(model_name, "model_name")
    if run_name is not None:
        check_name(run_name, "run_name")
    return lifecycle.restore_model(run_name if run_name is not None else scope.run_name, model_name,
                                   scope.registry_dir)


def set_notes(scope: Scope, model_name: str, notes: str | None) -> Command:
    check_name(model_name, "model_name")
    return edits.set_notes(scope.run_name, model_name, check_notes(notes))


def rename_model(scope: Scope, old_name: str, new_name: str) -> Command:
    check_name(old_name, "old_name")
    check_name(new_name, "new_name")
    return edits.rename_model(scope.run_name, old_name, new_name, scope.registry_dir)


def set_hidden(scope: Scope, model_name: str, hidden: bool) -> Command:
    check_name(model_name, "model_name")
    if not isinstance(hidden, bool):
        raise InvalidInputError(f"hidden must be True or False, got {hidden!r}")
    return edits.set_hidden(scope.run_name, model_name, hidden)


def set_params(scope: Scope, model_name: str, params: Any) -> Command:
    check_name(model_name, "model_name")
    return edits.set_params(scope.run_name, model_name, check_params(params, removals=True))


def add_tags(scope: Scope, model_name: str, tags: Any) -> Command:
    check_name(model_name, "model_name")
    return edits.change_model_tags(scope.run_name, model_name, check_tags(tags), [])


def remove_tags(scope: Scope, model_name: str, tags: Any) -> Command:
    check_name(model_name, "model_name")
    return edits.change_model_tags(scope.run_name, model_name, [], check_tags(tags))


def set_parent(scope: Scope, model_name: str, parent_name: str | None) -> Command:
    check_name(model_name, "model_name")
    if parent_name is not None:
        check_name(parent_name, "parent_name")
    return edits.set_parent(scope.run_name, model_name, parent_name)


def prune(scope: Scope, grace_seconds: float = PRUNE_GRACE_SECONDS) -> Command:
    return lifecycle.prune(scope.registry_dir, grace_seconds)


def add_schema_rules(rules: Iterable[tuple[str, str]]) -> Command:
    checked = [(check_name(f, "family"), check_name(m, "metric_name")) for f, m in rules]
    return commands.add_schema_rules(checked)


def save_dashboard_item(kind: Any, name: Any, spec: Any, item_id: Any = None) -> Command:
    kind = dashboard_items.check_kind(kind)
    text = dashboard_items.spec_text(kind, spec)
    return dashboard_items.save_item(kind, dashboard_items.check_item_name(name), text,
                                     None if item_id is None else dashboard_items.check_item_id(item_id))


def remove_dashboard_item(item_id: Any) -> Command:
    return dashboard_items.remove_item(dashboard_items.check_item_id(item_id))


def restore_dashboard_item(item_id: Any) -> Command:
    return dashboard_items.restore_item(dashboard_items.check_item_id(item_id))


def reorder_dashboard_items(kind: Any, item_ids: Any) -> Command:
    return dashboard_items.reorder_items(*dashboard_items.check_order(kind, item_ids))
