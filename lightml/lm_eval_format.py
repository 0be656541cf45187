"""Reading lm-evaluation-harness output (0.4.x): results files and per-sample files.

``lm_eval --output_path OUT [--log_samples]`` writes, per model,
``OUT/<model>/results_<time>.json`` and ``samples_<task>_<time>.jsonl``. Pure functions:
files in, plain data out, every problem reported as a reason (never an exception).

Naming (documented in the README):
- family = the task (or group) name, indentation and a leading ``- `` removed;
- metric = the key without its filter when the filter is ``none`` (``acc,none`` -> ``acc``),
  with it otherwise (``exact_match,strict-match`` stays ``exact_match,strict-match``), so two
  filters never collapse into one metric; stderr values are kept (``acc_stderr``);
- ``alias``, ``name``, ``sample_len``, ``sample_count`` and ``"N/A"`` values are not metrics.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

NOT_METRICS = frozenset({"alias", "name", "sample_len", "sample_count"})
_RESULTS_TIME = re.compile(r"^results_(.+)\.json$")


def family_name(task: str) -> str:
    return re.sub(r"^\s*-\s+", "", task).strip()


def metric_name(key: str) -> str:
    metric, _, filter_name = key.partition(",")
    return metric if filter_name in ("", "none") else f"{metric},{filter_name}"


def results_time(path: Path) -> str | None:
    """The timestamp in ``results_<time>.json`` (also the suffix of its samples files)."""
    match = _RESULTS_TIME.match(path.name)
    return match.group(1) if match else None


@dataclass
class TaskResult:
    task: str
    nshot: int | None
    n_effective: int | None
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class ResultsFile:
    path: Path
    time: str | None
    tasks: dict[str, TaskResult]
    model_name: str | None
    pretrained: str | None
    problems: list[str] = field(default_factory=list)  # values that were not imported, and why


def _pretrained(config: dict[str, Any]) -> str | None:
    """``pretrained=`` from model_args: a string ``a=b,c=d`` (0.4.9) or a dict (0.4.13)."""
    args = config.get("model_args")
    if isinstance(args, dict):
        value = args.get("pretrained")
        return str(value) if value else None
    if isinstance(args, str):
        for part in args.split(","):
            key, _, value = part.partition("=")
            if key.strip() == "pretrained" and value.strip():
                return value.strip()
    return None


def read_results(path: Path) -> ResultsFile | str:
    """A results file, or the reason it cannot be imported."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        return f"cannot read it ({exc.__class__.__name__}: {exc})"
    except json.JSONDecodeError as exc:
        return f"not valid JSON ({exc})"
    except RecursionError:  # json.loads of ~1,000 nested brackets
        return "not valid JSON (nested too deeply)"
    if not isinstance(data, dict) or not isinstance(data.get("results"), dict):
        return "no 'results' in it (not an lm-eval results file)"
    n_shot = data.get("n-shot") if isinstance(data.get("n-shot"), dict) else {}
    n_samples = data.get("n-samples") if isinstance(data.get("n-samples"), dict) else {}
    groups = data.get("groups") if isinstance(data.get("groups"), dict) else {}
    problems: list[str] = []
    tasks: dict[str, TaskResult] = {}
    # Groups are in "results" too in 0.4.9, only under "groups" in 0.4.13: take each once.
    for task, values in list(data["results"].items()) + [(g, v) for g, v in groups.items() if g not in data["results"]]:
        if not isinstance(values, dict):
            problems.append(f"{task}: not a dict of metrics")
            continue
        family = family_name(task)
        shots = n_shot.get(task)
        effective = n_samples.get(task, {}).get("effective") if isinstance(n_samples.get(task), dict) else None
        result = TaskResult(task=family, nshot=shots if isinstance(shots, int) else None,
                            n_effective=effective if isinstance(effective, int) else None)
        for key, value in values.items():
            if key in NOT_METRICS or value == "N/A":
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                problems.append(f"{family}/{metric_name(key)}: {value!r} is not a finite number")
                continue
            result.metrics[metric_name(key)] = float(value)
        tasks[family] = result
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    model_name = data.get("model_name") if isinstance(data.get("model_name"), str) else None
    return ResultsFile(path=path, time=results_time(path), tasks=tasks, model_name=model_name or None,
                       pretrained=_pretrained(config), problems=problems)


