"""``lightml demo``."""

from __future__ import annotations

import argparse


def cmd_demo(args: argparse.Namespace) -> int:
    from lightml.demo import NEXT_STEPS, build_demo

    db = build_demo(args.path, overwrite=args.overwrite)
    print(NEXT_STEPS.format(db=db, db_dir=db.parent))
    return 0
