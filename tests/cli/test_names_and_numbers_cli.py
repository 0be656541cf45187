"""Names and numbers on the command line: every read command takes RUN/MODEL and MODEL@RUN,
a refused character is one line, integers beyond range and stored scores beyond range are
clear errors, and stats says when it used the scores rather than the stored value.

Each command runs in this process (``cli``: ``main(argv)``, output captured), as a user
would type it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lightml import LightMLHandle


SFT = "llama-1b-sft"


def test_diff_of_a_re_evaluated_model_from_the_cli(twice: Path, cli, assert_user_error) -> None:
    # the case: a --run that holds only one of the models
    result = cli("diff", "--db", twice, "--models", "base", SFT, "dpo", "--run", "eval-2", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["runs"][SFT] == "eval-2"
    both = cli("diff", "--db", twice, "--models", f"eval-1/{SFT}", f"eval-2/{SFT}", "--no-color")
    assert both.returncode == 0, both.stderr
    assert f"eval-1/{SFT}" in both.stdout
    ambiguous = cli("diff", "--db", twice, "--models", "base", SFT)
    assert_user_error(ambiguous)
    assert f"'eval-1/{SFT}', 'eval-2/{SFT}'" in ambiguous.stderr


@pytest.mark.parametrize("args", [
    ["compare", "--model-a", "base", "--model-b", f"eval-2/{SFT}", "--json"],
    ["stats", "--model-a", f"eval-1/{SFT}", "--model-b", f"{SFT}@eval-2", "--family", "eval", "--metric", "acc",
     "--json"],
    ["info", "--model", f"eval-2/{SFT}", "--json"],
    ["metric-get", "--model", f"{SFT}@eval-2", "--family", "eval", "--metric", "acc"],
    ["history", "--model", f"eval-2/{SFT}", "--family", "eval", "--metric", "acc", "--json"],
    ["history", "--model", f"eval-2/{SFT}", "--json"],
], ids=["compare", "stats", "info", "metric-get", "metric-history", "model-history"])
def test_every_read_command_takes_run_qualified_names(twice: Path, args: list[str], cli) -> None:
    result = cli(args[0], "--db", twice, *args[1:])
    assert result.returncode == 0, result.stderr
    if args[0] == "metric-get":
        assert result.stdout == "0.42\n"
    elif args[0] == "info":
        assert json.loads(result.stdout)["run"] == "eval-2"
    elif args[0] == "history" and "--family" in args:
        assert [e["value"] for e in json.loads(result.stdout)] == [0.42]


def test_a_c1_name_from_the_cli_is_one_line(tmp_path: Path, cli, assert_user_error) -> None:
    with LightMLHandle(tmp_path / "c.db", "r"):
        pass
    result = cli("model-register", "--db", tmp_path / "c.db", "--run", "r", "--name", "x\x9b31m", "--path", "o/x")
    assert_user_error(result)
    assert "U+009B" in result.stderr


@pytest.mark.parametrize("args, message", [
    (["stats", "--model-a", "base", "--model-b", "dpo", "--family", "eval", "--metric", "acc", "--seed", str(10**400)],
     "seed must be an integer from 0"),
    (["stats", "--model-a", "base", "--model-b", "dpo", "--all", "--resamples", str(10**30)],
     "resamples must be an integer from 100"),
    (["top", "--family", "eval", "--metric", "acc", "--n", str(2**64)], "--n must be between 1 and"),
    (["history", "--model", "base", "--family", "eval", "--metric", "acc", "--step", str(2**64)],
     "step must be between 0 and"),
], ids=["seed", "resamples", "n", "step"])
def test_cli_integers_beyond_range_are_one_line_errors(twice: Path, args: list[str], message: str, cli,
                                                       assert_user_error) -> None:
    result = cli(args[0], "--db", twice, *args[1:])
    assert_user_error(result)
    assert message in result.stderr


@pytest.mark.parametrize("stored", ["[" + "9" * 400 + ",1]", "[1e999,0]", "[1e308,1e308]"],
                         ids=["huge-int", "overflowing-float", "sum-overflows"])
@pytest.mark.tampered  # the stored scores are changed behind the log
def test_stored_scores_beyond_range_are_a_clear_error(twice: Path, stored: str, as_an_older_tool, cli,
                                                      assert_user_error) -> None:
    as_an_older_tool(twice, "UPDATE detailed_scores SET scores = ? WHERE metric_id = (SELECT m.id FROM metrics m "
                             "JOIN model o ON o.id = m.model_id JOIN run r ON r.id = o.run_id "
                             "WHERE o.model_name = 'dpo' AND r.run_name = 'eval-1')", (stored,))
    stats = cli("stats", "--db", twice, "--model-a", "base", "--model-b", "dpo", "--family", "eval",
                "--metric", "acc")
    assert_user_error(stats)
    assert "eval/acc" in stats.stderr or "too large" in stats.stderr
    compare = cli("compare", "--db", twice, "--model-a", "base", "--model-b", "dpo", "--no-color")
    assert compare.returncode == 0, compare.stderr
    assert "not tested:" in compare.stdout


def test_stats_says_it_used_the_scores_when_the_value_differs(tmp_path: Path, cli) -> None:
    db = tmp_path / "q.db"
    with LightMLHandle(db, "r") as h:
        h.register_model("a", "org/a")
        h.register_model("b", "org/b")
        h.log_model_metric("a", "eval", "acc", 0.3113, scores=[1, 0, 1, 0, 0] * 20)  # mean 0.4
        h.log_model_metric("b", "eval", "acc", 0.5, scores=[1, 0] * 50)
    args = ["stats", "--db", db, "--model-a", "a", "--model-b", "b", "--family", "eval", "--metric", "acc"]
    data = json.loads(cli(*args, "--json").stdout)
    assert data["uses"] == "scores" and (data["stored_value_a"], data["stored_value_b"]) == (0.3113, 0.5)
    assert data["value_notes"] == ["the stored value of a is 0.3113 but the mean of its scores is 0.4000: "
                                   "this test uses the scores"]
    assert "Note: the stored value of a is 0.3113 but the mean of its scores is 0.4000" in cli(*args).stdout
    every = json.loads(cli("stats", "--db", db, "--model-a", "a", "--model-b", "b", "--all", "--json").stdout)
    assert len(every[0]["value_notes"]) == 1
