"""compare, diff and stats: exact text (colour off: not a terminal), JSON, and errors.

Each command runs in this process (``cli``: ``main(argv)``, output captured), as a user
would type it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest


COMPARE_TEXT = """
  Compare: base  vs  sft
  Run: r1
  ─────────────────────────────────────────────────────────────────────────────────────
  Family             Metric                  A          B          Δ        %         p
  ─────────────────────────────────────────────────────────────────────────────────────
  eval               acc                0.6000     0.7000    +0.1000   +16.7%  0.0987
  eval               bleu                    —      10.50          —        —
  eval               f1                 0.5495     0.6495    +0.1000   +18.2%  0.0002 *
  eval               loss               2.0000     1.8000    -0.2000   -10.0%
  knowledge          mmlu               0.3000     0.3000    +0.0000    +0.0%
  ─────────────────────────────────────────────────────────────────────────────────────
  ✅ 3 improved  ❌ 0 regressed  ➖ 1 unchanged  ❓ 1 missing
  p: paired test on per-sample scores (McNemar for 0/1 scores, bootstrap otherwise); * p < 0.05

"""


DIFF_TEXT = """
  lightml diff — 3 models  (run: r1)
  ═════════════════════════════════════════════════════════════
  Family       Metric              base         sft         dpo
  ─────────────────────────────────────────────────────────────
  eval         acc               0.6000      0.7000      0.7200
  eval         bleu                   —     10.5000           —
  eval         f1                0.5495      0.6495           —
  eval         loss              2.0000      1.8000      1.9000

  knowledge    mmlu              0.3000      0.3000      0.3500
  ─────────────────────────────────────────────────────────────
  AVG          (2 metrics)       0.4500      0.5000      0.5350
  AVG: mean of the higher-is-better metrics that every model has, with every value in [0, 1] (never lower-is-better metrics, other scales or stderr rows).
  AVG 95% interval: base [0.1560, 0.7440], sft [0.1080, 0.8920], dpo [0.1724, 0.8976]; normal over the 2 tasks (mean ± 1.96 sd / √2), since not every averaged metric has per-sample scores on the same documents for every model.
  Left out: bleu (not every model has it), f1 (not every model has it), loss (lower is better).

"""


STATS_TEXT = """
  Statistical comparison: base vs sft
  Family: eval  Metric: acc
  ──────────────────────────────────────────────────────
  Both correct:    50
  Only base:       10
  Only sft:        20
  Both wrong:      20
  Discordant:      30
  ──────────────────────────────────────────────────────
  Mean base:       0.6000
  Mean sft:        0.7000
  Delta (A - B):   -0.1000
  95% CI:          [-0.2100, +0.0100]
  Paired SE:       0.0541
  Samples:         100
  Bootstrap:       10000 resamples, seed 42
  ──────────────────────────────────────────────────────
  McNemar p-value: 0.098737
  Result:          Not significant
  MDE:             this benchmark cannot resolve differences below 15.34 points (alpha 0.05, power 0.8)

