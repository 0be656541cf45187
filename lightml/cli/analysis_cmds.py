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


def _scored_models(conn, args: argparse.Namespace, run: int | None) -> tuple[str, str]:
    """--model-a and --model-b, each picked on a terminal among the models with scores when left out."""
    from lightml.cli.pick import choose

    model_a = args.model_a or choose("--model-a", "model A (with scores)",
                                     _model_names(conn, args, run, with_scores=True))
    model_b = args.model_b or choose("--model-b", "model B (with scores)",
                                     [m for m in _model_names(conn, args, run, with_scores=True) if m != model_a])
    return model_a, model_b


def _scored_metric(conn, args: argparse.Namespace, model_a: str, model_b: str, run: int | None) -> tuple[str, str]:
    """--family and --metric, each picked on a terminal among the metrics both models have
    scores or repeats for when left out."""
    from lightml.cli.pick import choose
    from lightml.read import queries, significance

    if args.family is not None and args.metric is not None:
        return args.family, args.metric
    ref_a, ref_b = significance.models_for(conn, model_a, model_b, run)
    common = sorted(set(queries.testable_metrics(conn, ref_a.id)) & set(queries.testable_metrics(conn, ref_b.id)))
    family = args.family or choose("--family", "family", sorted({f for f, _ in common}))
    metric = args.metric or choose("--metric", "metric", [m for f, m in common if f == family])
    return family, metric


def warn_settings(differing: list[tuple[str, list[str]]]) -> None:
    """One line on stderr naming the settings keys in which compared values differ."""
    from lightml.read.settings import warning_line

    line = warning_line(differing)
    if line is not None:
        print(f"lightml: {line}", file=sys.stderr)


EXIT_REGRESSION = 1  # --fail-on-regression found one (user errors exit 2, lightml.cli.main)


def cmd_compare(args: argparse.Namespace) -> int:
    from lightml.cli.pick import choose
    from lightml.errors import InvalidInputError
    from lightml.read.compare import compare_in
    from lightml.read.sql import reading

    if args.alpha is not None and not args.fail_on_regression:
        raise InvalidInputError("--alpha is the level of --fail-on-regression: give both, or neither")
    if args.fail_on_regression and (args.run_a is not None or args.run_b is not None):
        raise InvalidInputError("--fail-on-regression looks both models up with --run; --run-a/--run-b are "
                                "not supported with it")
    gate = None
    with reading(args.db) as conn:
        run = _run_id(conn, args.run)
        model_a = args.model_a or choose("--model-a", "model A", _model_names(conn, args, run))
        model_b = args.model_b or choose(
            "--model-b", "model B", [m for m in _model_names(conn, args, run) if m != model_a])
        if args.fail_on_regression:
            from lightml.read.regression import DEFAULT_ALPHA, regression_check

            alpha = DEFAULT_ALPHA if args.alpha is None else args.alpha
            gate = regression_check(conn, model_a, model_b, args.family, alpha, run)
        result = compare_in(conn, model_a, model_b, args.run, args.family, run_a=args.run_a, run_b=args.run_b,
                            strict=args.strict)
    if args.family is not None and not result.deltas:
        from lightml.errors import NotFoundError

        raise NotFoundError(f"neither {model_a!r} nor {model_b!r} has metrics in family {args.family!r}")
    warn_settings([(f"{d.family}/{d.metric_name}", d.settings_differ) for d in result.deltas if d.settings_differ])
    if args.json:
        print_json(result.to_dict() if gate is None else {**result.to_dict(), "gate": gate})
    else:
        print(result.to_text(color=color_wanted(sys.stdout, args.no_color)))
        if gate is not None:
            from lightml.read.regression import format_gate

            print(format_gate(gate) + "\n")
    return EXIT_REGRESSION if gate is not None and not gate["passed"] else 0


