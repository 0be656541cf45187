"""Commands that write: model-register, checkpoint-register, metric-log."""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path

from lightml.cli.dbpath import existing_registry
from lightml.cli.output import print_json
from lightml.defaults import DEFAULT_RUN
from lightml.errors import InvalidInputError, NotFoundError
from lightml.results import METRIC_INSERTED, METRIC_SKIPPED, METRIC_UPDATED, OUTCOME_NAMES
from lightml.write.validation import check_id, check_step, check_value

# A --scores file larger than this is refused before it is read: per-sample scores of the
# largest benchmarks (a million samples) take a few MB of JSON; a bigger file is a mistake
# (a results folder, /dev/zero) that would fill the memory.
MAX_SCORES_FILE_BYTES = 64 * 1024 * 1024


def _handle(args: argparse.Namespace):
    from lightml.handle import LightMLHandle

    # Only model-register creates a named run: a typo in --run elsewhere must not leave one
    # behind. Without --run the handle writes into DEFAULT_RUN, created by the first write.
    return LightMLHandle(existing_registry(args.db), args.run, origin="cli", create=False)


def cmd_model_register(args: argparse.Namespace) -> int:
    from lightml.handle import LightMLHandle

    from lightml.cli.edit_cmds import key_values

    params = key_values(args.param, "--param")
    # The run is created with the model, in one transaction: bad input leaves no empty run.
    with LightMLHandle(existing_registry(args.db), None, origin="cli", create=False) as h:
        model_id = h.register_model(args.name, args.path, parent_name=args.parent,
                                    run_name=args.run if args.run is not None else DEFAULT_RUN,
                                    params=params or None, tags=args.tag or None)
    if args.json:
        print_json({"model_id": model_id})
    else:
        print(f"Model registered (id {model_id}).")
    return 0


def cmd_checkpoint_register(args: argparse.Namespace) -> int:
    step = check_step(args.step)  # before the registry is opened: a bad step touches nothing
    with _handle(args) as h:
        checkpoint_id = h.register_checkpoint(args.model, step, args.path)
    if args.json:
        print_json({"checkpoint_id": checkpoint_id})
    else:
        print(f"Checkpoint registered (id {checkpoint_id}).")
    return 0


def _parse_value(text: str) -> float:
    """--value as a finite float: a number beyond the float range (1e999, a 400-digit
    integer, which float() reads as inf) is refused, not stored as infinity."""
    try:
        number = float(text)
    except ValueError:
        raise InvalidInputError(f"--value must be a number, got {_shown(text)}") from None
    if math.isinf(number) and "inf" not in text.lower():
        raise InvalidInputError(f"--value {_shown(text)} is beyond the float range (about ±1.8e308)")
    return check_value(number, "--value")


def _shown(text: str, width: int = 40) -> str:
    """Text for an error message, cut when it is long (a 400-digit number fills the screen)."""
    return repr(text) if len(text) <= width else f"{text[:width]!r}... ({len(text)} characters)"


def _parse_scores(text: str | None):
    """--scores: inline JSON, or @FILE. The JSON is only parsed here; the handle checks that
    it is a list of finite numbers."""
    if text is None:
        return None
    source = _read_scores_file(text[1:]) if text.startswith("@") else text
    try:
        return json.loads(source)
    except RecursionError:
        raise InvalidInputError("--scores is nested too deeply: scores must be a flat JSON array of numbers") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of more than 4300 digits
        raise InvalidInputError(f"--scores must be a JSON array of numbers ({exc})") from None


def _read_scores_file(name: str) -> str:
    if not name.strip():
        raise InvalidInputError("--scores @FILE needs a file name after the @")
    try:
        with open(Path(name).expanduser(), "rb") as file:
            # A regular file is refused by its size, unread; a device or pipe has none: read one byte too many.
            too_big = os.fstat(file.fileno()).st_size > MAX_SCORES_FILE_BYTES
            data = b"" if too_big else file.read(MAX_SCORES_FILE_BYTES + 1)
        if too_big or len(data) > MAX_SCORES_FILE_BYTES:
            raise InvalidInputError(f"--scores @{name}: the file is larger than "
                                    f"{MAX_SCORES_FILE_BYTES // (1024 * 1024)} MB; per-sample scores are far smaller")
        return data.decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise InvalidInputError(f"--scores @{name}: cannot read the file ({reason})") from None


def cmd_metric_log(args: argparse.Namespace) -> int:
    # Every number is checked before the registry is opened: bad input touches nothing.
    value = _parse_value(args.value)
    step = None if args.step is None else check_step(args.step)
    checkpoint = None if args.checkpoint is None else check_id(args.checkpoint, "--checkpoint")
    scores = _parse_scores(args.scores)
    if args.model is None and args.checkpoint is None:
        raise InvalidInputError("say what the metric belongs to: --model M [--step N] or --checkpoint ID")
    if checkpoint is not None and (step is not None or args.path_hint is not None):
        raise InvalidInputError("--step and --path-hint pick a checkpoint of --model; --checkpoint names one already")
    with _handle(args) as h:
        checkpoint_id = checkpoint
        if checkpoint_id is None and step is not None:
            checkpoint_id = h.find_checkpoint(args.model, step, args.path_hint)
            if checkpoint_id is None:
                hint = f" whose path contains {args.path_hint!r}" if args.path_hint is not None else ""
                raise NotFoundError(f"model {args.model!r} has no checkpoint at step {step}{hint}")
        if checkpoint_id is None:
            outcome = h.log_model_metric(args.model, args.family, args.metric, value, scores=scores, force=args.force,
                                         repeat=args.repeat)
        else:
            outcome = h.log_checkpoint_metric(checkpoint_id, args.family, args.metric, value,
                                              scores=scores, force=args.force, repeat=args.repeat)
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
