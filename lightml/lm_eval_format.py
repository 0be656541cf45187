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
    problems: list[str] = []
    try:
        handle = path.open("r", encoding="utf-8")
    except OSError as exc:
        return {}, [f"cannot read it ({exc.__class__.__name__}: {exc})"]

    def samples():
        with handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    yield f"line {number}", json.loads(line)
                except json.JSONDecodeError:
                    problems.append(f"line {number} is not a complete sample (truncated?): skipped")

    scores, more = collect_scores(samples())
    return scores, problems + more


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
