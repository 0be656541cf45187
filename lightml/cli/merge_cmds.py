"""``lightml merge``: bring other registries into this one."""

from __future__ import annotations

import argparse

from lightml.cli.output import print_json


def cmd_merge(args: argparse.Namespace) -> int:
    from lightml.ingest.merge import merge

    result = merge(args.db, args.source, force=args.force)
    if args.json:
        print_json(result.to_dict())
    else:
        print(f"Merged {', '.join(result.sources)} into {args.db_shown}:")
        print(result)
    return 0
