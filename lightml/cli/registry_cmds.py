"""Commands on a whole registry: init, replay, verify, migrate, backup, version."""

from __future__ import annotations

import argparse
import json
import sys
from shlex import quote
from pathlib import Path

from lightml.cli.output import print_json
from lightml.errors import InvalidInputError


def cmd_init(args: argparse.Namespace) -> int:
    from lightml.registry import init_registry

    schema = None
    if args.schema:
        try:
            schema = json.loads(Path(args.schema).read_text())
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"--schema {args.schema} is not valid JSON ({exc})") from None
        except RecursionError:
            raise InvalidInputError(f"--schema {args.schema} is nested too deeply to be a schema") from None
        except UnicodeDecodeError as exc:
            raise InvalidInputError(f"--schema {args.schema} is not UTF-8 text ({exc.reason})") from None
    if args.url is not None:
        if args.path is not None or args.name is not None:
            raise InvalidInputError("give --db (a postgresql:// URL or a .db file), or --path and --name, not both")
        from lightml.log.engine import engine_for, shown

        if engine_for(args.url).dialect != "sqlite":
            init_registry(args.url, overwrite=args.overwrite, metrics_schema=schema)
            print(f"Registry ready at: {shown(args.url)}")
            return 0
        file = Path(args.url).expanduser()  # --db main.db: the same as --path . --name main
        if file.suffix != ".db":
            raise InvalidInputError(f"--db {args.url}: give a postgresql:// URL or a file name ending in .db")
        args.path, args.name = str(file.parent), file.stem
    if args.path is None or args.name is None:
        raise InvalidInputError("give --path and --name (the file is <path>/<name>.db), "
                                "or --db postgresql://... for a PostgreSQL registry")
    db = Path(args.path).expanduser() / f"{args.name}.db"
    existed = db.exists()
    path = init_registry(args.path, args.name, overwrite=args.overwrite, metrics_schema=schema)
    if existed and not args.overwrite:
        print(f"Registry already exists: {path} (left as it is; --overwrite replaces it)")
    else:
        print(f"Registry created at: {path}")
    return 0


def cmd_copy(args: argparse.Namespace) -> int:
    from lightml.log.copy import copy_registry

    result = copy_registry(args.source, args.destination)
    if args.json:
        print_json({"from": str(result.source), "to": str(result.destination), "events": result.events,
                    "last_seq": result.last_seq})
    else:
        print(f"Copied {result.events} events from {result.source} to {result.destination} "
              f"(check it: lightml verify --db {quote(str(result.destination))})")
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from lightml.log.replay import replay

    result = replay(args.db, args.out, as_of=args.as_of, upto=args.upto, force=args.force)
    if args.json:
        print_json({"path": str(result.path), "events_applied": result.events_applied, "last_seq": result.last_seq})
    elif args.out:
        upto = f"up to event #{result.last_seq}" if result.last_seq is not None else "the log up to then is empty"
        print(f"Wrote {result.path}: {result.events_applied} events replayed ({upto})")
    else:
        print(f"Rebuilt the read tables of {result.path} from {result.events_applied} events")
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    from lightml.log.replay import verify
    from lightml.read.sql import reading

    with reading(args.db):  # a registry of an earlier build first gets the tables it lacks, as on any read
        pass
    result = verify(args.db)
    if args.json:
        print_json({"ok": result.ok, "events": result.events, "tables": result.tables_checked,
                    "differences": result.differences})
    elif result.ok:
        print(f"OK: {len(result.tables_checked)} tables match the {result.events} events of the log")
    else:
        print(f"MISMATCH: {len(result.differences)} table(s) differ from the log", file=sys.stderr)
        for table, lines in result.differences.items():
            for line in lines:
                print(f"  {table}: {line}", file=sys.stderr)
    return 0 if result.ok else 1


def cmd_migrate(args: argparse.Namespace) -> int:
    from lightml.ingest.migrate import migrate

    result = migrate(args.db)
    if args.json:
        print_json({"migrated": result.migrated, "message": result.message,
                    "backup": str(result.backup) if result.backup else None,
                    "counts": result.counts, "warnings": result.warnings})
        return 0
    if not result.migrated:
        print(result.message)
        return 0
    counts = ", ".join(f"{n} {what}" for what, n in result.counts.items())
    print(f"Migrated {args.db_shown}: {counts}")
    print(f"Backup of the original: {result.backup}")
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print("verify: OK")
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    from lightml.log.backup import backup

    path = backup(args.db, args.out)
    if args.json:
        print_json({"db": args.db_shown, "path": str(path)})
    else:
        print(f"Backed up {args.db_shown} to {path} (one complete file)")
    return 0


def cmd_version(args: argparse.Namespace) -> int:
    from lightml import __version__

    if args.json:
        print_json({"version": __version__})
    else:
        print(f"lightml {__version__}")
    return 0
