"""Commands that write: model-register, checkpoint-register, metric-log."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lightml.cli.dbpath import existing_registry
from lightml.cli.output import print_json
from lightml.errors import InvalidInputError, NotFoundError
from lightml.metrics import METRIC_INSERTED, METRIC_SKIPPED, METRIC_UPDATED, OUTCOME_NAMES


def _handle(args: argparse.Namespace):
    from lightml.handle import LightMLHandle

    # Only model-register creates a run: a typo in --run elsewhere must not leave one behind.
    return LightMLHandle(existing_registry(args.db), args.run, origin="cli", create=False)


def cmd_model_register(args: argparse.Namespace) -> int:
    from lightml.handle import LightMLHandle

    # The run is created with the model, in one transaction: bad input leaves no empty run.
    with LightMLHandle(existing_registry(args.db), None, origin="cli", create=False) as h:
        model_id = h.register_model(args.name, args.path, parent_name=args.parent, run_name=args.run)
    if args.json:
        print_json({"model_id": model_id})
    else:
        print(f"Model registered (id {model_id}).")
    return 0


def cmd_checkpoint_register(args: argparse.Namespace) -> int:
    with _handle(args) as h:
        checkpoint_id = h.register_checkpoint(args.model, args.step, args.path)
    if args.json:
        print_json({"checkpoint_id": checkpoint_id})
    else:
        print(f"Checkpoint registered (id {checkpoint_id}).")
    return 0


def _parse_value(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise InvalidInputError(f"--value must be a number, got {text!r}") from None


def _parse_scores(text: str | None):
    if text is None:
        return None
    source = text
    if text.startswith("@"):
        if not text[1:].strip():
            raise InvalidInputError("--scores @FILE needs a file name after the @")
        try:
            source = Path(text[1:]).expanduser().read_text()
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise InvalidInputError(f"--scores {text}: cannot read the file ({reason})") from None
    try:
        return json.loads(source)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"--scores must be a JSON array of numbers ({exc})") from None


def cmd_metric_log(args: argparse.Namespace) -> int:
    value = _parse_value(args.value)
    scores = _parse_scores(args.scores)
    if args.model is None and args.checkpoint is None:
        raise InvalidInputError("say what the metric belongs to: --model M [--step N] or --checkpoint ID")
    if args.checkpoint is not None and (args.step is not None or args.path_hint is not None):
        raise InvalidInputError("--step and --path-hint pick a checkpoint of --model; --checkpoint names one already")
    with _handle(args) as h:
        checkpoint_id = args.checkpoint
        if checkpoint_id is None and args.step is not None:
            checkpoint_id = h.find_checkpoint(args.model, args.step, args.path_hint)
            if checkpoint_id is None:
                hint = f" whose path contains {args.path_hint!r}" if args.path_hint is not None else ""
                raise NotFoundError(f"model {args.model!r} has no checkpoint at step {args.step}{hint}")
        if checkpoint_id is None:
            outcome = h.log_model_metric(args.model, args.family, args.metric, value, scores=scores, force=args.force)
        else:
            outcome = h.log_checkpoint_metric(checkpoint_id, args.family, args.metric, value,
                                              scores=scores, force=args.force)
    if args.json:
        print_json({"outcome": OUTCOME_NAMES[outcome]})
    else:
        print(MESSAGES[outcome])
    return 0


# LightML 1.2's messages.
MESSAGES = {
    METRIC_INSERTED: "Metric logged.",
    METRIC_UPDATED: "Metric updated (force).",
    METRIC_SKIPPED: "Metric already exists, skipped. Use --force to overwrite.",
}
