"""Text of ``lightml stats``: one comparison (LightML 1.2's layout, plus the paired standard
error, the seed and the minimum detectable effect) or the table of ``--all``."""

from __future__ import annotations

from typing import Any

from lightml.report.ansi import GREEN, paint

RULE = "  " + "─" * 54


def format_p(p: float) -> str:
    return f"{p:.6f}" if p >= 1e-6 else f"{p:.2e}"


def _mde_text(result: dict[str, Any]) -> str:
    if result["binary"]:
        if result["contingency"]["n_discordant"] == 0:
            return "the two models agree on every sample (no discordant pairs)"
        return (f"this benchmark cannot resolve differences below {result['mde'] * 100:.2f} points "
                f"(alpha 0.05, power 0.8)")
    return f"differences below {result['mde']:.4f} cannot be resolved (alpha 0.05, power 0.8)"


# How each test is named in the terminal.
TEST_LABELS = {"mcnemar": "McNemar p-value:", "bootstrap": "Bootstrap p:",
               "welch_t_over_repeats": "Welch t p:", "paired_t_over_documents": "Paired t p:"}
TEST_TEXT = {"welch_t_over_repeats": "Welch's t test over the repeats",
             "paired_t_over_documents": "paired t test over documents of the repeats' means (seed and document "
                                        "variance)"}


def interval_of(result: dict[str, Any]) -> dict[str, Any]:
    """The interval of the difference: the bootstrap's, or (a test over repeats) the t interval."""
    return result["bootstrap"] if result.get("bootstrap") is not None else result["interval"]


def format_stats(result: dict[str, Any], *, color: bool = True) -> str:
    a, b = result["model_a"], result["model_b"]
    if result["test"] == "untestable":
        return "\n".join(["", f"  Statistical comparison: {a} vs {b}",
                          f"  Family: {result['family']}  Metric: {result['metric_name']}", RULE,
                          f"  {'Mean ' + a + ':':<17}{result['mean_a']:.4f} (n={result['repeats_a']})",
                          f"  {'Mean ' + b + ':':<17}{result['mean_b']:.4f} (n={result['repeats_b']})",
                          f"  Result:          untestable: {result['reason']}", ""])
    boot = interval_of(result)
    level = f"{boot['confidence'] * 100:g}% CI:"
    rows: list[tuple[str, str] | None] = []
    if result["binary"]:
        t = result["contingency"]
        rows += [("Both correct:", str(t["both_correct"])), (f"Only {a}:", str(t["only_a"])),
                 (f"Only {b}:", str(t["only_b"])), ("Both wrong:", str(t["both_wrong"])),
                 ("Discordant:", str(t["n_discordant"])), None]
    rows += [
        (f"Mean {a}:", f"{result['mean_a']:.4f}"),
        (f"Mean {b}:", f"{result['mean_b']:.4f}"),
        ("Delta (A - B):", f"{boot['delta']:+.4f}"),
        (level, f"[{boot['ci_lower']:+.4f}, {boot['ci_upper']:+.4f}]"),
        ("Paired SE:" if result["test"] != "welch_t_over_repeats" else "SE:", f"{result['se_delta']:.4f}"),
    ]
    if "repeats_a" in result:
        rows += [("Repeats:", f"{result['repeats_a']} and {result['repeats_b']}"),
                 ("Test:", TEST_TEXT[result["test"]])]
        if result["test"] == "paired_t_over_documents":
            rows.append(("Documents:", str(result["n"])))
    else:
        rows += [("Samples:", str(result["n"])),
                 ("Bootstrap:", f"{boot['resamples']} resamples, seed {boot['seed']}")]
    rows.append(None)
    test_label = TEST_LABELS[result["test"]]
    if result["significant"]:
        better = a if result["winner"] == "a" else b
        verdict = paint(f"Significant (p < 0.05), {better} is better", GREEN, color)
    else:
        verdict = "Not significant"
    rows += [(test_label, format_p(result["p_value"])), ("Result:", verdict), ("MDE:", _mde_text(result))]
    width = max(len(label) for row in rows if row for label in row[:1]) + 1
    width = max(width, 17)
    lines = ["", f"  Statistical comparison: {a} vs {b}",
             f"  Family: {result['family']}  Metric: {result['metric_name']}", RULE]
    for row in rows:
        lines.append(RULE if row is None else f"  {row[0]:<{width}}{row[1]}")
    if result["binary"] and not result["significant"] and (boot["ci_lower"] > 0 or boot["ci_upper"] < 0):
        lines.append("  Note: the bootstrap interval excludes 0 but the exact test does not; trust the exact test.")
    lines += [f"  Note: {note}." for note in result.get("value_notes", [])]
    lines.append("")
    return "\n".join(lines)


def format_stats_all(items: list[dict[str, Any]], model_a: str, model_b: str, *, color: bool = True) -> str:
    tested = [i for i in items if "error" not in i]
    untested = [i for i in items if "error" in i]
    if not tested:
        lines = ["", f"  No metric has per-sample scores for both {model_a} and {model_b} that can be paired."]
        lines += [f"  not tested: {i['error']}" for i in untested]
        return "\n".join(lines + [""])
    fam_w = max([6] + [len(i["family"]) for i in items])
    met_w = max([6] + [len(i["metric_name"]) for i in items])
    header = (f"  {'Family':<{fam_w}}  {'Metric':<{met_w}}  {'n':>7}  {'Mean A':>8}  {'Mean B':>8}  "
              f"{'Δ (A-B)':>8}  {'p':>9}  {'p Holm':>9}  {'MDE':>7}  Result")
    rule = "  " + "─" * (len(header) - 2)
    lines = ["", f"  Statistical comparison: {model_a} (A) vs {model_b} (B), {len(tested)} metric(s)", rule,
             header, rule]
    for i in tested:
        if i["p_holm"] < 0.05:
            # delta is A - B; for a loss-like metric the lower side is the better one
            a_better = (interval_of(i)["delta"] > 0) != i["lower_is_better"]
            result = paint(f"{model_a if a_better else model_b} better", GREEN, color)
        else:
            result = "not significant"
        mde = f"{i['mde'] * 100:.2f}pt" if i["binary"] else f"{i['mde']:.4f}"
        lines.append(
            f"  {i['family']:<{fam_w}}  {i['metric_name']:<{met_w}}  {i['n']:>7}  {i['mean_a']:>8.4f}  "
            f"{i['mean_b']:>8.4f}  {interval_of(i)['delta']:>+8.4f}  {format_p(i['p_value']):>9}  "
            f"{format_p(i['p_holm']):>9}  {mde:>7}  {result}")
    lines.append(rule)
    lines.append("  p: exact McNemar for 0/1 scores, bootstrap otherwise; over repeats where both logged them "
                 "(Welch's t, or paired t over documents when every repeat has scores); "
                 f"p Holm: adjusted for the {len(tested)} tests (significant below 0.05).")
    for i in tested:
        lines += [f"  Note ({i['family']}/{i['metric_name']}): {note}." for note in i.get("value_notes", [])]
    for i in untested:
        lines.append(f"  not tested: {i['error']}")
    lines.append("")
    return "\n".join(lines)