"""


def test_compare_text(lineage: Path, cli) -> None:
    result = cli("compare", "--db", lineage, "--model-a", "base", "--model-b", "sft", "--run", "r1")
    assert result.returncode == 0, result.stderr
    assert result.stdout == COMPARE_TEXT


def test_compare_json_and_runs(lineage: Path, cli) -> None:
    result = cli("compare", "--db", lineage, "--model-a", "base", "--model-b", "base",
                 "--run-a", "r2", "--run-b", "r1", "--family", "eval", "--json")
    data = json.loads(result.stdout)
    assert (data["run_a"], data["run_b"]) == ("r2", "r1")
    assert [d["metric"] for d in data["deltas"]] == ["acc", "f1", "loss"]  # r1's base has no bleu
    text = cli("compare", "--db", lineage, "--model-a", "base", "--model-b", "base",
               "--run-a", "r2", "--run-b", "r1").stdout
    assert "  Runs: r2  vs  r1" in text


def test_diff_text_and_json(lineage: Path, cli) -> None:
    result = cli("diff", "--db", lineage, "--models", "base", "sft", "dpo", "--run", "r1")
    assert result.returncode == 0, result.stderr
    assert result.stdout == DIFF_TEXT
    data = json.loads(cli("diff", "--db", lineage, "--models", "base", "sft", "--run", "r1", "--json").stdout)
    assert data["models"] == ["base", "sft"] and data["rows"][0] == {
        "family": "eval", "metric": "acc", "values": {"base": 0.6, "sft": 0.7}, "lower_is_better": False,
        "uncertainty": False, "best": ["sft"], "worst": [], "stderr": None, "repeats": None,
        "settings_differ": []}
    # the JSON carries what the text shows: the AVG row, its rule, its interval, and what it left out
    assert data["average"]["interval"]["method"] == "normal over tasks"  # mmlu has no scores
    assert data["average"]["values"] == {"base": pytest.approx((0.6 + 0.5495 + 0.3) / 3),
                                         "sft": pytest.approx((0.7 + 0.6495 + 0.3) / 3)}
    assert data["average"]["metrics"] == [["eval", "acc"], ["eval", "f1"], ["knowledge", "mmlu"]]
    assert {"family": "eval", "metric": "loss", "reason": "lower is better"} in data["average"]["left_out"]


def test_stats_text_and_json(lineage: Path, cli) -> None:
    args = ["stats", "--db", lineage, "--model-a", "base", "--model-b", "sft", "--family", "eval", "--metric", "acc",
            "--run", "r1"]
    result = cli(*args)
    assert result.returncode == 0, result.stderr
    assert result.stdout == STATS_TEXT
    data = json.loads(cli(*args, "--json").stdout)
    assert data["contingency"]["only_b"] == 20 and data["bootstrap"]["seed"] == 42
    seeded = json.loads(cli(*args, "--json", "--seed", "7", "--resamples", "500").stdout)
    assert (seeded["bootstrap"]["seed"], seeded["bootstrap"]["resamples"]) == (7, 500)


def test_stats_all(lineage: Path, cli) -> None:
    result = cli("stats", "--db", lineage, "--model-a", "base", "--model-b", "sft", "--all", "--run", "r1",
                 "--no-color")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[1] == "  Statistical comparison: base (A) vs sft (B), 2 metric(s)"
    assert lines[3].split() == ["Family", "Metric", "n", "Mean", "A", "Mean", "B", "Δ", "(A-B)", "p", "p", "Holm",
                                "MDE", "Result"]
    assert lines[5].split() == ["eval", "acc", "100", "0.6000", "0.7000", "-0.1000", "0.098737", "0.098737",
                                "15.34pt", "not", "significant"]
    assert lines[6].split()[:3] == ["eval", "f1", "100"] and lines[6].endswith("sft better")
    items = json.loads(cli("stats", "--db", lineage, "--model-a", "base", "--model-b", "dpo", "--all",
                           "--run", "r1", "--json").stdout)
    assert items[0]["error"].startswith("cannot pair eval/acc")


@pytest.mark.parametrize("args, message", [
    (["--model-a", "base", "--model-b", "sft", "--family", "eval", "--run", "r1"], "--metric is required"),
    (["--model-a", "base", "--model-b", "sft", "--family", "eval", "--metric", "loss", "--run", "r1"],
     "no per-sample scores"),
    (["--model-a", "base", "--model-b", "dpo", "--family", "eval", "--metric", "acc", "--run", "r1"],
     "'base' has 100 scores and 'dpo' has 90"),
    (["--model-a", "base", "--model-b", "sft", "--family", "eval", "--metric", "acc"], "several runs"),
    (["--model-a", "base", "--model-b", "sft", "--all", "--metric", "acc"], "leave out --metric"),
    (["--model-a", "base", "--model-b", "sft", "--family", "eval", "--metric", "acc", "--run", "zz"],
     "run 'zz' not found"),
])
def test_stats_errors(lineage: Path, args: list[str], message: str, cli, assert_user_error) -> None:
    result = cli("stats", "--db", lineage, *args)
    assert_user_error(result)
    assert message in result.stderr


def test_compare_and_diff_errors(lineage: Path, tmp_path: Path, cli, assert_user_error) -> None:
    assert "model-b is required" in cli("compare", "--db", lineage, "--model-a", "base").stderr
    result = cli("diff", "--db", lineage, "--models", "sft")
    assert_user_error(result)
    assert "at least 2 models" in result.stderr
    result = cli("diff", "--db", tmp_path / "nothing.db", "--models", "a", "b")
    assert_user_error(result)
    assert "registry not found" in result.stderr
    assert not (tmp_path / "nothing.db").exists()


def test_stats_without_any_scores(tmp_path: Path, cli, assert_user_error) -> None:
    from lightml.handle import LightMLHandle

    with LightMLHandle(tmp_path / "plain.db", "r") as h:
        h.register_model("a", "org/a")
    result = cli("stats", "--db", tmp_path / "plain.db")
    assert_user_error(result)
    assert "no detailed scores in this registry" in result.stderr


# -- the regression gate and flips ----------------------------------------------------------------


GATE_FAIL = """
  regression gate: sft (base) -> base (candidate), 2 metric(s) tested, Holm-adjusted alpha 0.05
  FAIL: 1 metric(s) of base significantly worse:
    eval/f1: 0.6495 -> 0.5495 (bootstrap, p_holm 0.0004)

