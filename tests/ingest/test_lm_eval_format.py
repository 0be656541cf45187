"""Reading lm-eval output: real files of several lm-eval versions (tests/data/README.md says how
each was made) -- a group evaluated at two n-shot values in one model folder keeps both
aggregates, and every number of a results file is imported or reported with a reason -- and
the fast path for samples files, pinned to a full parse."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from lightml.ingest.lm_eval_format import (
    NOT_METRICS,
    collect_scores,
    family_for,
    metric_name,
    parse_results,
    parse_samples,
    usual_samples,
)
from lightml.ingest.scan import ScanStats, scan_and_import


DATA = Path(__file__).resolve().parents[1] / "data"
# folder -> the lm-eval version that wrote it; each holds EleutherAI__pythia-70m, tiny_suite at 0 and 2 shots
GROUP_RUNS = {"lm_eval_049": "0.4.9.2", "lm_eval_0413_groups": "0.4.13"}


MODEL = "EleutherAI__pythia-70m"


def numbers_in(path: Path) -> list[tuple[str, str, float]]:
    """Every (task, key, number) of a results file's ``results`` and ``groups``, read here
    without LightML's parser."""
    data = json.loads(path.read_text())
    found = []
    for section in ("results", "groups"):
        for task, values in (data.get(section) or {}).items():
            for key, value in values.items():
                if key not in NOT_METRICS and isinstance(value, (int, float)) and not isinstance(value, bool):
                    found.append((task, key, value))
    return found


def unaccounted(folder: Path, stats: ScanStats, metrics: dict[tuple[str, str], float]) -> list[str]:
    """Numbers of the folder's results files that are neither stored (under some family, with
    that value) nor named in a skip of that file."""
    missing = []
    for path in sorted(folder.glob("results_*.json")):
        reasons = " ".join(s.reason for s in stats.skips if s.path == str(path))
        for task, key, value in numbers_in(path):
            name = metric_name(key)
            task_name = task.strip().removeprefix("- ")
            if any(f.startswith(task_name) and m == name and v == value for (f, m), v in metrics.items()):
                continue
            if f"{task_name}/{name}" not in reasons:
                missing.append(f"{path.name}: {task}/{key} = {value}")
    return missing


@pytest.mark.parametrize("folder", sorted(GROUP_RUNS))
def test_a_group_at_two_nshot_values_keeps_both_aggregates(folder: str, tmp_path: Path, metrics_of) -> None:
    db = tmp_path / "reg.db"
    stats = scan_and_import(db, "r", DATA / folder)
    metrics = metrics_of(db, MODEL)
    # lm-eval 0.4.9 does not list the group under n-shot: its n-shot is its subtasks'
    by_shots = {}
    for path in sorted((DATA / folder / MODEL).glob("results_*.json")):
        data = json.loads(path.read_text())
        by_shots[data["n-shot"]["tiny_mc"]] = data["results"]["tiny_suite"]["acc,none"]
    assert sorted(by_shots) == [0, 2]
    for shots, value in by_shots.items():
        assert metrics[(f"tiny_suite_{shots}shot", "acc")] == value
    assert ("tiny_suite", "acc") not in metrics
    assert not stats.skips
    assert unaccounted(DATA / folder / MODEL, stats, metrics) == []


def test_every_number_of_every_fixture_is_imported_or_reported(tmp_path: Path, metrics_of) -> None:
    for root in ["lm_eval_0413", *GROUP_RUNS]:
        db = tmp_path / f"{root}.db"
        stats = scan_and_import(db, "r", DATA / root)
        for folder in sorted((DATA / root).iterdir()):
            assert unaccounted(folder, stats, metrics_of(db, folder.name)) == [], (root, folder.name)


