"""Everyday read commands: list, summary, info, top, metric-get."""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from lightml.cli.output import format_value, print_json, print_table

if TYPE_CHECKING:
    from lightml.read.resolve import ModelRef


def run_id(conn, run_name: str | None) -> int | None:
    from lightml.read.resolve import require_run_id

    return require_run_id(conn, run_name)


def model_names(conn, run: int | None, include_hidden: bool = True) -> list[str]:
    """The models a picker offers, each spelled so that it names one model
    (``resolve.model_spellings``: the bare name, or RUN/MODEL for a name in several runs)."""
    from lightml.read.resolve import model_spellings

    return model_spellings(conn, run, include_hidden=include_hidden)


def pick_model(conn, args: argparse.Namespace, run: int | None) -> "ModelRef":
    """--model (any spelling ``resolve.find_model`` accepts), or on a terminal a pick from
    the visible models (all of them with --include-hidden), resolved to one model."""
    from lightml.cli.pick import choose
    from lightml.read.resolve import find_model

    spelling = args.model or choose("--model", "model", model_names(conn, run, getattr(args, "include_hidden", False)))
    return find_model(conn, spelling, args.run)


def pick_family_metric(conn, family: str | None, metric: str | None) -> tuple[str, str]:
    from lightml.cli.pick import choose
    from lightml.read.catalog import family_metrics, list_families

    family = family or choose("--family", "family", [f["family"] for f in list_families(conn, include_hidden=True)])
    metric = metric or choose("--metric", "metric", family_metrics(conn, family))
    return family, metric


def _short(text: str | None, width: int = 40) -> str:
    if not text:
        return ""
    one_line = " ".join(text.split())
    return one_line if len(one_line) <= width else one_line[:width - 1] + "…"


def cmd_list(args: argparse.Namespace) -> int:
    from lightml.read import catalog
    from lightml.read.sql import reading

    if args.where is not None and args.what != "models":
        from lightml.errors import InvalidInputError

        raise InvalidInputError(f"--where selects models: use it with 'lightml list models', not {args.what}")
    with reading(args.db) as conn:
        run = run_id(conn, args.run)
        if args.what == "runs":
            rows = catalog.list_runs(conn, include_hidden=args.all)
        elif args.what == "families":
            rows = catalog.list_families(conn, run, include_hidden=args.all)
        else:
            rows = catalog.list_models(conn, run, include_hidden=args.all, where=args.where)
    if args.json:
        print_json(rows)
        return 0
    if not rows:
        print(f"No {args.what}.")
        return 0
    if args.what == "runs":
        print_table(["run", "models", "created (UTC)", "description"],
                    [[r["run"], r["models"], r["created_at"], _short(r["description"])] for r in rows])
    elif args.what == "families":
        print_table(["family", "metrics", "models", "values"],
                    [[r["family"], r["metrics"], r["models"], r["values"]] for r in rows])
    else:
        with_tags = any(r["tags"] for r in rows)
        with_params = any(r["params"] for r in rows)
        headers = (["model", "run", "parent", "checkpoints", "metrics", "notes"] + (["tags"] if with_tags else [])
                   + (["params"] if with_params else []) + (["hidden"] if args.all else []))
        print_table(headers, [
            [r["model"], r["run"], r["parent"] or "", r["checkpoints"], r["metrics"], _short(r["notes"])]
            + ([", ".join(r["tags"])] if with_tags else [])
            + ([_short(", ".join(f"{k}={v}" for k, v in r["params"].items()))] if with_params else [])
            + (["yes" if r["hidden"] else ""] if args.all else [])
            for r in rows
        ])
    return 0


