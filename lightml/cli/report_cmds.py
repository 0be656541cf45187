"""``lightml export``."""

from __future__ import annotations

import argparse

from lightml.cli.output import print_json


def cmd_export(args: argparse.Namespace) -> int:
    from lightml.report.export import export_excel

    path = export_excel(args.db, args.output, include_hidden=args.include_hidden, where=args.where)
    if args.json:
        print_json({"output": str(path.resolve())})
    else:
        print(f"Report written to {path}")
    return 0
