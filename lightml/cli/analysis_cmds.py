"""Commands that compare models: compare, diff, stats."""

from __future__ import annotations

import argparse
import sys

from lightml.cli.output import print_json
from lightml.report.ansi import color_wanted


def _run_id(conn, run_name: str | None) -> int | None:
    from lightml.cli.browse_cmds import run_id

    return run_id(conn, run_name)


def _model_names(conn, args: argparse.Namespace, run: int | None, with_scores: bool = False) -> list[str]:
    """What the pickers offer: visible models, or all with --include-hidden (a hidden one can
    always be named), each spelled so that it names one model (``resolve.model_spellings``)."""
    from lightml.read.resolve import model_spellings

    return model_spellings(conn, run, include_hidden=getattr(args, "include_hidden", False), with_scores=with_scores)


def cmd_compare(args: argparse.Namespace) -> int:
    from lightml.cli.pick import choose
    from lightml.read.compare import compare_in
    from lightml.read.sql import reading

    with reading(args.db) as conn:
        run = _run_id(conn, args.run)
        model_a = args.model_a or choose("--model-a", "model A", _model_names(conn, args, run))
        model_b = args.model_b or choose(
            "--model-b", "model B", [m for m in _model_names(conn, args, run) if m != model_a])
        result = compare_in(conn, model_a, model_b, args.run, args.family, run_a=args.run_a, run_b=args.run_b)
    if args.family is not None and not result.deltas:
        from lightml.errors import NotFoundError

        raise NotFoundError(f"neither {model_a!r} nor {model_b!r} has metrics in family {args.family!r}")
    if args.json:
        print_json(result.to_dict())
    else:
        print(result.to_text(color=color_wanted(sys.stdout, args.no_color)))
    return 0


def cmd_diff(args: argparse.Namespace) -> int:
    from lightml.read.diff import diff_in, format_diff
    from lightml.read.sql import reading

    with reading(args.db) as conn:
        models = args.models
        if not models:
            from lightml.cli.pick import choose_many

            models = choose_many("--models", "models to diff", _model_names(conn, args, _run_id(conn, args.run)))
        data = diff_in(conn, models, args.run, args.family)
    if args.json:
        print_json(data)
    else:
        print(format_diff(data, color=color_wanted(sys.stdout, args.no_color)))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from lightml.cli.pick import choose
    from lightml.errors import InvalidInputError, NotFoundError
    from lightml.read import queries, significance, stats
    from lightml.read.sql import reading
    from lightml.report.stats_report import format_stats, format_stats_all

    if args.all and args.metric is not None:
        raise InvalidInputError("--all tests every metric; leave out --metric (or leave out --all)")
    options = {"resamples": args.resamples, "seed": args.seed}
    stats.check_options(**options)  # before any question is asked
    with reading(args.db) as conn:
        run = _run_id(conn, args.run)
        if not queries.models_with_scores(conn):
            raise NotFoundError("no detailed scores in this registry: log metrics with scores=[...] "
                                "(or import lm-eval samples) to use statistical tests")
        model_a = args.model_a or choose("--model-a", "model A (with scores)",
                                         _model_names(conn, args, run, with_scores=True))
        model_b = args.model_b or choose("--model-b", "model B (with scores)",
                                         [m for m in _model_names(conn, args, run, with_scores=True) if m != model_a])
        if args.all:
            items = significance.compare_stats_all(conn, model_a, model_b, args.family, run, **options)
        else:
            ref_a, ref_b = significance.models_for(conn, model_a, model_b, run)
            common = sorted(set(queries.scored_metrics(conn, ref_a.id)) & set(queries.scored_metrics(conn, ref_b.id)))
            family = args.family or choose(
                "--family", "family", sorted({f for f, _ in common}))
            metric = args.metric or choose(
                "--metric", "metric", [m for f, m in common if f == family])
            result = significance.compare_stats(conn, model_a, model_b, family, metric, run, **options)
    color = color_wanted(sys.stdout, args.no_color)
    if args.all:
        if args.json:
            print_json(items)
        else:
            print(format_stats_all(items, model_a, model_b, color=color))
        return 0
    if args.json:
        print_json(result)
    else:
        print(format_stats(result, color=color))
    return 0
