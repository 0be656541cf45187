"""Commands that edit models, each through one event: notes, rename, hide, unhide,
reparent, model-delete, restore, prune."""

from __future__ import annotations

import argparse
import sys

from lightml.cli.output import print_json


def _handle(args: argparse.Namespace, model=None):
    """A handle on the model's run (``model``, a resolved ``ModelRef``), else on --run."""
    from lightml.handle import LightMLHandle

    # Edits never create the registry or a run; the run only says where the model is.
    run_name = model.run_name if model is not None else getattr(args, "run", None)
    return LightMLHandle(args.db, run_name, origin="cli", create=False)


def _read(args: argparse.Namespace, query):
    from lightml.read.sql import reading

    with reading(args.db) as conn:
        return query(conn)


def _model(args: argparse.Namespace):
    """The model --model names (any spelling the read commands accept: a name, ``RUN/MODEL``
    or ``MODEL@RUN``; --run preferred), or on a terminal a pick from all the registry's
    models (hidden ones too: unhide needs them), as a ``resolve.ModelRef``."""
    from lightml.cli.browse_cmds import model_names, run_id
    from lightml.read.resolve import find_model

    def resolve(conn):
        spelling = args.model
        if not spelling:
            from lightml.cli.pick import choose

            spelling = choose("--model", "model", model_names(conn, run_id(conn, args.run)))
        return find_model(conn, spelling, args.run)
    return _read(args, resolve)


def _report(args: argparse.Namespace, changed: bool, done: str, unchanged: str, **extra) -> int:
    if args.json:
        print_json({"changed": changed, **extra})
    else:
        print(done if changed else unchanged)
    return 0


def cmd_notes(args: argparse.Namespace) -> int:
    model = _model(args)
    name = model.model_name
    if args.set is None:
        from lightml.read.catalog import model_notes

        notes = _read(args, lambda conn: model_notes(conn, model.id, name))
        if args.json:
            print_json({"model": name, "notes": notes})
        else:
            print(notes if notes else f"(no notes for {name})")
        return 0
    with _handle(args, model) as h:
        changed = h.set_notes(name, args.set)
    what = f"Notes of {name!r} cleared." if not args.set else f"Notes of {name!r} set."
    return _report(args, changed, what, f"Notes of {name!r} unchanged.", model=name, notes=args.set or None)


def cmd_rename(args: argparse.Namespace) -> int:
    model = _model(args)
    name = model.model_name
    # Left out: asked for on a terminal, as LightML 1.4 did (--new is its spelling).
    if args.to is not None:
        new_name = args.to
    else:
        from lightml.cli.pick import ask_text

        new_name = ask_text("--to (or --new)", f"New name for {name!r}")
    with _handle(args, model) as h:
        changed = h.rename_model(name, new_name)
    from shlex import quote

    in_run = f" --run {quote(model.run_name)}" if model.run_name is not None else ""
    return _report(args, changed, f"Renamed {name!r} to {new_name!r} (undo: lightml rename --db {quote(args.db_shown)}"
                   f"{in_run} --model {quote(new_name)} --to {quote(name)}).", f"{name!r} already has that name.",
                   model=new_name, previous=name)


def _set_hidden(args: argparse.Namespace, hidden: bool) -> int:
    model = _model(args)
    name = model.model_name
    with _handle(args, model) as h:
        changed = h.set_hidden(name, hidden)
    state = "hidden" if hidden else "shown"
    return _report(args, changed, f"Model {name!r} {state}.", f"Model {name!r} was already {state}.",
                   model=name, hidden=hidden)


def cmd_hide(args: argparse.Namespace) -> int:
    return _set_hidden(args, True)


def cmd_unhide(args: argparse.Namespace) -> int:
    return _set_hidden(args, False)


def cmd_reparent(args: argparse.Namespace) -> int:
    model = _model(args)
    name = model.model_name
    with _handle(args, model) as h:
        changed = h.set_parent(name, None if args.none else args.parent)
    done = f"{name!r} has no parent now." if args.none else f"Parent of {name!r} is now {args.parent!r}."
    return _report(args, changed, done, f"{name!r} already has that parent.", model=name,
                   parent=None if args.none else args.parent)