def test_a_value_replaced_by_a_newer_results_file_is_reported(tmp_path: Path, metrics_of) -> None:
    """The same model evaluated twice at the same n-shot and seed (real files of dummy-a and
    dummy-b, the second's seeds set to the first's: another seed would make them repeats,
    tests/api/test_repeats.py): the newer run's values are imported, and each value of the
    older run that they replace is reported as superseded, naming the newer file."""
    folder = tmp_path / "results" / "rerun"
    folder.mkdir(parents=True)
    for source in ("dummy-a", "dummy-b"):  # dummy-b's results file has the later timestamp
        for path in (DATA / "lm_eval_0413" / source).iterdir():
            shutil.copy(path, folder / path.name)
    older, newer = sorted(folder.glob("results_*.json"))
    rerun = json.loads(newer.read_text())
    rerun["config"].update({key: 0 for key in ("random_seed", "numpy_seed", "torch_seed", "fewshot_seed")})
    newer.write_text(json.dumps(rerun))
    stats = scan_and_import(tmp_path / "reg.db", "r", tmp_path / "results")
    metrics = metrics_of(tmp_path / "reg.db", "rerun")
    newer_values = json.loads(newer.read_text())["results"]
    assert metrics[("tiny_mc", "acc")] == newer_values["tiny_mc"]["acc,none"]
    superseded = [s.reason for s in stats.skips if s.path == str(older)]
    why = f"superseded by the newer results file {newer.name} (same task, same or unknown n-shot)"
    assert f"tiny_mc/acc: {why}" in superseded and f"tiny_suite/acc: {why}" in superseded
    assert unaccounted(folder, stats, metrics) == []


def test_values_lm_eval_writes_twice_or_differently_are_reported() -> None:
    """Shapes a results file can take that would lose a value silently: two keys that are
    one metric name, a group whose ``groups`` entry disagrees with its ``results`` entry."""
    data = json.loads(next((DATA / "lm_eval_049" / MODEL).glob("results_*.json")).read_text())
    data["results"]["tiny_mc"]["acc"] = 0.5  # beside "acc,none"
    data["groups"]["tiny_suite"]["acc,none"] = 0.99
    tasks, problems = parse_results(data)
    assert tasks["tiny_mc"].metrics["acc"] == data["results"]["tiny_mc"]["acc,none"]
    assert "tiny_mc/acc: the same metric as 'acc,none' (acc): not imported" in problems
    assert any(p.startswith("tiny_suite/acc: 'groups' says 0.99") for p in problems)


def test_a_group_nshot_comes_from_its_subtasks_only_when_they_agree() -> None:
    data = json.loads(next((DATA / "lm_eval_049" / MODEL).glob("results_*.json")).read_text())
    assert "tiny_suite" not in data["n-shot"]
    assert parse_results(data)[0]["tiny_suite"].nshot == data["n-shot"]["tiny_mc"]
    data["n-shot"]["tiny_math"] = 7
    assert parse_results(data)[0]["tiny_suite"].nshot is None  # mixed: not guessed


def test_one_family_rule_for_scan_and_the_example() -> None:
    assert family_for("tiny_mc", 0, {0}) == "tiny_mc"
    assert family_for("tiny_mc", 5, {0, 5}) == "tiny_mc_5shot"
    assert family_for("tiny_mc", 5, {0, 5}, "{task}_{nshot}shot") == "tiny_mc_5shot"
    assert family_for("tiny_mc", None, {None, 0}) == "tiny_mc"


# -- the fast path for samples files ---------------------------------------------------------


def parse_in_full(data: bytes):
    """The reference: every line parsed in full (what the import did before the fast path)."""
    problems, samples = [], []
    line_start = 0
    for number, line in enumerate(data.split(b"\n"), 1):
        start, line_start = line_start, line_start + len(line) + 1
        if not line.strip():
            continue
        try:
            samples.append((f"line {number}", json.loads(line), start))
        except ValueError:
            problems.append(f"line {number} is not a complete sample (truncated?): skipped")
    scores, more = collect_scores(samples)
    return scores, problems + more


SAMPLES_FILES = sorted(DATA.glob("lm_eval_*/*/samples_*.jsonl"))