@dataclass
class SampleScores:
    """Per-document values of one metric, ordered by doc_id."""

    scores: list[float]
    doc_keys: list[str]  # "<doc_id>:<doc_hash prefix>": the document, and its content


def read_samples(path: Path) -> tuple[dict[str, SampleScores], list[str]]:
    """metric name -> its per-document scores, and the problems met (bad lines are skipped)."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        return {}, [f"cannot read it ({exc.__class__.__name__}: {exc})"]
    return parse_samples(data)


def parse_samples(data: bytes) -> tuple[dict[str, SampleScores], list[str]]:
    """The content of a samples file -> metric name -> its per-document scores, and the
    problems met (bad lines are skipped)."""
    samples = usual_samples(data)
    if samples is not None:
        scores = _by_column(samples)
        if scores is not None:
            return scores, []
        return collect_scores((f"line {number}", sample) for number, sample in enumerate(samples, 1))
    problems: list[str] = []

    def every_line():  # the general case: each line parsed in full, a bad one reported and skipped
        for number, line in enumerate(data.split(b"\n"), 1):
            if not line.strip():
                continue
            try:
                yield f"line {number}", json.loads(line)
            except (ValueError, RecursionError):  # JSONDecodeError, bytes that are not UTF-8, deep nesting
                problems.append(f"line {number} is not a complete sample (truncated?): skipped")

    scores, more = collect_scores(every_line())
    return scores, problems + more


# The middle of a samples line as lm-eval writes it (json.dumps of a dict): from "doc" (the
# key after doc_id) to the last top-level "filter" key, after which comes all collect_scores reads.
_MIDDLE = re.compile(rb'"doc": [^\n]*, "filter": ')
_DOC_ID = b'"doc_id": '


def usual_samples(data: bytes) -> list[dict[str, Any]] | None:
    """The samples of a file in lm-eval's usual shape, parsed fast; None for any other file
    (then every line is parsed in full, and each bad one reported).

    lm-eval writes each sample with ``json.dumps`` of a dict whose keys are ``doc_id``,
    ``doc``, ``target``, ``arguments``, ``resps``, ``filtered_resps``, then ``filter``,
    ``metrics``, ``doc_hash``, ``prompt_hash``, ``target_hash`` and one value per metric. The
    document, prompts and responses are most of the bytes and are not needed: one regex pass
    cuts each line from ``"doc": `` to the last ``, "filter": ``, and the file is parsed in
    one ``json.loads``. Only top-level keys can be cut that way: inside a string a quote is
    escaped, and from or to a nested key the brackets no longer balance and the parse fails.
    The file is refused (None) if anything is unexpected: a line that does not parse
    (truncated), a blank line, a line break inside a string, a ``doc_id`` elsewhere (two
    samples run together), or a sample without an int ``doc_id``, a string ``filter``,
    ``metrics``, ``doc_hash`` or the value of a metric.
    Not checked: the bytes that were cut (a line damaged only in its middle is taken)."""
    compact = _MIDDLE.sub(b'"filter": ', data).rstrip()
    try:
        samples = json.loads(b"[" + compact.replace(b"\n", b",") + b"]")
    except (ValueError, RecursionError):
        return None
    # One sample per line: a line break inside a string would join two broken lines into one
    # that parses; one doc_id per sample: two samples run together on one line.
    if compact.count(b"\n") + 1 != len(samples) or data.count(_DOC_ID) != len(samples):
        return None
    for sample in samples:
        if sample.__class__ is not dict or sample.get("doc_id").__class__ is not int \
                or sample.get("filter").__class__ is not str or "doc_hash" not in sample:
            return None
        names = sample.get("metrics")
        if names.__class__ is not list or not all(name.__class__ is str and name in sample for name in names):
            return None
    return samples


def _by_column(samples: list[dict[str, Any]]) -> dict[str, SampleScores] | None:
    """``collect_scores`` for the usual file, a column at a time (a third of the time): per
    filter, every sample names the same metrics, each value is a finite float, and doc_ids
    (ints, checked by ``usual_samples``) increase. None if anything else: ``collect_scores``
    then handles (and reports) it sample by sample."""
    by_filter: dict[str, list[dict[str, Any]]] = {}
    for sample in samples:
        by_filter.setdefault(sample["filter"], []).append(sample)
    result = {}
    for filter_name, group in by_filter.items():
        names = group[0]["metrics"]
        ids = [sample["doc_id"] for sample in group]
        hashes = [sample["doc_hash"] for sample in group]
        if any(sample["metrics"] != names for sample in group) or not all(a < b for a, b in zip(ids, ids[1:])) \
                or not all(h.__class__ is str for h in hashes):
            return None
        keys = [f"{doc_id}:{doc_hash[:16]}" for doc_id, doc_hash in zip(ids, hashes)]
        for name in names:
            values = [sample[name] for sample in group]
            full_name = metric_name(f"{name},{filter_name}")
            if full_name in result or not all(v.__class__ is float for v in values) \
                    or not all(map(math.isfinite, values)):
                return None
            result[full_name] = SampleScores(scores=values, doc_keys=keys)
    return result


def collect_scores(samples) -> tuple[dict[str, SampleScores], list[str]]:
    """Per-sample dicts as lm-eval writes them (``doc_id``, ``filter``, ``metrics``, ``doc_hash``
    and one value per metric), given as (where, sample) pairs -> metric name -> scores by doc_id.
    Also what ``lm_eval.simple_evaluate(..., log_samples=True)["samples"][task]`` holds."""
    per_metric: dict[str, list[tuple[Any, str, float]]] = {}
    problems: list[str] = []
    names_of: dict[tuple[str, str], str] = {}  # (metric, filter) -> stored name, computed once
    for where, sample in samples:
        try:
            doc_id = sample["doc_id"]
            filter_name = sample.get("filter", "none")
            names = sample.get("metrics") or []
            hash(filter_name)  # a key of names_of below: a list here is a broken sample, not a crash
        except (KeyError, TypeError, AttributeError):
            problems.append(f"{where} is not a complete sample (truncated?): skipped")
            continue
        key = f"{doc_id}:{str(sample.get('doc_hash', ''))[:16]}"
        for name in names:
            value = sample.get(name)
            if value.__class__ is not float:  # the usual case is a float: check the rest
                if isinstance(value, bool) or isinstance(value, int):
                    value = float(value)
                if not isinstance(value, float):
                    problems.append(f"{where}: {name} = {value!r} is not a number: skipped")
                    continue
            if not math.isfinite(value):
                problems.append(f"{where}: {name} = {value!r} is not a number: skipped")
                continue
            full_name = names_of.get((name, filter_name))
            if full_name is None:
                full_name = names_of[(name, filter_name)] = metric_name(f"{name},{filter_name}")
            per_metric.setdefault(full_name, []).append((doc_id, key, value))
    result = {}
    for name, rows in per_metric.items():
        if not _sorted_by_doc_id(rows):
            rows.sort(key=lambda row: (0, row[0], "") if isinstance(row[0], int) else (1, 0, str(row[0])))
        keys = [k for _, k, _ in rows]
        if len(set(keys)) != len(keys):
            problems.append(f"{name}: a document appears twice: scores not attached")
            continue
        result[name] = SampleScores(scores=[v for _, _, v in rows], doc_keys=keys)
    return result, problems


def _sorted_by_doc_id(rows: list[tuple]) -> bool:
    """lm-eval writes samples in doc_id order: check that instead of sorting (cheaper)."""
    ids = [row[0] for row in rows]
    if not all(i.__class__ is int for i in ids):
        return False
    return all(a < b for a, b in zip(ids, ids[1:]))
