"""Commands that only read: exists, history."""

from __future__ import annotations

import argparse

from lightml.cli.output import format_value, print_json, print_table


def _registry(db: str, run: str | None):
    from lightml.core import Registry

    # Read commands create nothing: neither the file nor the run.
    return Registry(db, run, create=False, origin="cli")


def cmd_exists(args: argparse.Namespace) -> int:
    from lightml.queries import glob_to_sql

    registry = _registry(args.db, args.run)
    try:
        wants_metrics = args.family is not None or args.metric is not None
        is_glob = any(glob_to_sql(p)[0] == "LIKE" for p in (args.model, args.family, args.metric) if p)
        if not wants_metrics and not is_glob:
            found = registry.model_exists(args.model)
            if args.json:
                print_json({"exists": found, "model": args.model})
            else:
                print(f"{'✓' if found else '✗'} model {args.model!r} {'exists' if found else 'not found'}")
            return 0 if found else 1
        matches = registry.search(args.model, args.family, args.metric)
    finally:
        registry.close()
    if args.json:
        print_json({"exists": bool(matches), "matches": matches})
        return 0 if matches else 1
    for m in matches:
        print(f"✓ {m['model_name']} {m['family']}/{m['metric_name']} = {format_value(m['value'])} (run: {m['run_name']})")
    print(f"{len(matches)} match{'es' if len(matches) != 1 else ''}")
    return 0 if matches else 1


def cmd_history(args: argparse.Namespace) -> int:
    registry = _registry(args.db, args.run)
    try:
        entries = registry.metric_history(args.model, args.family, args.metric, args.step)
    finally:
        registry.close()
    if args.json:
        print_json(entries)
        return 0
    what = f"{args.model} {args.family}/{args.metric}" + (f" at step {args.step}" if args.step is not None else "")
    if not entries:
        print(f"No history for {what}")
        return 0
    print(f"History of {what}:")
    print_table(
        ["seq", "at (UTC)", "action", "value", "previous", "actor"],
        [[e["seq"], e["at"].replace("T", " ").rstrip("Z"), e["action"], format_value(e["value"]),
          format_value(e["previous_value"]), e["actor"]] for e in entries],
    )
    return 0