@pytest.mark.parametrize("path", SAMPLES_FILES, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.name}")
def test_fast_path_matches_the_full_parse_on_real_files(path: Path) -> None:
    data = path.read_bytes()
    fast = usual_samples(data)
    assert fast is not None  # lm-eval's own files take the fast path
    lines = [json.loads(line) for line in data.splitlines() if line.strip()]
    assert len(fast) == len(lines)
    for tail, full in zip(fast, lines):  # every field it keeps is the full parse's
        assert tail == {key: full[key] for key in tail}
        assert {"doc_id", "filter", "metrics", "doc_hash", *full["metrics"]} <= tail.keys()
    assert parse_samples(data) == parse_in_full(data)


@pytest.mark.parametrize("path", SAMPLES_FILES, ids=lambda p: f"{p.parent.parent.name}/{p.parent.name}/{p.name}")
def test_each_score_knows_the_byte_offset_of_its_documents_line(path: Path) -> None:
    data = path.read_bytes()
    scores, _ = parse_samples(data)
    assert scores
    for name, sample in scores.items():
        assert len(sample.offsets) == len(sample.scores) == len(sample.doc_keys)
        for offset, key in zip(sample.offsets, sample.doc_keys):
            line = json.loads(data[offset:].split(b"\n", 1)[0])
            assert key == f"{line['doc_id']}:{line['doc_hash'][:16]}", name


def test_samples_given_without_lines_have_no_offsets() -> None:
    sample = {"doc_id": 0, "filter": "none", "metrics": ["acc"], "doc_hash": "ab", "acc": 1.0}
    scores, problems = collect_scores([("sample 1", sample, None), ("sample 2", {**sample, "doc_id": 1}, 10)])
    assert problems == [] and scores["acc"].offsets is None and scores["acc"].scores == [1.0, 1.0]
    # (where, sample) pairs, as simple_evaluate's samples are given (examples/lm_eval/run_eval.py)
    pairs, problems = collect_scores([("sample 1", sample), ("sample 2", {**sample, "doc_id": 1})])
    assert problems == [] and pairs == scores


def test_fast_path_falls_back_on_anything_unusual() -> None:
    data = (DATA / "lm_eval_0413" / "dummy-a" / next(p.name for p in SAMPLES_FILES if "tiny_mc" in p.name
                                                     and p.parent.name == "dummy-a")).read_bytes()
    lines = data.decode().splitlines()
    first = json.loads(lines[0])
    variants = {
        "trailing blank lines": data + b"\n\n",
        "a blank line inside": "\n".join(lines[:3] + [""] + lines[3:]).encode(),
        "two samples run together": "\n".join(lines[:2] + [lines[2][:100] + lines[3]] + lines[4:]).encode(),
        "CRLF": "\r\n".join(lines).encode(),
        "leading zero doc_id": "\n".join([lines[0].replace('"doc_id": 0', '"doc_id": 00')] + lines[1:]).encode(),
        "nested filter and doc keys": "\n".join([json.dumps({
            "doc_id": 0, "doc": {"a": 1, "doc": 2, "filter": "x"}, "text": 'say , "filter": no',
            **{k: v for k, v in first.items() if k not in ("doc_id", "doc")}})] + lines[1:]).encode(),
        "a value before the filter": "\n".join([json.dumps({
            "doc_id": 0, "acc": 0.5, **{k: v for k, v in first.items() if k not in ("doc_id", "acc")}})]
            + lines[1:]).encode(),
        "a dict value after the filter": "\n".join([json.dumps({**first, "extra": {"a": 1, "filter": "f"}})]
                                                   + lines[1:]).encode(),
        "a key ending in doc": "\n".join([json.dumps({"doc_id": 0, 'x"doc': 1, **first})] + lines[1:]).encode(),
        "doc in a string": "\n".join([json.dumps({**first, "doc": 'a "doc": b, "filter": c'})] + lines[1:]).encode(),
        "another doc_id": "\n".join([json.dumps({**first, "doc": {"doc_id": 7}})] + lines[1:]).encode(),
        "a filter that is a list": "\n".join([json.dumps({**first, "filter": ["x"]})] + lines[1:]).encode(),
        "not a number": "\n".join([json.dumps({**first, "acc": "x"})] + lines[1:]).encode(),
        "a doc twice": "\n".join(lines + lines[-1:]).encode(),
    }
    # truncated anywhere in the last two lines, or in the middle of the file
    ends = [len(data) - len(lines[-1]) - 1 - len(lines[-2]) + i for i in range(0, len(lines[-2]) + len(lines[-1]), 7)]
    variants.update({f"cut at {end}": data[:end] for end in ends})
    middle = len("\n".join(lines[:30]))
    variants.update({f"line 31 cut at {i}": data[:middle + i] + b"\n" + "\n".join(lines[31:]).encode()
                     for i in range(1, len(lines[30]), 11)})
    for name, variant in variants.items():
        assert parse_samples(variant) == parse_in_full(variant), name
    assert usual_samples(variants["nested filter and doc keys"]) is not None  # still the fast path
    truncated = parse_samples(data[:-40])[1]
    assert truncated == [f"line {len(lines)} is not a complete sample (truncated?): skipped"]
    sixth = lines[5].encode()
    not_utf8 = data.replace(sixth, sixth.replace(b'"doc_hash": "', b'"doc_hash": "\xff'))
    assert parse_samples(not_utf8)[1] == ["line 6 is not a complete sample (truncated?): skipped"]