def cmd_model_delete(args: argparse.Namespace) -> int:
    model = _model(args)
    name = model.model_name
    with _handle(args, model) as h:
        if not args.yes and sys.stdin.isatty():
            sys.stderr.write(f"Delete model {name!r} with its checkpoints and metrics? "
                             "(undo with lightml restore) [y/N]: ")
            sys.stderr.flush()
            if sys.stdin.readline().strip().lower() not in ("y", "yes"):
                print("Nothing deleted.")
                return 1
        result = h.delete_model(name)
    if args.json:
        print_json({"model": result.model_name, "checkpoints_deleted": result.checkpoints_deleted,
                    "metrics_deleted": result.metrics_deleted, "seq": result.seq})
    else:
        print(result)
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    from lightml.handle import LightMLHandle

    # No run on the handle: --run may name a run prune removed, which the restore brings back.
    with LightMLHandle(args.db, None, origin="cli", create=False) as h:
        model_id = h.restore_model(args.model, run_name=args.run)
    if args.json:
        print_json({"model": args.model, "model_id": model_id})
    else:
        print(f"Restored model {args.model!r} (id {model_id}) with its checkpoints, metrics and scores.")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from lightml.defaults import PRUNE_GRACE_SECONDS
    from lightml.write.lifecycle import check_grace

    grace = check_grace(PRUNE_GRACE_SECONDS if args.grace is None else args.grace)
    with _handle(args) as h:
        result = h.prune(dry_run=args.dry_run, grace_seconds=grace)
    if args.json:
        print_json(result.to_dict())
        return 0
    verb = "Would remove" if result.dry_run else "Removed"
    for model, run in result.models:
        print(f"  {verb} model {model!r} (run {run!r}): no metrics, checkpoints or children")
    for run in result.runs:
        print(f"  {verb} empty run {run!r}")
    if not result.models and not result.runs:
        print("Nothing to prune.")
    if result.too_new:
        print(_kept_too_new(result.too_new, grace))
    if result.models and not result.dry_run:
        print("Undo one with: lightml restore --model NAME (its run comes back with it)")
    return 0


def _kept_too_new(models: list[tuple[str, str | None]], grace: float) -> str:
    """The line about the empty models prune kept because an eval may still be logging them."""
    names = ", ".join(repr(model) for model, _ in models[:5]) + (", ..." if len(models) > 5 else "")
    count = f"{len(models)} model{'s' if len(models) != 1 else ''}"
    return (f"  Kept {count} registered less than {_duration(grace)} ago ({names}): an eval may still be "
            f"logging {'them' if len(models) != 1 else 'it'} (--grace 0 prunes them too)")


def _duration(seconds: float) -> str:
    """3600 -> '1 h', 90 -> '90 s', 86400 -> '24 h'."""
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g} h"
    return f"{seconds:g} s"


def key_values(pairs: list[str], option: str) -> dict:
    """``KEY=VALUE`` arguments -> a dict: the value as JSON when it reads as a number, true /
    false or a quoted string (``3e-5``, ``true``, ``"7"``), else as the text it is."""
    import json

    from lightml.errors import InvalidInputError

    found = {}
    for pair in pairs:
        key, equals, text = pair.partition("=")
        if not equals or not key:
            raise InvalidInputError(f"{option} takes KEY=VALUE, got {pair!r}")
        try:  # (NaN and Infinity are not JSON numbers: text, as any other word)
            value = json.loads(text, parse_constant=_not_a_number)
        except ValueError:
            value = text
        found[key] = value if isinstance(value, (str, int, float, bool)) else text
    return found


def _not_a_number(word: str):
    raise ValueError(word)


def cmd_params(args: argparse.Namespace) -> int:
    from lightml.errors import InvalidInputError
    from lightml.write.validation import check_params

    setting = key_values(args.set, "--set")
    both = sorted(set(setting) & set(args.unset))
    if both:
        raise InvalidInputError(f"--set and --unset both name {', '.join(both)}: say one")
    updates = check_params({**setting, **{key: None for key in args.unset}}, removals=True)  # (before any lookup)
    model = _model(args)
    name = model.model_name
    if not updates:
        from lightml.read.params import current_params

        values = _read(args, lambda conn: current_params(conn, model.id))
        if args.json:
            print_json({"model": name, "params": values})
        else:
            print("\n".join(f"{key} = {json_text(value)}" for key, value in values.items())
                  if values else f"(no parameters for {name})")
        return 0
    with _handle(args, model) as h:
        changed = h.set_params(name, updates)
        values = h.get_params(name)
    return _report(args, changed, f"Parameters of {name!r} set.", f"Parameters of {name!r} unchanged.",
                   model=name, params=values)


def cmd_tag(args: argparse.Namespace) -> int:
    from lightml.errors import InvalidInputError
    from lightml.write.validation import check_tags

    add, remove = check_tags(args.add), check_tags(args.remove)  # (both checked before either is written)
    both = sorted(set(add) & set(remove))
    if both:
        raise InvalidInputError(f"--add and --remove both name {', '.join(both)}: say one")
    model = _model(args)
    name = model.model_name
    if not args.add and not args.remove:
        from lightml.read.params import current_tags

        tags = _read(args, lambda conn: current_tags(conn, model.id))
        if args.json:
            print_json({"model": name, "tags": tags})
        else:
            print(", ".join(tags) if tags else f"(no tags for {name})")
        return 0
    with _handle(args, model) as h:
        changed = h.add_tags(name, args.add) if args.add else False
        changed = (h.remove_tags(name, args.remove) if args.remove else False) or changed
        tags = h.get_tags(name)
    return _report(args, changed, f"Tags of {name!r}: {', '.join(tags) or 'none'}.",
                   f"Tags of {name!r} unchanged.", model=name, tags=tags)


def json_text(value) -> str:
    import json

    return json.dumps(value, ensure_ascii=False)
