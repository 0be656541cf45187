"""Commands that edit models, each through one event: notes, rename, hide, unhide,
reparent, model-delete, restore, prune."""

from __future__ import annotations

import argparse
import sys

from lightml.cli.output import print_json


def _handle(args: argparse.Namespace):
    from lightml.handle import LightMLHandle

    # Edits never create the registry or a run; --run only says where the model is.
    return LightMLHandle(args.db, getattr(args, "run", None), origin="cli", create=False)


def _read(args: argparse.Namespace, query):
    from lightml.store import open_registry_readonly

    conn = open_registry_readonly(args.db)
    try:
        return query(conn)
    finally:
        conn.close()


def _model(args: argparse.Namespace) -> str:
    """--model, or on a terminal a pick from the registry's models."""
    if args.model:
        return args.model
    from lightml.cli.browse_cmds import model_names, run_id
    from lightml.cli.pick import choose

    return choose("--model", "model", _read(args, lambda conn: model_names(conn, run_id(conn, args.run))))


def _report(args: argparse.Namespace, changed: bool, done: str, unchanged: str, **extra) -> int:
    if args.json:
        print_json({"changed": changed, **extra})
    else:
        print(done if changed else unchanged)
    return 0


def cmd_notes(args: argparse.Namespace) -> int:
    name = _model(args)
    if args.set is None:
        notes = _read(args, lambda conn: _notes_of(conn, name, args.run))
        if args.json:
            print_json({"model": name, "notes": notes})
        else:
            print(notes if notes else f"(no notes for {name})")
        return 0
    with _handle(args) as h:
        changed = h.set_notes(name, args.set)
    what = f"Notes of {name!r} cleared." if not args.set else f"Notes of {name!r} set."
    return _report(args, changed, what, f"Notes of {name!r} unchanged.", model=name, notes=args.set or None)


def _notes_of(conn, name: str, run_name: str | None) -> str | None:
    from lightml import resolve
    from lightml.cli.browse_cmds import run_id

    mid = resolve.model_id(conn, name, run_id(conn, run_name), run_name)
    return conn.execute("SELECT notes FROM model WHERE id = ?", (mid,)).fetchone()[0]


def cmd_rename(args: argparse.Namespace) -> int:
    name = _model(args)
    with _handle(args) as h:
        changed = h.rename_model(name, args.to)
    from shlex import quote

    return _report(args, changed, f"Renamed {name!r} to {args.to!r} (undo: lightml rename --db {quote(str(args.db))} "
                   f"--model {quote(args.to)} --to {quote(name)}).", f"{name!r} already has that name.", model=args.to, previous=name)


def _set_hidden(args: argparse.Namespace, hidden: bool) -> int:
    name = _model(args)
    with _handle(args) as h:
        changed = h.set_hidden(name, hidden)
    state = "hidden" if hidden else "shown"
    return _report(args, changed, f"Model {name!r} {state}.", f"Model {name!r} was already {state}.",
                   model=name, hidden=hidden)


def cmd_hide(args: argparse.Namespace) -> int:
    return _set_hidden(args, True)


def cmd_unhide(args: argparse.Namespace) -> int:
    return _set_hidden(args, False)


def cmd_reparent(args: argparse.Namespace) -> int:
    name = _model(args)
    with _handle(args) as h:
        changed = h.set_parent(name, None if args.none else args.parent)
    done = f"{name!r} has no parent now." if args.none else f"Parent of {name!r} is now {args.parent!r}."
    return _report(args, changed, done, f"{name!r} already has that parent.", model=name,
                   parent=None if args.none else args.parent)


def cmd_model_delete(args: argparse.Namespace) -> int:
    name = _model(args)
    with _handle(args) as h:
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
    with _handle(args) as h:
        result = h.prune(dry_run=args.dry_run)
    if args.json:
        print_json(result.to_dict())
        return 0
    if not result.models and not result.runs:
        print("Nothing to prune.")
        return 0
    verb = "Would remove" if result.dry_run else "Removed"
    for model, run in result.models:
        print(f"  {verb} model {model!r} (run {run!r}): no metrics, checkpoints or children")
    for run in result.runs:
        print(f"  {verb} empty run {run!r}")
    if not result.dry_run:
        print("Undo one with: lightml restore --model NAME (its run comes back with it)")
    return 0