def test_a_line_break_inside_a_kept_string_is_reported_not_joined() -> None:
    data = (DATA / "lm_eval_0413" / "dummy-a" / next(p.name for p in SAMPLES_FILES if "tiny_mc" in p.name
                                                     and p.parent.name == "dummy-a")).read_bytes()
    lines = data.splitlines()
    sixth = lines[5]
    at = sixth.index(b'"doc_hash": "') + len(b'"doc_hash": "') + 3
    broken = b"\n".join(lines[:5] + [sixth[:at] + b"\n" + sixth[at:]] + lines[6:])
    assert usual_samples(broken) is None
    scores, problems = parse_samples(broken)
    assert problems == ["line 6 is not a complete sample (truncated?): skipped",
                        "line 7 is not a complete sample (truncated?): skipped"]
    assert len(scores["acc"].scores) == len(lines) - 1


@pytest.mark.parametrize("sample, texts", [
    # multiple choice, 0.4.3+ arguments; the target as text or as an int
    ({"arguments": {"gen_args_0": {"arg_0": "Q?", "arg_1": " a"}, "gen_args_1": {"arg_0": "Q?", "arg_1": " b"}},
      "target": "1", "filtered_resps": [["-2.5", "False"], ["-0.5", "False"]]},
     {"prompt": "Q?", "target": "1: b", "response": "1: b"}),
    ({"arguments": {"gen_args_1": {"arg_0": "Q?", "arg_1": " b"}, "gen_args_0": {"arg_0": "Q?", "arg_1": " a"}},
      "target": 0, "filtered_resps": [[-0.1, False], [-3.0, False]]},
     {"prompt": "Q?", "target": "0: a", "response": "0: a"}),
    # earlier 0.4 releases: a list of [context, continuation]
    ({"arguments": [["Q?", " a"], ["Q?", " b"]], "target": 1, "filtered_resps": [[-1.0, False], [-2.0, False]]},
     {"prompt": "Q?", "target": "1: b", "response": "0: a"}),
    # generation: the filtered answer
    ({"arguments": {"gen_args_0": {"arg_0": "Compute 2+2.", "arg_1": {"until": ["\n"]}}}, "target": "4",
      "filtered_resps": ["5"]}, {"prompt": "Compute 2+2.", "target": "4", "response": "5"}),
    # odd targets and keys stay as they are, never an error
    ({"arguments": {"gen_args_²": {"arg_0": "Q?", "arg_1": " a"}, "gen_args_1": {"arg_0": "Q?", "arg_1": " b"}},
      "target": "9" * 5000, "filtered_resps": "x"}, {"prompt": "Q?", "target": "9" * 5000, "response": "x"}),
    ({}, {"prompt": None, "target": None, "response": None}),
])
def test_the_texts_of_a_sample(sample: dict, texts: dict) -> None:
    from lightml.ingest.lm_eval_format import sample_texts

    assert sample_texts(sample) == texts