def cmd_diff(args: argparse.Namespace) -> int:
    from lightml.read.diff import diff_in, format_diff
    from lightml.read.sql import reading

    with reading(args.db) as conn:
        models = args.models
        if not models and args.where is None:
            from lightml.cli.pick import choose_many

            models = choose_many("--models", "models to diff", _model_names(conn, args, _run_id(conn, args.run)))
        data = diff_in(conn, models or None, args.run, args.family, strict=args.strict, where=args.where,
                       group_by=args.group_by)
    warn_settings([(f"{r['family']}/{r['metric']}", r["settings_differ"]) for r in data["rows"] if r["settings_differ"]])
    if args.json:
        print_json(data)
    else:
        print(format_diff(data, color=color_wanted(sys.stdout, args.no_color)))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
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
        if not queries.models_with_tests(conn):
            raise NotFoundError("no detailed scores in this registry: log metrics with scores=[...] "
                                "(or import lm-eval samples), or several repeats (repeat=...), to use statistical tests")
        model_a, model_b = _scored_models(conn, args, run)
        if args.all:
            items = significance.compare_stats_all(conn, model_a, model_b, args.family, run, strict=args.strict,
                                                   **options)
        else:
            family, metric = _scored_metric(conn, args, model_a, model_b, run)
            result = significance.compare_stats(conn, model_a, model_b, family, metric, run, strict=args.strict,
                                                **options)
            items = [result]
    warn_settings([(f"{i['family']}/{i['metric_name']}", i["settings_differ"]) for i in items if i["settings_differ"]])
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


DEFAULT_FLIPS_SHOWN = 50
TERMINAL_TEXT = 100  # characters of each text in the table (the JSON has TEXT_LIMIT's)


def cmd_flips(args: argparse.Namespace) -> int:
    from lightml.read import flips
    from lightml.read.sql import reading

    limit = flips.check_limit(args.limit)
    if limit is None and not args.json:
        limit = DEFAULT_FLIPS_SHOWN
    with reading(args.db) as conn:
        run = _run_id(conn, args.run)
        model_a, model_b = _scored_models(conn, args, run)
        family, metric = _scored_metric(conn, args, model_a, model_b, run)
        found = flips.flips(conn, model_a, model_b, family, metric, args.step_a, args.step_b, run, limit)
    if args.json:
        print_json({"model_a": model_a, "model_b": model_b, "family": family, "metric_name": metric,
                    "step_a": args.step_a, "step_b": args.step_b, **found.counts(), "flips": found.items})
    else:
        name_a, name_b = _side(model_a, args.step_a), _side(model_b, args.step_b)
        if name_a == name_b:  # one model against itself (its own runs, say): say which side
            name_a, name_b = f"{name_a} (A)", f"{name_b} (B)"
        print(_format_flips(found, name_a, name_b, family, metric))
    return 0


def _side(model: str, step: int | None) -> str:
    return model if step is None else f"{model}@step {step}"


def _one_line(text: str | None, keep_end: bool = False) -> str:
    """A text on one line of the table: line breaks shown as ⏎, cut to ``TERMINAL_TEXT``."""
    if text is None:
        return "—"
    flat = text.replace("\r\n", "⏎").replace("\n", "⏎")
    if len(flat) <= TERMINAL_TEXT:
        return flat
    return "…" + flat[-(TERMINAL_TEXT - 1):] if keep_end else flat[:TERMINAL_TEXT - 1] + "…"


def _format_flips(found, name_a: str, name_b: str, family: str, metric: str) -> str:
    lines = ["", f"  Flips: {name_a}  vs  {name_b}, {family}/{metric}",
             f"  {found.flipped} of {found.documents} documents differ: {name_a} better on {found.better_a}, "
             f"{name_b} better on {found.flipped - found.better_a} (paired by {found.paired_by})"]
    if found.items:
        doc_w = max([8] + [len(str(item["doc"])) for item in found.items])
        lines.append(f"  {'doc':<{doc_w}} {'A':>10} {'B':>10}  better")
        for item in found.items:
            better = name_a if item["better"] == "a" else name_b
            lines.append(f"  {str(item['doc']):<{doc_w}} {item['a']:>10.4f} {item['b']:>10.4f}  {better}")
            if "prompt" in item:
                lines += [f"      prompt : {_one_line(item['prompt'], keep_end=True)}",
                          f"      target : {_one_line(item['target'])}",
                          f"      A      : {_one_line(item['response_a'])}",
                          f"      B      : {_one_line(item['response_b'])}"]
    if len(found.items) < found.flipped:
        lines.append(f"  ... {found.flipped - len(found.items)} more (--limit N to show more, --json for all)")
    for note in dict.fromkeys(item["text_note"] for item in found.items if "text_note" in item):
        lines.append(f"  texts: {note}")
    lines.append("")
    return "\n".join(lines)
