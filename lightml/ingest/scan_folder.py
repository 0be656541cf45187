"""One model folder of a scan, read: which files it has, what they say (lm-eval results and
samples files, or generic JSON), which values and per-sample scores to log, and every
problem met on the way. Nothing here touches a registry: ``lightml.ingest.scan`` writes
what this reads.
"""

from __future__ import annotations

import hashlib
import json
import math
import string
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lightml.errors import InvalidInputError, LightMLError
from lightml.ingest import lm_eval_format
from lightml.log import events as ev
from lightml.write import metric_log
from lightml.write.validation import check_name, settings_text


@dataclass
class Skip:
    """A file, folder or value a scan left out, and why."""

    path: str
    reason: str


@dataclass
class ValueSource:
    """The results file (and its task) that gave a metric its value: only that file's
    samples may give the metric its per-sample scores."""

    results: lm_eval_format.ResultsFile
    task: lm_eval_format.TaskResult
    family: str


@dataclass
class ParsedFolder:
    """One model folder, parsed: what to log, and the problems met on the way (reported
    only if the folder is imported: an unchanged folder stays quiet)."""

    model: str
    path: str
    metrics: dict[tuple[str, str], float] = field(default_factory=dict)
    sources: dict[tuple[str, str], ValueSource] = field(default_factory=dict)
    scores: dict[tuple[str, str], lm_eval_format.SampleScores] = field(default_factory=dict)
    # (family, metric) -> the samples file its scores came from: (absolute path, SHA-256, size, mtime_ns)
    score_files: dict[tuple[str, str], tuple[str, str, int, int]] = field(default_factory=dict)
    skips: list[Skip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    # repeat label -> that seed's part of the metrics that results files of several seeds gave
    # (the same task and n-shot run again with another seed): logged as repeats, not superseded
    repeats: dict[str, "ParsedFolder"] = field(default_factory=dict)

    def all_metrics(self) -> set[tuple[str, str]]:
        """(family, metric) of every value to log, its repeats' included."""
        return set(self.metrics).union(*(part.metrics for part in self.repeats.values()))


# -- the files of a model folder -------------------------------------------------------------


def _results_files(folder: Path) -> list[Path]:
    """lm-eval results files, oldest first (their names carry the time)."""
    named = sorted(p for p in folder.glob("results_*.json") if p.is_file())
    if named:
        return named
    return sorted(p for p in folder.glob("*.json") if p.is_file())  # 1.2: any JSON with "results"


def _json_files(folder: Path) -> list[Path]:
    preferred = sorted(p for p in folder.glob("*.json") if p.is_file() and p.name.startswith(("metrics", "results")))
    return preferred or sorted(p for p in folder.glob("*.json") if p.is_file())


def candidate_files(folder: Path, fmt: str) -> list[Path]:
    if fmt == "json":
        return _json_files(folder)
    return _results_files(folder) + sorted(p for p in folder.glob("samples_*.jsonl") if p.is_file())


# -- parsing --------------------------------------------------------------------------------


def check_family_template(template: str) -> bool:
    """Refuse a template that could fail or mislead later (before anything is written);
    return whether it uses ``{nshot}``. Fields: ``{task}`` (required) and ``{nshot}`` (an int,
    or empty when the results give no n-shot), with an optional conversion and format spec."""
    how = "fields {task} (required) and {nshot}, e.g. '{task}_{nshot}shot'"
    if not isinstance(template, str):
        raise InvalidInputError(f"family_template must be a string ({how})")
    try:
        fields = [(name, spec) for _, name, spec, _ in string.Formatter().parse(template) if name is not None]
    except ValueError as exc:  # e.g. an unclosed "{task"
        raise InvalidInputError(f"bad family_template {template!r}: {exc} ({how})") from None
    for name, spec in fields:
        # Attribute or index access ({task.name}, {task[0]}), positional fields and fields
        # nested in a spec would reach into Python objects or need arguments we do not give.
        if name not in ("task", "nshot"):
            raise InvalidInputError(f"bad family_template {template!r}: unknown field {{{name}}} ({how})")
        if "{" in spec:
            raise InvalidInputError(f"bad family_template {template!r}: a field inside a format spec ({how})")
    if "task" not in {name for name, _ in fields}:
        raise InvalidInputError(f"bad family_template {template!r}: it must use {{task}} ({how})")
    for nshot in (0, ""):  # both values the template will meet
        try:
            template.format(task="t", nshot=nshot)
        except (ValueError, TypeError) as exc:  # a bad conversion or format spec
            raise InvalidInputError(f"bad family_template {template!r}: {exc} ({how})") from None
    return lm_eval_format.template_uses_nshot(template)


def parse_lm_eval(folder: Path, model: str, family_template: str, name_from: str) -> ParsedFolder:
    """The results files only (small); the samples come later, if the folder is imported."""
    parsed = ParsedFolder(model=model, path=str(folder))
    results = []
    for path in _results_files(folder):
        read = lm_eval_format.read_results(path)
        if isinstance(read, str):
            parsed.skips.append(Skip(str(path), read))
            continue
        results.append(read)
        parsed.skips.extend(Skip(str(path), problem) for problem in read.problems)
    if not results:
        return parsed
    if name_from == "results":
        newest = results[-1]
        parsed.model = newest.model_name or newest.pretrained or model
        parsed.path = newest.pretrained or parsed.path
    uses_nshot = check_family_template(family_template)
    # A task evaluated at two n-shot values must not overwrite itself: those get "_<n>shot".
    shots: dict[str, set] = {}
    for r in results:
        for task, result in r.tasks.items():
            shots.setdefault(task, set()).add(result.nshot)
    owner: dict[str, str] = {}  # family -> the task it was made from
    labels = [lm_eval_format.seed_label(r.settings) for r in results]
    seeds: dict[str, set] = {}  # family -> the seed labels of the files that give it
    for r, label in zip(results, labels):
        for task, result in r.tasks.items():
            seeds.setdefault(lm_eval_format.family_for(task, result.nshot, shots[task], family_template),
                             set()).add(label)
    for r, label in zip(results, labels):  # oldest first: the newest value of a metric wins, with its own samples only
        for task, result in r.tasks.items():
            family = lm_eval_format.family_for(task, result.nshot, shots[task], family_template)
            if owner.setdefault(family, task) != task:  # e.g. "{task:.4}" cuts two names to one
                parsed.skips.append(Skip(str(r.path), f"{task}: the family template names it {family!r}, like "
                                                      f"{owner[family]}: not imported (two tasks, one family)"))
                continue
            source = ValueSource(r, result, family)
            into = parsed
            if len(seeds[family] - {None}) > 1:  # run again with other seeds: each file is one repeat
                if label is None:
                    parsed.skips.append(Skip(str(r.path), f"{family}: no seed recorded, unlike the other runs of "
                                                          "it: not imported as one of its repeats"))
                    continue
                into = parsed.repeats.setdefault(label, ParsedFolder(model=parsed.model, path=parsed.path))
            for name, value in result.metrics.items():
                _supersede(into, family, name, r.path, parsed.skips)
                into.metrics[(family, name)] = value
                into.sources[(family, name)] = source
    for task, values in shots.items():
        known = sorted(v for v in values if v is not None)
        if len(known) > 1 and not uses_nshot:
            parsed.notes.append(f"{model}: {task} has results at {known} shots: "
                                f"imported as separate families {task}_<n>shot")
    return parsed


def _supersede(parsed: ParsedFolder, family: str, name: str, newer: Path, skips: list[Skip]) -> None:
    """A value an older results file gave, replaced by a newer file's: reported on the older."""
    older = parsed.sources.get((family, name))
    if older is not None:
        skips.append(Skip(str(older.results.path), f"{family}/{name}: superseded by the newer results "
                                                          f"file {newer.name} (same task, same or unknown n-shot)"))


def attach_samples(folder: Path, parsed: ParsedFolder, skips: list[Skip]) -> dict[Path, str]:
    """Per-sample scores from the samples file of the results file that gave each value
    (problems go to ``skips``). Returns the SHA-256 of each samples file read."""
    by_source: dict[int, tuple[ValueSource, list[str]]] = {}
    for (_, name), source in parsed.sources.items():
        by_source.setdefault(id(source), (source, []))[1].append(name)
    hashes = {}
    for source, names in by_source.values():
        if source.results.time is None:
            continue
        path = folder / f"samples_{source.task.task}_{source.results.time}.jsonl"
        if not path.is_file():
            continue
        try:
            st = path.stat()  # (before the read: a change after it shows as a newer time)
            data = path.read_bytes()
        except OSError as exc:
            skips.append(Skip(str(path), f"cannot read it ({exc.__class__.__name__}: {exc})"))
            continue
        hashes[path] = hashlib.sha256(data).hexdigest()  # the ledger's hash, without a second read
        located = (str(path.absolute()), hashes[path], st.st_size, st.st_mtime_ns)
        samples, problems = lm_eval_format.parse_samples(data)
        skips.extend(Skip(str(path), problem) for problem in problems)
        expected = source.task.n_effective
        for name in names:
            sample = samples.get(name)
            if sample is None:
                continue  # e.g. a stderr: no per-sample values
            if expected is not None and len(sample.scores) != expected:
                skips.append(Skip(str(path), f"{name}: {len(sample.scores)} documents, but the results say "
                                                  f"{expected}: scores not attached"))
                continue
            parsed.scores[(source.family, name)] = sample
            parsed.score_files[(source.family, name)] = located
    return hashes


def parse_json(folder: Path, model: str) -> ParsedFolder:
    """``{"metric": value}`` (family = file stem) or ``{"family": {"metric": value}}``."""
    parsed = ParsedFolder(model=model, path=str(folder))
    for path in _json_files(folder):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
            parsed.skips.append(Skip(str(path), f"not readable JSON ({exc.__class__.__name__}: {exc})"))
            continue
        if not isinstance(data, dict):
            parsed.skips.append(Skip(str(path), "not a JSON object"))
            continue
        for key, value in data.items():
            pairs = value.items() if isinstance(value, dict) else [(key, value)]
            family = key if isinstance(value, dict) else path.stem
            for name, number in pairs:
                if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
                    parsed.skips.append(Skip(str(path), f"{family}/{name}: {number!r} is not a finite number"))
                    continue
                parsed.metrics[(family, name)] = float(number)
    return parsed


def drop_bad_names(parsed: ParsedFolder) -> None:
    """Names the registry refuses are left out here, so what remains is exactly what an
    import would log (and what an unchanged folder is compared with)."""
    for part in (parsed, *parsed.repeats.values()):
        for family, name in list(part.metrics):
            try:
                check_name(family, "family")
                check_name(name, "metric_name")
            except InvalidInputError as exc:
                parsed.skips.append(Skip(parsed.path, f"{family}/{name}: {exc}"))
                del part.metrics[(family, name)]


# -- what to log -----------------------------------------------------------------------------


def metric_inputs(parsed: ParsedFolder) -> list[metric_log.MetricInput]:
    items = []
    for (family, name), value in parsed.metrics.items():
        sample = parsed.scores.get((family, name))
        if sample is None:
            items.append(metric_log.MetricInput(family, name, value))
            continue
        # The parser checked every score (finite numbers) and every key (distinct): encode directly.
        located = parsed.score_files.get((family, name))
        samples = None
        if located is not None and sample.offsets is not None:
            samples = ev.samples_location(*located, "[" + ",".join(map(str, sample.offsets)) + "]")
        items.append(metric_log.MetricInput(family, name, value, _encode_scores(sample.scores), len(sample.scores),
                                          json.dumps(sample.doc_keys, separators=(",", ":"), ensure_ascii=False),
                                          samples))
    return items


def settings_groups(parsed: ParsedFolder, items: list[metric_log.MetricInput]
                    ) -> list[tuple[list[metric_log.MetricInput], metric_log.SettingsByFamily | None]]:
    """The items with their eval settings, as few logging commands as can carry them: each
    family's settings once per command (the results file's part, then the task's part). The
    metrics of one family usually come from one results file; a family whose metrics come
    from several (a newer file with some of them) takes one command per distinct settings."""
    groups: list[tuple[list[metric_log.MetricInput], metric_log.SettingsByFamily]] = []
    texts: dict[int, tuple[str, ...]] = {}  # id(source) -> its settings texts
    parts: dict[int, str | None] = {}  # id(a results file's or a task's settings) -> its text
    for item in items:
        source = parsed.sources.get((item.family, item.metric_name))
        found = () if source is None else texts.get(id(source))
        if found is None:
            for part in (source.results.settings, source.task.settings):
                if id(part) not in parts:
                    parts[id(part)] = _settings_text(parsed, source, part)
            found = texts[id(source)] = tuple(
                text for text in (parts[id(source.results.settings)], parts[id(source.task.settings)])
                if text is not None)
        for group_items, by_family in groups:  # the first command where the family has these settings or none
            if by_family.get(item.family, found) == found:
                break
        else:
            group_items, by_family = [], {}
            groups.append((group_items, by_family))
        group_items.append(item)
        if found:
            by_family[item.family] = found
    return [(group_items, by_family or None) for group_items, by_family in groups]


def _settings_text(parsed: ParsedFolder, source: ValueSource, part: dict) -> str | None:
    """A part of a value's settings (already checked entry by entry by the format's reader)
    as stored; one beyond the size limits is left out, and the scan says so."""
    try:
        return settings_text(part)
    except InvalidInputError as exc:
        parsed.skips.append(Skip(str(source.results.path), f"{source.family}: eval settings not recorded ({exc})"))
        return None


def _encode_scores(scores: list[float]) -> str:
    """As JSON; 0/1 scores as ``[1,0,...]`` (half the size of ``[1.0,0.0,...]``)."""
    if set(scores) <= {0.0, 1.0}:
        return "[" + ",".join(["1" if v else "0" for v in scores]) + "]"
    return json.dumps(scores, separators=(",", ":"))


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class FolderRead:
    """What reading a folder's samples files gives (in this process or a scan worker): the
    parsed folder with its scores attached, its metric inputs (and each repeat's), the file
    records for the ledger, and the problems met."""

    parsed: ParsedFolder
    items: list
    repeats: dict
    records: list[tuple[str, str, int, int]]
    skips: list[Skip]
    error: Exception | None = None  # why the folder cannot be imported (the skips up to there kept)


def read_folder(folder: Path, fmt: str, parsed: ParsedFolder, files: list[tuple[Path, Any]]) -> FolderRead:
    """The expensive part of importing a folder — the samples files read, hashed and parsed,
    every file hashed — as a pure function of its arguments (a scan worker runs it on a copy)."""
    skips: list[Skip] = []
    hashes: dict[Path, str] = {}
    try:
        if fmt == "lm_eval":
            for part in (parsed, *parsed.repeats.values()):
                hashes.update(attach_samples(folder, part, skips))
        items = metric_inputs(parsed)
        repeats = {label: (part, metric_inputs(part)) for label, part in sorted(parsed.repeats.items())}
        records = [(str(path), hashes.get(path) or sha256_of(path), st.st_size, st.st_mtime_ns) for path, st in files]
    except (LightMLError, ValueError, OSError) as exc:  # (a value it cannot take; a file gone meanwhile)
        return FolderRead(parsed, [], {}, [], skips, exc)
    # The scores now travel in the items, encoded: their lists are dropped, so that a worker's
    # answer carries them once (pickling them twice cost more than reading them).
    for part in (parsed, *parsed.repeats.values()):
        part.scores, part.score_files = {}, {}
    return FolderRead(parsed, items, repeats, records, skips)