def cmd_summary(args: argparse.Namespace) -> int:
    from lightml.read import catalog
    from lightml.read.sql import reading

    with reading(args.db) as conn:
        data = catalog.summary(conn)
    if args.json:
        print_json(data)
        return 0
    c = data["counts"]
    print(f"Registry {args.db_shown}")
    print(f"  {c['models']} models ({c['hidden_models']} hidden), {c['runs']} runs, {c['checkpoints']} checkpoints, "
          f"{c['metrics']} metrics ({c['scored_metrics']} with per-sample scores), {c['events']} events")
    print("\nRuns:")
    print_table(["run", "models", "created (UTC)"], [[r["run"], r["models"], r["created_at"]] for r in data["runs"]])
    print("\nFamilies:")
    print_table(["family", "metrics", "models"], [[f["family"], f["metrics"], f["models"]] for f in data["families"]])
    print("\nNewest events:")
    print_table(["seq", "at (UTC)", "type", "what", "actor"],
                [[e["seq"], e["at"].replace("T", " ").rstrip("Z"), e["type"], _short(e["what"], 50), e["actor"]]
                 for e in data["newest_events"]])
    return 0


def _print_tree(children: list[dict], indent: str = "    ") -> None:
    for child in children:
        print(f"{indent}└─ {child['model']}  (run: {child['run']})")
        _print_tree(child["children"], indent + "   ")


def cmd_info(args: argparse.Namespace) -> int:
    from lightml.read import catalog
    from lightml.read.sql import reading

    with reading(args.db) as conn:
        ref = pick_model(conn, args, run_id(conn, args.run))
        card = catalog.model_card(conn, ref.id)
    if args.json:
        print_json(card)
        return 0
    print(f"Model {card['model']}" + ("  [hidden]" if card["hidden"] else ""))
    print(f"  run:     {card['run']}")
    print(f"  path:    {card['path']}")
    print(f"  notes:   {card['notes'] or '(none)'}")
    if card["tags"]:
        print(f"  tags:    {', '.join(card['tags'])}")
    if card["params"]:
        print(f"  params:  {', '.join(f'{key}={value}' for key, value in card['params'].items())}")
    lineage = " <- ".join([card["model"]] + [p["model"] for p in card["parents"]])
    print(f"  lineage: {lineage}" if card["parents"] else "  lineage: (no parent)")
    if card["children"]:
        print("  children:")
        _print_tree(card["children"])
    print(f"  checkpoints: {len(card['checkpoints'])}")
    for c in card["checkpoints"]:
        print(f"    step {c['step']}: {c['path']} ({c['metrics']} metrics)")
    _print_metrics(card)
    last = card["last_change"]
    if last:
        print(f"  last change: #{last['seq']} {last['type']} at {last['at'].replace('T', ' ').rstrip('Z')} "
              f"by {last['actor']}")
    return 0


def _print_metrics(card: dict) -> None:
    """The model-level values, family by family (as LightML 1.4's ``info`` prints them)."""
    total = len(card["metrics"])
    print(f"  metrics: {total}" + ("" if not total else " (" + ", ".join(
        f"{f}: {n}" for f, n in card["metrics_per_family"].items()) + ")"))
    width = max([20] + [len(m["metric"]) for m in card["metrics"]])
    family = None
    for m in card["metrics"]:
        if m["family"] != family:
            family = m["family"]
            print(f"    [{family}]")
            shared = _shared_settings([x for x in card["metrics"] if x["family"] == family])
            if shared:
                print(f"      settings: {_settings_text(shared)}")
        print(f"      {m['metric']:<{width}}  {format_value(m['value'])}"
              + (f" {_repeats_text(m['repeats'])}" if m["repeats"] else ""))
        if m["settings"] and not shared:
            print(f"      {'':<{width}}  settings: {_settings_text(m['settings'])}")


def _shared_settings(metrics: list[dict]) -> dict | None:
    """The eval settings every value of a family shares (printed once under its name), or None."""
    first = metrics[0]["settings"]
    return first if first and all(m["settings"] == first for m in metrics) else None


def _settings_text(settings: dict) -> str:
    """``num_fewshot=5, limit=100, ...``: each value cut to 60 characters."""
    shown = []
    for key, value in settings.items():
        text = json.dumps(value) if isinstance(value, bool) else str(value)
        shown.append(f"{key}={text if len(text) <= 60 else text[:57] + '...'}")
    return ", ".join(shown)


