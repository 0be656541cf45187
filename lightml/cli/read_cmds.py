"""Commands that only read: exists, history."""

from __future__ import annotations

import argparse
from pathlib import Path

from lightml.cli.output import format_value, print_json, print_table


def _registry(db: str, run: str | None):
    from lightml.handle import LightMLHandle

    # Read commands create nothing: neither the file nor the run.
    return LightMLHandle(db, run, origin="cli", create=False)


def _named_model(args: argparse.Namespace) -> tuple[str, str | None]:
    """(model name, run name) that --model and --run mean, by ``resolve.find_model``'s rule
    (RUN/MODEL, MODEL@RUN, --run preferred). A name no live model has is passed on as given:
    the history of a deleted model is still read from the log."""
    from lightml.errors import NotFoundError
    from lightml.read.resolve import find_model, run_id
    from lightml.read.sql import reading

    with reading(args.db) as conn:
        try:
            ref = find_model(conn, args.model, args.run)
        except NotFoundError:
            if args.run is not None and run_id(conn, args.run) is None:
                raise  # an unknown --run is a typo, not a deleted model
            return args.model, args.run
    return ref.model_name, ref.run_name


def cmd_exists(args: argparse.Namespace) -> int:
    """LightML 1.2's output: one "✓ exists: scope" line, or a listing for globs."""
    from lightml.read.queries import glob_to_sql

    patterns = [p for p in (args.model, args.family, args.metric) if p is not None]
    is_listing = any(glob_to_sql(p)[0] == "LIKE" for p in patterns) or (args.family is None) != (args.metric is None)
    with _registry(args.db, args.run) as registry:
        if is_listing:
            matches = registry.search(args.model, args.family, args.metric)
        elif args.family is not None:
            scope = f"model={args.model!r}, family={args.family!r}, metric={args.metric!r}"
            exists = registry.run_metric_exists if args.run is not None else registry.metric_exists
            found = exists(args.model, args.family, args.metric)
        else:
            scope = f"model={args.model!r}"
            # search() of a handle opened on a run looks in that run only
            found = bool(registry.search(args.model)) if args.run is not None else registry.model_exists(args.model)
    if not is_listing:
        if args.run is not None:
            scope = scope.replace(", ", f", run={args.run!r}, ", 1) if "," in scope else f"{scope}, run={args.run!r}"
        if args.json:
            print_json({"exists": found, "model": args.model, "family": args.family, "metric": args.metric,
                        "run": args.run})
        else:
            print(f"  ✓ exists: {scope}" if found else f"  ✗ not found: {scope}")
        return 0 if found else 1
    if args.json:
        print_json({"exists": bool(matches), "matches": matches})
        return 0 if matches else 1
    if not matches:
        print("  ✗ no matches")
        return 1
    for m in matches:
        if "family" in m:
            print(f"  ✓ {m['model']}  {m['family']}/{m['metric']} = {format_value(m['value'])}  (run: {m['run']})")
        else:
            print(f"  ✓ {m['model']}")
    print(f"\n  {len(matches)} match(es)")
    return 0


def cmd_history(args: argparse.Namespace) -> int:
    from lightml.errors import InvalidInputError

    if (args.family is None) != (args.metric is None):
        raise InvalidInputError("--family and --metric go together (leave both out for the model's whole history)")
    if args.family is None:
        return _model_history(args)
    model, run = _named_model(args)
    with _registry(args.db, run) as registry:
        entries = registry.metric_history(model, args.family, args.metric, args.step)
    what = f"{args.model} {args.family}/{args.metric}" + (f" at step {args.step}" if args.step is not None else "")
    if not entries:  # a typo in the family or metric, most likely
        from lightml.errors import NotFoundError

        raise NotFoundError(f"no history for {what} (check the model, family, metric, --step and --run)")
    if args.json:
        print_json(entries)
        return 0
    print(f"History of {what}:")
    merged = any(e.get("merged_from") for e in entries)  # values brought in by merge: say from where
    repeated = any(e.get("repeat") for e in entries)  # values logged as repeats: which one
    print_table(
        ["seq", "at (UTC)", "action"] + (["repeat"] if repeated else []) + ["value", "previous", "actor"]
        + (["from"] if merged else []),
        [[e["seq"], e["at"].replace("T", " ").rstrip("Z"), e["action"]] + ([e.get("repeat") or ""] if repeated else [])
         + [format_value(e["value"]), format_value(e["previous_value"]), e["actor"]]
         + ([f"merged from {Path(e['merged_from']).name}" if e.get("merged_from") else ""] if merged else [])
         for e in entries],
    )
    return 0


def _model_history(args: argparse.Namespace) -> int:
    if args.step is not None:
        from lightml.errors import InvalidInputError

        raise InvalidInputError("--step needs --family and --metric")
    model, run = _named_model(args)
    with _registry(args.db, run) as registry:
        entries = registry.model_history(model)
    if args.json:
        print_json(entries)
        return 0
    print(f"History of model {args.model}:")
    print_table(["seq", "at (UTC)", "event", "what", "actor"],
                [[e["seq"], e["at"].replace("T", " ").rstrip("Z"), e["type"], e["what"], e["actor"]] for e in entries])
    return 0
