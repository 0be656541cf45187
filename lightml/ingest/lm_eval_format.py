"""Reading lm-evaluation-harness output (0.4.x): results files and per-sample files.

``lm_eval --output_path OUT [--log_samples]`` writes, per model,
``OUT/<model>/results_<time>.json`` and ``samples_<task>_<time>.jsonl``. Pure functions:
files in, plain data out, every problem reported as a reason (never an exception).

Naming (documented in the README):
- family = the task (or group) name, indentation and a leading ``- `` removed;
- metric = the key without its filter when the filter is ``none`` (``acc,none`` -> ``acc``),
  with it otherwise (``exact_match,strict-match`` stays ``exact_match,strict-match``), so two
  filters never collapse into one metric; stderr values are kept (``acc_stderr``);
- ``alias``, ``name``, ``sample_len``, ``sample_count`` and ``"N/A"`` values are not metrics
  (labels, and the document counts that ``n-samples`` also gives);
- a task (or group) seen at more than one n-shot value gets one family per value,
  ``<family>_<n>shot``, unless the family template already uses ``{nshot}``
  (``family_for``): ``scan`` applies it to the results files of a model folder,
  ``examples/lm_eval/run_eval.py`` to the shot values of its config, so both name a result
  alike;
- a group's n-shot, which some 0.4.x versions (0.4.9) leave out of ``n-shot``, is its
  subtasks' when they all agree.
Every other value of ``results`` and ``groups`` is imported or reported as a problem.
"""

from __future__ import annotations

import json
import math
import re
import string
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from lightml.errors import InvalidInputError
from lightml.log import codec
from lightml.write.validation import check_setting

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
    settings: dict[str, Any] = field(default_factory=dict)  # this task's part (``task_settings``)


@dataclass
class ResultsFile:
    path: Path
    time: str | None
    tasks: dict[str, TaskResult]
    model_name: str | None
    pretrained: str | None
    problems: list[str] = field(default_factory=list)  # values that were not imported, and why
    settings: dict[str, Any] = field(default_factory=dict)  # what every task shares (``run_settings``)


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
    tasks, problems = parse_results(data)
    config = data.get("config") if isinstance(data.get("config"), dict) else {}
    model_name = data.get("model_name") if isinstance(data.get("model_name"), str) else None
    return ResultsFile(path=path, time=results_time(path), tasks=tasks, model_name=model_name or None,
                       pretrained=_pretrained(config), problems=problems, settings=run_settings(data))