def cmd_top(args: argparse.Namespace) -> int:
    from lightml.read import catalog
    from lightml.read.direction import is_uncertainty, lower_is_better
    from lightml.read.sql import reading
    from lightml.write.validation import check_int_range

    check_int_range(args.n, "--n", 1)
    with reading(args.db) as conn:
        run = run_id(conn, args.run)
        family, metric = pick_family_metric(conn, args.family, args.metric)
        catalog.require_metric(conn, family, metric)
        board = catalog.top(conn, family, metric, args.n, run, include_hidden=args.all, strict=args.strict,
                            where=args.where)
    from lightml.cli.analysis_cmds import warn_settings

    warn_settings([(f"{r['model']} vs {board[0]['model']}", r["settings_differ"]) for r in board if r["settings_differ"]])
    if args.json:
        print_json({"family": family, "metric": metric, "lower_is_better": lower_is_better(metric),
                    "uncertainty": is_uncertainty(metric), "rows": board})
        return 0
    if not board:
        chosen = f" among the models selected by {args.where!r}" if args.where is not None else ""
        print(f"No model{chosen} has {family}/{metric}.")
        return 0
    if is_uncertainty(metric):
        print(f"{family}/{metric} is an uncertainty (a stderr), not a score: listed by value, smallest first, "
              "not ranked.")
        print_table(["model", "run", "value"], [[r["model"], r["run"], format_value(r["value"])] for r in board])
        return 0
    order = "lower is better" if lower_is_better(metric) else "higher is better"
    print(f"Top {args.n} on {family}/{metric} ({order}):")
    rows = [[f"{r['rank']}=" if r["tie"] else r["rank"], r["model"], r["run"],
             format_value(r["value"]) + (" !" if r["settings_differ"] else "")] for r in board]
    with_stderr = any(r["stderr"] is not None for r in board)
    with_repeats = any(r["repeats"] is not None for r in board)
    for row, r in zip(rows, board):  # the interval beside each value, and which models the leader does not beat
        if with_repeats:
            row.append(_repeats_text(r["repeats"]))
        if with_stderr:
            row.append("" if r["stderr"] is None else f"±{format_value(r['stderr'])}")
        if with_stderr or with_repeats:
            row.append("≈ #1" if r["same_as_leader"] else "")
    print_table(["rank", "model", "run", "value"] + (["95% over repeats"] if with_repeats else [])
                + (["stderr"] if with_stderr else []) + (["vs #1"] if with_stderr or with_repeats else []), rows)
    if any(r["tie"] for r in board):
        print("(= : tied on the same value)")
    if (with_stderr or with_repeats) and any(r["same_as_leader"] for r in board):
        how = " and ".join(part for part, present in (
            ("Welch's t test over repeats where both have 2 or more", with_repeats),
            ("a z-test of the two values from their stderrs" + (" otherwise" if with_repeats else ""),
             with_stderr)) if present)
        print(f"(≈ #1: not significantly different from the first, p >= 0.05: {how})")
    from lightml.read.settings import footnote

    for line in footnote([(f"{r['model']} vs #1", r["settings_differ"]) for r in board if r["settings_differ"]]):
        print(line)
    return 0


def cmd_metric_get(args: argparse.Namespace) -> int:
    from lightml.read import catalog
    from lightml.read.sql import reading

    with reading(args.db) as conn:
        ref = pick_model(conn, args, run_id(conn, args.run))
        family, metric = pick_family_metric(conn, args.family, args.metric)
        value = catalog.metric_value(conn, ref.id, ref.model_name, family, metric)
    if args.json:
        print_json({"model": ref.model_name, "run": ref.run_name, "family": family, "metric": metric, "value": value})
    elif sys.stdout.isatty() and not getattr(args, "raw", False):
        print(f"{ref.model_name}  {family}/{metric} = {value!r}")
    else:  # --raw, and for scripts: just the number, at full precision
        print(repr(value))
    return 0


def _repeats_text(spread: dict | None) -> str:
    """``±0.0120 (n=5)`` (a value that is the mean of repeats), or ``(n=1)``, or nothing."""
    if spread is None:
        return ""
    if spread["half_width"] is None:
        return f"(n={spread['n']})"
    return f"±{format_value(spread['half_width'])} (n={spread['n']})"
