"""Commands that write: model-register, checkpoint-register, metric-log."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from lightml.cli.output import print_json
from lightml.errors import InvalidInputError, NotFoundError


def _handle(args: argparse.Namespace):
    from lightml.handle import LightMLHandle

    return LightMLHandle(_existing(args.db), args.run, origin="cli")


def _existing(db: str) -> str:
    # The CLI never creates a registry by accident (a typo in --db): `lightml init` does.
    if not Path(db).expanduser().is_file():
        raise FileNotFoundError(f"registry not found: {db} (create one with: lightml init)")
    return db


def cmd_model_register(args: argparse.Namespace) -> int:
    with _handle(args) as h:
        existed = h.model_exists(args.name)
        model_id = h.register_model(args.name, args.path, parent_name=args.parent)
    if args.json:
        print_json({"model_id": model_id, "created": not existed})
    else:
        print(f"{'Model already registered' if existed else 'Registered model'} {args.name!r} (id {model_id}) in run {args.run!r}")
    return 0


def cmd_checkpoint_register(args: argparse.Namespace) -> int:
    with _handle(args) as h:
        checkpoint_id = h.register_checkpoint(args.model, args.step, args.path)
    if args.json:
        print_json({"checkpoint_id": checkpoint_id})
    else:
        print(f"Checkpoint of {args.model!r} at step {args.step}: id {checkpoint_id}")
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
        source = Path(text[1:]).expanduser().read_text()
    try:
        return json.loads(source)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"--scores must be a JSON array of numbers ({exc})") from None


def cmd_metric_log(args: argparse.Namespace) -> int:
    value = _parse_value(args.value)
    scores = _parse_scores(args.scores)
    with _handle(args) as h:
        if args.step is None:
            outcome = h.log_model_metric(args.model, args.family, args.metric, value, scores=scores, force=args.force)
        else:
            checkpoint_id = h.find_checkpoint(args.model, args.step, args.path_hint)
            if checkpoint_id is None:
                raise NotFoundError(f"model {args.model!r} has no checkpoint at step {args.step}")
            outcome = h.log_checkpoint_metric(checkpoint_id, args.family, args.metric, value,
                                              scores=scores, force=args.force)
    if args.json:
        print_json({"outcome": outcome})
    else:
        where = args.model if args.step is None else f"{args.model}@{args.step}"
        print(f"{outcome}: {where} {args.family}/{args.metric} = {value:.4f}")
    return 0