def _section(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def parse_results(data: dict[str, Any]) -> tuple[dict[str, TaskResult], list[str]]:
    """The tasks and groups of lm-eval's results (the content of a results file, or what
    ``lm_eval.simple_evaluate`` returns) -> family -> its result, and every value left out
    with the reason."""
    results, groups = _section(data, "results"), _section(data, "groups")
    n_shot, n_samples = _section(data, "n-shot"), _section(data, "n-samples")
    subtasks = _section(data, "group_subtasks")
    problems: list[str] = []
    tasks: dict[str, TaskResult] = {}
    keys: dict[str, str] = {}  # family -> the key of results/groups it came from
    # Groups are in "results" too in 0.4.9, only under "groups" in 0.4.13: take each once.
    entries = list(results.items()) + [(g, v) for g, v in groups.items() if g not in results]
    for task, values in entries:
        if not isinstance(values, dict):
            problems.append(f"{task}: not a dict of metrics")
            continue
        family = family_name(str(task))
        if family in keys:
            problems.append(f"{task}: the same family as {keys[family]!r} ({family}): not imported")
            continue
        keys[family] = task
        samples = n_samples.get(task)
        effective = samples.get("effective") if isinstance(samples, dict) else None
        result = TaskResult(task=family, nshot=group_nshot(task, n_shot, subtasks),
                            n_effective=effective if isinstance(effective, int) else None)
        result.settings = task_settings(data, task, result.nshot)
        problems.extend(_take_metrics(family, values, result.metrics))
        if task in groups and task in results:
            problems.extend(_differing_group_values(family, values, groups[task]))
        tasks[family] = result
    return tasks, problems


# -- eval settings ---------------------------------------------------------------------------
#
# Every value of a results file that says how its numbers were produced, as flat settings
# (``settings=``): the file's part, which all its tasks share, and each task's part. Names
# follow lm-eval's own, except where the comparability check needs one name for one meaning
# (``lightml.read.settings.DECISIVE_KEYS``): harness and harness_version, task_version and
# task_hash, num_fewshot, chat_template_applied/_sha, system_instruction_applied/_sha.


def run_settings(data: dict[str, Any]) -> dict[str, Any]:
    """The settings every task of a results file shares: the harness and its version, the
    ``config`` section (model, model_args, batch size, limit, gen_kwargs, seeds, device, the
    model's revision and sha when recorded...), chat template and system instruction
    (applied or not, and their hashes), few-shot as multi-turn, git hash, date."""
    found: dict[str, Any] = {"harness": "lm-eval"}
    version = data.get("lm_eval_version")
    if isinstance(version, str) and version:
        found["harness_version"] = version
    config = data.get("config")
    for key, value in (config.items() if isinstance(config, dict) else ()):
        found[str(key)] = value
    for what in ("chat_template", "system_instruction"):
        if what in data:
            found[f"{what}_applied"] = bool(data.get(what))
            if data.get(f"{what}_sha"):
                found[f"{what}_sha"] = data.get(f"{what}_sha")
    for key in ("fewshot_as_multiturn", "git_hash", "transformers_version"):
        found[key] = data.get(key)
    date = data.get("date")
    if isinstance(date, (int, float)) and not isinstance(date, bool) and math.isfinite(date) and 0 < date < 1e11:
        found["date"] = datetime.fromtimestamp(date, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return _flat(found)


SEED_KEYS = ("random_seed", "numpy_seed", "torch_seed", "fewshot_seed")


def seed_label(settings: dict[str, Any]) -> str | None:
    """The repeat label of a results file's run, from its seeds (``run_settings``): ``seed=1234``
    when every seed lm-eval recorded is the same number, else each one (``random_seed=0,
    numpy_seed=1234,...``); None when none was recorded."""
    seeds = {key: settings[key] for key in SEED_KEYS if settings.get(key) is not None}
    if not seeds:
        return None
    if len(set(map(str, seeds.values()))) == 1:
        return f"seed={next(iter(seeds.values()))}"
    return ",".join(f"{key}={value}" for key, value in seeds.items())


def task_settings(data: dict[str, Any], task: str, nshot: int | None) -> dict[str, Any]:
    """One task's (or group's) part: its version and hash, n-shot, generation arguments."""
    found: dict[str, Any] = {"num_fewshot": nshot}
    versions, hashes = _section(data, "versions"), _section(data, "task_hashes")
    if versions.get(task) is not None:
        found["task_version"] = str(versions[task])  # 1.0 in one version, "1.0" in another
    found["task_hash"] = hashes.get(task)
    config = _section(data, "configs").get(task)
    if isinstance(config, dict):
        found["generation_kwargs"] = config.get("generation_kwargs")
    return _flat(found)


def _flat(found: dict[str, Any]) -> dict[str, Any]:
    """Settings as ``settings=`` takes them: None and empty values left out, a list or dict
    as its compact JSON text, a value the registry refuses (say, a terminal escape) left out."""
    flat: dict[str, Any] = {}
    for key, value in found.items():
        if value is None or value == "N/A" or (isinstance(value, (list, dict, str)) and not value):
            continue
        if isinstance(value, (list, dict)):
            try:
                value = json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
            except (TypeError, ValueError, RecursionError):
                continue
        try:
            flat[key] = check_setting(key, value)
        except InvalidInputError:
            continue
    return flat


def _take_metrics(family: str, values: dict[str, Any], into: dict[str, float]) -> list[str]:
    """The metric values of one task into ``into``; the problems of the others."""
    problems = []
    seen: dict[str, str] = {}  # metric name -> the key it came from ("acc,none" and "acc" are one name)
    for key, value in values.items():
        if key in NOT_METRICS or value == "N/A":
            continue
        name = metric_name(str(key))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            problems.append(f"{family}/{name}: {_short(value)} is not a finite number")
            continue
        if name in seen:
            problems.append(f"{family}/{key}: the same metric as {seen[name]!r} ({name}): not imported")
            continue
        seen[name] = key
        into[name] = float(value)
    return problems


def _differing_group_values(family: str, in_results: dict[str, Any], in_groups: Any) -> list[str]:
    """A group listed in both ``results`` and ``groups`` is imported from ``results``; a value
    that ``groups`` gives differently is reported."""
    if not isinstance(in_groups, dict):
        return [f"{family}: 'groups' holds no dict of metrics for it (its 'results' entry was imported)"]
    return [f"{family}/{metric_name(str(key))}: 'groups' says {_short(value)}, 'results' says "
            f"{_short(in_results.get(key))}: the value of 'results' was imported"
            for key, value in in_groups.items()
            if key not in NOT_METRICS and value != "N/A" and in_results.get(key) != value]


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def group_nshot(task: str, n_shot: dict[str, Any], subtasks: dict[str, Any]) -> int | None:
    """The n-shot of a task, or of a group that ``n-shot`` does not list (lm-eval 0.4.9):
    its subtasks', when they all have the same (nested groups included). None if unknown."""
    pending, seen, values = [task], set(), set()
    while pending:
        name = pending.pop()
        if name in seen:
            continue
        seen.add(name)
        shots = n_shot.get(name)
        if isinstance(shots, int) and not isinstance(shots, bool):
            values.add(shots)
        elif isinstance(subtasks.get(name), list):
            pending.extend(s for s in subtasks[name] if isinstance(s, str))
        else:
            return None  # a subtask (or the task) of unknown n-shot: the group's is unknown too
    return values.pop() if len(values) == 1 else None


def family_for(task: str, nshot: int | None, nshots_of_task: set, template: str = "{task}") -> str:
    """The family of a task's result: ``template`` (``{task}``, ``{nshot}``), and
    ``_<n>shot`` after it when the task is seen at more than one n-shot value and the
    template does not say which. ``nshots_of_task`` holds every n-shot value the task is
    seen at (None: unknown): in one model folder for ``scan``, in one config for the example."""
    family = template.format(task=task, nshot="" if nshot is None else nshot)
    if nshot is not None and len(nshots_of_task) > 1 and not template_uses_nshot(template):
        family = f"{family}_{nshot}shot"
    return family


def template_uses_nshot(template: str) -> bool:
    return any(name == "nshot" for _, name, _, _ in string.Formatter().parse(template))


@dataclass
class SampleScores:
    """Per-document values of one metric, ordered by doc_id."""

    scores: list[float]
    doc_keys: list[str]  # "<doc_id>:<doc_hash prefix>": the document, and its content
    offsets: list[int] | None = None  # byte offset of each document's line in the samples file


def line_starts(data: bytes, count: int) -> list[int]:
    """The byte offsets of the first ``count`` lines of ``data``."""
    starts, at, find = [0], 0, data.find
    for _ in range(count - 1):
        at = find(b"\n", at) + 1
        starts.append(at)
    return starts


def parse_samples(data: bytes) -> tuple[dict[str, SampleScores], list[str]]:
    """The content of a samples file -> metric name -> its per-document scores (with the byte
    offset of each document's line), and the problems met (bad lines are skipped)."""
    samples = usual_samples(data)
    if samples is not None:
        # (usual_samples checked: one sample per line, from the first line on)
        starts = line_starts(data, len(samples))
        scores = _by_column(samples, starts)
        if scores is not None:
            return scores, []
        return collect_scores((f"line {number}", sample, start)
                              for number, (sample, start) in enumerate(zip(samples, starts), 1))
    problems: list[str] = []

    def every_line():  # the general case: each line parsed in full, a bad one reported and skipped
        start = 0
        for number, line in enumerate(data.split(b"\n"), 1):
            line_start, start = start, start + len(line) + 1
            if not line.strip():
                continue
            try:
                yield f"line {number}", json.loads(line), line_start
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
        # (orjson, faster. Where it reads otherwise than json.loads, an integer beyond 64 bits
        # becomes a float: a doc_id then is no int, so the file is refused here and every line
        # parsed by json.loads; a value becomes the float a score of it is stored as anyway)
        samples = codec.loads(b"[" + compact.replace(b"\n", b",") + b"]")
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


def _by_column(samples: list[dict[str, Any]], starts: list[int]) -> dict[str, SampleScores] | None:
    """``collect_scores`` for the usual file, a column at a time (a third of the time): per
    filter, every sample names the same metrics, each value is a finite float, and doc_ids
    (ints, checked by ``usual_samples``) increase. None if anything else: ``collect_scores``
    then handles (and reports) it sample by sample."""
    by_filter: dict[str, list[dict[str, Any]]] = {}
    for sample in samples:
        by_filter.setdefault(sample["filter"], []).append(sample)
    if len(by_filter) == 1:
        lines_of = {filter_name: starts for filter_name in by_filter}
    else:  # several filters: each has its own lines
        lines_of = {}
        for sample, start in zip(samples, starts):
            lines_of.setdefault(sample["filter"], []).append(start)
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
            result[full_name] = SampleScores(scores=values, doc_keys=keys, offsets=lines_of[filter_name])
    return result


def collect_scores(samples) -> tuple[dict[str, SampleScores], list[str]]:
    """Per-sample dicts as lm-eval writes them (``doc_id``, ``filter``, ``metrics``, ``doc_hash``
    and one value per metric), given as (where, sample) pairs, or (where, sample, byte offset
    of its line) from a samples file -> metric name -> scores by doc_id (with their lines'
    offsets when every one is known). Also what
    ``lm_eval.simple_evaluate(..., log_samples=True)["samples"][task]`` holds."""
    per_metric: dict[str, list[tuple[Any, str, float, int | None]]] = {}
    problems: list[str] = []
    names_of: dict[tuple[str, str], str] = {}  # (metric, filter) -> stored name, computed once
    for item in samples:
        where, sample = item[0], item[1]
        line_start = item[2] if len(item) > 2 else None
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
            per_metric.setdefault(full_name, []).append((doc_id, key, value, line_start))
    result = {}
    for name, rows in per_metric.items():
        if not _sorted_by_doc_id(rows):
            rows.sort(key=lambda row: (0, row[0], "") if isinstance(row[0], int) else (1, 0, str(row[0])))
        keys = [row[1] for row in rows]
        if len(set(keys)) != len(keys):
            problems.append(f"{name}: a document appears twice: scores not attached")
            continue
        offsets = [row[3] for row in rows]
        result[name] = SampleScores(scores=[row[2] for row in rows], doc_keys=keys,
                                    offsets=None if None in offsets else offsets)
    return result, problems


def _sorted_by_doc_id(rows: list[tuple]) -> bool:
    """lm-eval writes samples in doc_id order: check that instead of sorting (cheaper)."""
    ids = [row[0] for row in rows]
    if not all(i.__class__ is int for i in ids):
        return False
    return all(a < b for a, b in zip(ids, ids[1:]))


# -- the texts of one sample (for ``flips``) -------------------------------------------------


def _requests(sample: dict[str, Any]) -> list[tuple[Any, Any]]:
    """(context, continuation or generation kwargs) of each request of the sample: 0.4.3 and
    later write ``{"gen_args_0": {"arg_0": ..., "arg_1": ...}, ...}``, earlier 0.4 releases a
    list of ``[context, continuation]``."""
    arguments = sample.get("arguments")
    if isinstance(arguments, dict):
        pairs = [value for _, value in sorted(arguments.items(), key=lambda kv: _request_number(kv[0]))]
        return [(pair.get("arg_0"), pair.get("arg_1")) for pair in pairs if isinstance(pair, dict)]
    if isinstance(arguments, list):
        return [(pair[0], pair[1] if len(pair) > 1 else None) for pair in arguments
                if isinstance(pair, (list, tuple)) and pair]
    return []


def _request_number(key: str) -> int:
    return _small_int(key.rpartition("_")[2]) or 0


def _small_int(text: Any) -> int | None:
    """``"12"`` -> 12; None for anything else (a long digit string included: int() of one
    beyond 4,300 digits raises)."""
    if isinstance(text, bool):
        return None
    if isinstance(text, int):
        return text
    if isinstance(text, str) and text.isascii() and text.isdigit() and len(text) <= 18:
        return int(text)
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def sample_texts(sample: dict[str, Any]) -> dict[str, str | None]:
    """``prompt``, ``target`` and ``response`` of one lm-eval sample, as a reader wants them.

    A multiple-choice sample (several requests, each a context and a continuation) shows the
    gold choice as its target and the choice with the highest log-likelihood (acc's rule) as
    its response, each as ``"<index>: <choice>"``; a generation sample its target and its
    filtered response (what the metric scored)."""
    requests = _requests(sample)
    prompt = _text(requests[0][0]) if requests else None
    choices = [continuation for _, continuation in requests]
    multiple_choice = len(choices) > 1 and all(isinstance(choice, str) for choice in choices)
    target, response = sample.get("target"), sample.get("filtered_resps")
    if multiple_choice:
        index = _small_int(target)  # lm-eval writes the gold choice's index, as an int or as text
        if index is not None and 0 <= index < len(choices):
            target = f"{index}: {choices[index].strip()}"
        likelihoods = [_first_number(choice) for choice in response] if isinstance(response, list) else []
        if len(likelihoods) == len(choices) and None not in likelihoods:
            best = max(range(len(choices)), key=likelihoods.__getitem__)
            response = f"{best}: {choices[best].strip()}"
    elif isinstance(response, list) and len(response) == 1:
        response = response[0]
    return {"prompt": prompt, "target": _text(target), "response": _text(response)}


def _first_number(value: Any) -> float | None:
    """A log-likelihood as lm-eval writes it in filtered_resps: ``[loglik, is_greedy]``, the
    numbers sometimes as text."""
    if isinstance(value, (list, tuple)) and value:
        value = value[0]
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None