"""


def test_compare_fails_on_a_significant_regression_and_passes_otherwise(lineage: Path, cli) -> None:
    failed = cli("compare", "--db", lineage, "--a", "sft", "--b", "base", "--run", "r1", "--fail-on-regression")
    assert failed.returncode == 1, failed.stderr
    assert failed.stdout.endswith(GATE_FAIL)
    assert failed.stdout.startswith("\n  Compare: sft  vs  base\n")  # the usual table comes first
    passed = cli("compare", "--db", lineage, "--a", "base", "--b", "sft", "--run", "r1", "--fail-on-regression")
    assert passed.returncode == 0, passed.stderr
    assert "  PASS: no metric of sft is significantly worse\n" in passed.stdout
    strict = cli("compare", "--db", lineage, "--a", "sft", "--b", "base", "--run", "r1", "--fail-on-regression",
                 "--alpha", "0.0001")
    assert strict.returncode == 0 and "Holm-adjusted alpha 0.0001" in strict.stdout
    as_json = cli("compare", "--db", lineage, "--a", "sft", "--b", "base", "--run", "r1", "--fail-on-regression",
                  "--json")
    assert as_json.returncode == 1
    gate = json.loads(as_json.stdout)["gate"]
    assert (gate["passed"], gate["tested"], [i["metric_name"] for i in gate["regressed"]]) == (False, 2, ["f1"])


@pytest.mark.parametrize("args, message", [
    (["--a", "base", "--b", "sft", "--family", "knowledge", "--fail-on-regression"],
     "nothing to test: 'base' and 'sft' have no metric with per-sample scores in common in family 'knowledge'"),
    (["--a", "base", "--b", "sft", "--alpha", "0.1"], "--alpha is the level of --fail-on-regression"),
    (["--a", "base", "--b", "sft", "--fail-on-regression", "--alpha", "1.5"], "alpha must be a number between 0 and 1"),
    (["--a", "base", "--b", "sft", "--fail-on-regression", "--run-a", "r2"], "--run-a/--run-b are not supported"),
])
def test_the_gate_exits_2_on_bad_input(lineage: Path, args: list[str], message: str, cli, assert_user_error) -> None:
    assert_user_error(cli("compare", "--db", lineage, "--run", "r1", *args), message)


FLIPS_TEXT = """
  Flips: base  vs  sft, eval/acc
  30 of 100 documents differ: base better on 10, sft better on 20 (paired by position)
  doc               A          B  better
  0            1.0000     0.0000  base
  1            1.0000     0.0000  base
  ... 28 more (--limit N to show more, --json for all)

"""


def test_flips_text_and_json(lineage: Path, cli) -> None:
    text = cli("flips", "--db", lineage, "--run", "r1", "--a", "base", "--b", "sft", "--family", "eval",
               "--metric", "acc", "--limit", "2")
    assert text.returncode == 0, text.stderr
    assert text.stdout == FLIPS_TEXT
    data = json.loads(cli("flips", "--db", lineage, "--run", "r1", "--a", "base", "--b", "sft", "--family", "eval",
                          "--metric", "acc", "--json").stdout)
    assert (data["documents"], data["flipped"], data["better_a"], data["better_b"], data["paired_by"]) == \
        (100, 30, 10, 20, "position")
    assert [item["doc"] for item in data["flips"]] == list(range(10)) + list(range(60, 80))
    itself = cli("flips", "--db", lineage, "--run", "r1", "--a", "sft", "--b", "sft", "--family", "eval",
                 "--metric", "acc")
    assert "0 of 100 documents differ: sft (A) better on 0, sft (B) better on 0" in itself.stdout


def test_flips_show_the_texts_and_say_when_a_file_moved(lm_eval_results: Path, tmp_path: Path, cli) -> None:
    db = tmp_path / "reg.db"
    assert cli("init", "--db", db).returncode == 0
    assert cli("scan", "--db", db, "--path", lm_eval_results, "--run", "r").returncode == 0
    args = ["flips", "--db", db, "--a", "dummy-a", "--b", "dummy-b", "--family", "tiny_mc", "--metric", "acc",
            "--limit", "1"]
    shown = cli(*args)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.splitlines()[4:9] == [
        "  8:da280f3ffe61de26     0.0000     1.0000  dummy-b",
        "      prompt : Question: What is 18 + 6?⏎Answer:",
        "      target : 3: 24",
        "      A      : 0: 25",
        "      B      : 3: 24",
    ]
    for samples in (lm_eval_results / "dummy-b").glob("samples_tiny_mc_*"):
        samples.unlink()
    moved = cli(*args)
    assert moved.returncode == 0
    assert "      B      : —" in moved.stdout
    assert "  texts: samples file " in moved.stdout and "moved or deleted since the scan?" in moved.stdout


@pytest.mark.parametrize("args, message", [
    (["--a", "base", "--b", "sft", "--family", "eval", "--metric", "loss"], "no per-sample scores for model 'base'"),
    (["--a", "base", "--b", "dpo", "--family", "eval", "--metric", "acc"], "'base' has 100 scores and 'dpo' has 90"),
    (["--a", "base", "--b", "sft", "--family", "eval", "--metric", "acc", "--limit", "-1"], "limit must be"),
    (["--a", "sft", "--b", "sft", "--family", "eval", "--metric", "acc", "--step-a", "5"],
     "'sft' has no checkpoint at step 5"),
])
def test_flips_errors(lineage: Path, args: list[str], message: str, cli, assert_user_error) -> None:
    assert_user_error(cli("flips", "--db", lineage, "--run", "r1", *args), message)
