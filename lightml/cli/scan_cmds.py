"""``lightml scan`` and ``lightml watch``."""

from __future__ import annotations

import argparse
import sys
import time

from lightml.cli.dbpath import existing_registry
from lightml.cli.output import print_json


def _check(args: argparse.Namespace) -> None:
    """Everything that can be refused, before anything is written (or watched)."""
    from lightml.ingest.scan import check_options, check_root

    existing_registry(args.db)  # the run, though, is created if new
    check_options(args.format, args.name_from, args.family_template)
    check_root(args.path)


def _scan(args: argparse.Namespace, progress=None):
    from lightml.defaults import DEFAULT_RUN
    from lightml.ingest.scan import scan_and_import

    # No --run: LightML 1.4's default run, created by the first import.
    return scan_and_import(args.db, args.run or DEFAULT_RUN, args.path, format=args.format, model_prefix=args.prefix,
                           force=args.force, family_template=args.family_template, name_from=args.name_from,
                           progress=progress, workers=args.workers)


def _report_skips(stats) -> None:
    for skip in stats.skips:
        print(f"lightml scan: skipped {skip.path}: {skip.reason}", file=sys.stderr)


def cmd_scan(args: argparse.Namespace) -> int:
    from lightml.ingest.scan import terminal_progress

    _check(args)
    stats = _scan(args, terminal_progress())
    if args.json:
        print_json(stats.to_dict())
        return 0
    _report_skips(stats)
    print("\n  Scan complete")
    print(f"  Models registered : {stats.models_registered}")
    print(f"  Metrics logged    : {stats.metrics_logged}")
    print(f"  Scores imported   : {stats.scores_imported}")
    print(f"  Files read        : {stats.files_read}")
    if stats.files_unchanged:
        print(f"  Unchanged files   : {stats.files_unchanged} (already imported)")
    if stats.metrics_skipped:
        print(f"  Metrics skipped   : {stats.metrics_skipped} (already in the registry; --force overwrites)")
    if stats.skipped_dirs:
        print(f"  Skipped dirs      : {len(stats.skipped_dirs)}")
    if stats.skips:
        print(f"  Skipped           : {len(stats.skips)} (reasons on stderr)")
    for note in stats.notes:
        print(f"  Note: {note}")
    print()
    return 0


def cmd_watch(args: argparse.Namespace) -> int:
    from lightml.errors import InvalidInputError

    if args.interval <= 0:
        raise InvalidInputError(f"--interval must be positive, got {args.interval}")
    _check(args)
    print(f"Watching {args.path} every {args.interval:g} s (Ctrl-C stops)", flush=True)
    seen_skips: set[tuple[str, str]] = set()
    try:
        while True:
            existing_registry(args.db)  # it may have been moved away while we watched
            stats = _scan(args)
            stamp = time.strftime("%H:%M:%S")
            for item in stats.imports:
                print(f"{stamp}  imported {item.model}: {item.metrics_logged} metrics, "
                      f"{item.scores_imported} with per-sample scores ({item.files} files)", flush=True)
            for skip in stats.skips:  # each problem once, not every round
                if (skip.path, skip.reason) not in seen_skips:
                    seen_skips.add((skip.path, skip.reason))
                    print(f"lightml watch: skipped {skip.path}: {skip.reason}", file=sys.stderr, flush=True)
            time.sleep(args.interval)
    except KeyboardInterrupt:
        print("Stopped watching.", flush=True)
        return 0
