"""``scan_and_import`` and ``lightml scan`` / ``watch``: result folders into the registry.

Each immediate subdirectory of the scanned path is one model. Its files are parsed
(``lightml.ingest.lm_eval_format`` or the generic JSON below), and everything for that model is
written in one transaction: the model (if new), its metrics with per-sample scores, and one
``file_imported`` event per file read. A later scan skips a folder whose files are all
unchanged (same size and modification time, or same content hash) and were imported into
the same model with the same naming, without reading its samples files.
Nothing aborts a scan: each problem is recorded in ``ScanStats.skips`` with its reason.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import string
import sys
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lightml.ingest import lm_eval_format
from lightml.log import events as ev
from lightml.write import commands, ids, metric_log
from lightml.runner import Registry
from lightml.errors import InvalidInputError, LightMLError
from lightml.write.validation import check_name, normalize_path
from lightml.log.writer import WriteTransaction

FORMATS = ("lm_eval", "json")
NAME_FROM = ("folder", "results")


@dataclass
class Skip:
    path: str
    reason: str


@dataclass
class ModelImport:
    model: str
    metrics_logged: int
    scores_imported: int
    files: int


@dataclass
class ScanStats:
    models_registered: int = 0
    metrics_logged: int = 0       # inserted + overwritten (LightML 1.2's meaning)
    metrics_skipped: int = 0      # already in the registry (use force to overwrite)
    scores_imported: int = 0      # metrics that got per-sample scores
    files_read: int = 0
    files_unchanged: int = 0
    skipped_dirs: list[str] = field(default_factory=list)
    skips: list[Skip] = field(default_factory=list)  # every file, folder or value left out, and why
    notes: list[str] = field(default_factory=list)
    imports: list[ModelImport] = field(default_factory=list)

    @property
    def errors(self) -> list[str]:
        """LightML 1.2's name for the problems, as lines."""
        return [f"{s.path}: {s.reason}" for s in self.skips]

    def to_dict(self) -> dict[str, Any]:
        return {
            "models_registered": self.models_registered, "metrics_logged": self.metrics_logged,
            "metrics_skipped": self.metrics_skipped, "scores_imported": self.scores_imported,
            "files_read": self.files_read, "files_unchanged": self.files_unchanged,
            "skipped_dirs": self.skipped_dirs, "skips": [{"path": s.path, "reason": s.reason} for s in self.skips],
            "notes": self.notes,
            "imports": [vars(i) for i in self.imports],
        }


@dataclass
class _Source:
    """The results file (and its task) that gave a metric its value: only that file's
    samples may give the metric its per-sample scores."""

    results: lm_eval_format.ResultsFile
    task: lm_eval_format.TaskResult
    family: str


@dataclass
class _Parsed:
    """One model folder, parsed: what to log, and the problems met on the way (reported
    only if the folder is imported: an unchanged folder stays quiet)."""

    model: str
    path: str
    metrics: dict[tuple[str, str], float] = field(default_factory=dict)
    sources: dict[tuple[str, str], _Source] = field(default_factory=dict)
    scores: dict[tuple[str, str], lm_eval_format.SampleScores] = field(default_factory=dict)
    skips: list[Skip] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


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


def _candidate_files(folder: Path, fmt: str) -> list[Path]:
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


def check_root(path: str | os.PathLike) -> Path:
    """The folder to scan (one subfolder per model), or a clear error."""
    root = Path(path)
    if not root.is_dir():
        if root.exists():
            raise InvalidInputError(f"{root} is a file: give the folder holding one subfolder per model")
        raise FileNotFoundError(f"Directory not found: {root}")
    return root


def check_options(format: str, name_from: str, family_template: str) -> None:
    """The naming options of a scan, checked before anything is read or written."""
    if format not in FORMATS:
        raise InvalidInputError(f"Unknown format '{format}'. Available: {list(FORMATS)}")
    if name_from not in NAME_FROM:
        raise InvalidInputError(f"name_from must be one of {list(NAME_FROM)}, got {name_from!r}")
    check_family_template(family_template)


def _parse_lm_eval(folder: Path, model: str, family_template: str, name_from: str) -> _Parsed:
    """The results files only (small); the samples come later, if the folder is imported."""
    parsed = _Parsed(model=model, path=str(folder))
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
    for r in results:  # oldest first: the newest value of a metric wins, with its own samples only
        for task, result in r.tasks.items():
            family = lm_eval_format.family_for(task, result.nshot, shots[task], family_template)
            if owner.setdefault(family, task) != task:  # e.g. "{task:.4}" cuts two names to one
                parsed.skips.append(Skip(str(r.path), f"{task}: the family template names it {family!r}, like "
                                                      f"{owner[family]}: not imported (two tasks, one family)"))
                continue
            source = _Source(r, result, family)
            for name, value in result.metrics.items():
                _supersede(parsed, family, name, r.path)
                parsed.metrics[(family, name)] = value
                parsed.sources[(family, name)] = source
    for task, values in shots.items():
        known = sorted(v for v in values if v is not None)
        if len(known) > 1 and not uses_nshot:
            parsed.notes.append(f"{model}: {task} has results at {known} shots: "
                                f"imported as separate families {task}_<n>shot")
    return parsed


def _supersede(parsed: _Parsed, family: str, name: str, newer: Path) -> None:
    """A value an older results file gave, replaced by a newer file's: reported on the older."""
    older = parsed.sources.get((family, name))
    if older is not None:
        parsed.skips.append(Skip(str(older.results.path), f"{family}/{name}: superseded by the newer results "
                                                          f"file {newer.name} (same task, same or unknown n-shot)"))


def _attach_samples(folder: Path, parsed: _Parsed, stats: ScanStats) -> dict[Path, str]:
    """Per-sample scores from the samples file of the results file that gave each value.
    Returns the SHA-256 of each samples file read."""
    by_source: dict[int, tuple[_Source, list[str]]] = {}
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
            data = path.read_bytes()
        except OSError as exc:
            stats.skips.append(Skip(str(path), f"cannot read it ({exc.__class__.__name__}: {exc})"))
            continue
        hashes[path] = hashlib.sha256(data).hexdigest()  # the ledger's hash, without a second read
        samples, problems = lm_eval_format.parse_samples(data)
        stats.skips.extend(Skip(str(path), problem) for problem in problems)
        expected = source.task.n_effective
        for name in names:
            sample = samples.get(name)
            if sample is None:
                continue  # e.g. a stderr: no per-sample values
            if expected is not None and len(sample.scores) != expected:
                stats.skips.append(Skip(str(path), f"{name}: {len(sample.scores)} documents, but the results say "
                                                  f"{expected}: scores not attached"))
                continue
            parsed.scores[(source.family, name)] = sample
    return hashes


def _parse_json(folder: Path, model: str) -> _Parsed:
    """``{"metric": value}`` (family = file stem) or ``{"family": {"metric": value}}``."""
    parsed = _Parsed(model=model, path=str(folder))
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


def _drop_bad_names(parsed: _Parsed) -> None:
    """Names the registry refuses are left out here, so what remains is exactly what an
    import would log (and what an unchanged folder is compared with)."""
    for family, name in list(parsed.metrics):
        try:
            check_name(family, "family")
            check_name(name, "metric_name")
        except InvalidInputError as exc:
            parsed.skips.append(Skip(parsed.path, f"{family}/{name}: {exc}"))
            del parsed.metrics[(family, name)]


# -- unchanged files ------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class _Ledger:
    """What earlier scans imported: the ``imported_file`` rows, and the models of the run."""

    files: dict[str, tuple[str, int, int, int]]  # path -> (sha256, size, mtime_ns, model_id)
    models: dict[str, int]                        # model name -> id, in the scanned run

    @classmethod
    def read(cls, registry: Registry, run_name: str) -> _Ledger:
        def query(conn):
            files = {p: (sha, size, mtime, mid) for p, sha, size, mtime, mid in conn.execute(
                "SELECT path, sha256, size, mtime_ns, model_id FROM imported_file")}
            models = dict(conn.execute("SELECT m.model_name, m.id FROM model m JOIN run r ON r.id = m.run_id "
                                       "WHERE r.run_name = ?", (run_name,)))
            return cls(files, models)

        return registry.read(query)


def _already_imported(registry: Registry, files: list[tuple[Path, os.stat_result]], parsed: _Parsed,
                      ledger: _Ledger) -> bool:
    """Were all these files imported before, as they are now, into this very model (same run
    and name), under the same naming? Size and mtime are checked first; a file whose mtime
    moved is hashed and compared with the recorded hash. The ledger does not record the
    naming options, so the family names are checked instead: another ``family_template`` or
    ``format`` gives metrics the model does not have yet, and the folder is imported again."""
    model_id = ledger.models.get(parsed.model)
    if model_id is None:
        return False
    for path, st in files:
        known = ledger.files.get(str(path))
        if known is None or known[3] != model_id:
            return False
        sha, size, mtime_ns, _ = known
        if (size, mtime_ns) == (st.st_size, st.st_mtime_ns):
            continue
        try:
            if size != st.st_size or _sha256(path) != sha:
                return False
        except OSError:  # gone or unreadable since the listing: the import says why
            return False
    present = registry.read(lambda c: set(c.execute(
        "SELECT family, metric_name FROM metrics WHERE model_id = ?", (model_id,))))
    return parsed.metrics.keys() <= present


# -- writing ----------------------------------------------------------------------------------


def _metric_inputs(parsed: _Parsed) -> list[metric_log.MetricInput]:
    items = []
    for (family, name), value in parsed.metrics.items():
        sample = parsed.scores.get((family, name))
        if sample is None:
            items.append(metric_log.MetricInput(family, name, value))
            continue
        # The parser checked every score (finite numbers) and every key (distinct): encode directly.
        items.append(metric_log.MetricInput(family, name, value, _encode_scores(sample.scores), len(sample.scores),
                                          json.dumps(sample.doc_keys, separators=(",", ":"), ensure_ascii=False)))
    return items


def _encode_scores(scores: list[float]) -> str:
    """As JSON; 0/1 scores as ``[1,0,...]`` (half the size of ``[1.0,0.0,...]``)."""
    if set(scores) <= {0.0, 1.0}:
        return "[" + ",".join(["1" if v else "0" for v in scores]) + "]"
    return json.dumps(scores, separators=(",", ":"))


def _import_command(run_name: str, parsed: _Parsed, items: list[metric_log.MetricInput], force: bool,
                    registry_dir: Path, file_records: list[tuple[str, str, int, int]]):
    """One model, in one transaction: register, log, record the files (hashed beforehand,
    so the write lock is not held while reading them)."""

    def command(tx: WriteTransaction) -> tuple[bool, dict[str, int], int]:
        conn = tx.conn
        run_id = ids.run_id(tx, run_name)
        existed = conn.execute("SELECT id FROM model WHERE model_name = ? AND run_id = ?",
                               (parsed.model, run_id)).fetchone()
        model_id = commands.register_model(run_name, parsed.model, normalize_path(parsed.path), None, None,
                                           registry_dir)(tx)
        # (family, metric) -> (value, has scores) of what the model already has
        present = {(family, name): (value, scored) for family, name, value, scored in conn.execute(
            "SELECT x.family, x.metric_name, x.value, d.metric_id IS NOT NULL FROM metrics x "
            "LEFT JOIN detailed_scores d ON d.metric_id = x.id WHERE x.model_id = ?", (model_id,))}
        late = [] if force else _late_scores(present, items)
        scored = len(late) + sum(1 for i in items if i.scores is not None
                                 and (force or (i.family, i.metric_name) not in present))
        target = metric_log.ModelTarget(run_name, parsed.model)
        counts = {"inserted": 0, "updated": 0, "skipped": 0}
        if items:
            late_keys = {(i.family, i.metric_name) for i in late}
            rest = [i for i in items if (i.family, i.metric_name) not in late_keys]
            counts = metric_log.LogMetrics(target, rest, force, single=False)(tx) if rest else counts
        if late:
            # The same value, now with its scores: recorded as an overwrite (old and new value equal).
            attached = metric_log.LogMetrics(target, late, True, single=False)(tx)
            counts = {key: counts[key] + attached[key] for key in counts}
        tx.emit([(ev.FILE_IMPORTED, {"path": path, "sha256": sha, "size": size, "mtime_ns": mtime_ns,
                                     "model_id": model_id})
                 for path, sha, size, mtime_ns in file_records])
        return existed is None, counts, scored

    return command


def _late_scores(present: dict[tuple[str, str], tuple[float, bool]],
                 items: list[metric_log.MetricInput]) -> list[metric_log.MetricInput]:
    """Items that bring per-sample scores to a value already there with the same number and
    no scores. lm-eval writes its samples files after the results file, so a ``watch`` round
    can import the values before their scores exist; the next round attaches them."""
    return [i for i in items if i.scores is not None and present.get((i.family, i.metric_name)) == (i.value, False)]


def _model_folders(root: Path, stats: ScanStats) -> list[Path]:
    folders = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        try:
            mode = entry.stat().st_mode  # a symlink loop or a dangling link fails here (is_dir would say False)
            if stat.S_ISDIR(mode):
                folders.append(entry)
        except OSError as exc:
            stats.skipped_dirs.append(entry.name)
            stats.skips.append(Skip(str(entry), f"cannot open it ({exc.__class__.__name__}: {exc.strerror or exc})"))
    return folders


def scan_and_import(db: str | os.PathLike, run_name: str, path: str | os.PathLike, format: str = "lm_eval",
                    model_prefix: str = "", force: bool = False, *, family_template: str = "{task}",
                    name_from: str = "folder", progress: Callable[[int, int], None] | None = None) -> ScanStats:
    """Import every model folder under ``path`` into run ``run_name`` (created if new).

    ``format``: ``"lm_eval"`` (results and samples files of lm-evaluation-harness) or
    ``"json"``. ``model_prefix`` is put before each folder name. ``force`` overwrites metrics
    that exist. ``family_template`` names the family from ``{task}`` and ``{nshot}``.
    ``name_from="results"`` takes the model name (and path) from the results file's
    ``model_name`` / ``pretrained=`` instead of the folder name.
    """
    check_options(format, name_from, family_template)
    root = check_root(path)
    check_name(run_name, "run_name")
    stats = ScanStats()
    registry = Registry(db, run_name, origin="scan")
    try:
        ledger = _Ledger.read(registry, run_name)
        folders = _model_folders(root, stats)
        writing = None
        for number, folder in enumerate(folders, 1):
            if progress is not None:
                progress(number, len(folders))
            submitted = _scan_folder(registry, folder, model_prefix + folder.name, format, force, family_template,
                                     name_from, ledger, stats)
            # The writer commits a model while the next folder is read: wait for the
            # previous one only now.
            if writing is not None:
                _count_import(*writing, stats)
            writing = submitted
        if writing is not None:
            _count_import(*writing, stats)
    finally:
        registry.close()
    return stats


def _scan_folder(registry: Registry, folder: Path, model: str, fmt: str, force: bool, family_template: str,
                 name_from: str, ledger: _Ledger, stats: ScanStats) -> tuple[Path, str, int, Future] | None:
    """Read one model folder and submit its import; returns what ``_count_import`` needs, or
    None if there is nothing to import."""
    try:
        files = [(p, p.stat()) for p in _candidate_files(folder, fmt)]
    except OSError as exc:
        stats.skipped_dirs.append(folder.name)
        stats.skips.append(Skip(str(folder), f"cannot read it ({exc.__class__.__name__}: {exc})"))
        return None
    # The results (or JSON) files are small: read them first, to know the model and the
    # metrics; the samples files, which are most of the bytes, only if the folder is imported.
    if fmt == "json":
        parsed = _parse_json(folder, model)
    else:
        parsed = _parse_lm_eval(folder, model, family_template, name_from)
    _drop_bad_names(parsed)
    if files and parsed.metrics and not force and _already_imported(registry, files, parsed, ledger):
        stats.files_unchanged += len(files)
        return None
    stats.files_read += len(files)
    stats.skips.extend(parsed.skips)
    stats.notes.extend(parsed.notes)
    if not parsed.metrics:
        stats.skipped_dirs.append(folder.name)
        stats.skips.append(Skip(str(folder), "no metrics found" if files else "no result files in it"))
        return None
    try:
        check_name(parsed.model, "model name")
        hashes = _attach_samples(folder, parsed, stats) if fmt == "lm_eval" else {}
        items = _metric_inputs(parsed)
        records = [(str(path), hashes.get(path) or _sha256(path), st.st_size, st.st_mtime_ns) for path, st in files]
        command = _import_command(registry.run_name, parsed, items, force, registry.registry_dir, records)
    except (LightMLError, ValueError, OSError) as exc:
        stats.skipped_dirs.append(folder.name)
        stats.skips.append(Skip(str(folder), f"not imported: {exc}"))
        return None
    return folder, parsed.model, len(files), registry.submit(command)


def _count_import(folder: Path, model: str, files: int, future: Future, stats: ScanStats) -> None:
    try:
        created, counts, scored = future.result()
    except (LightMLError, ValueError, OSError) as exc:
        stats.skipped_dirs.append(folder.name)
        stats.skips.append(Skip(str(folder), f"not imported: {exc}"))
        return
    stats.models_registered += int(created)
    logged = counts["inserted"] + counts["updated"]
    stats.metrics_logged += logged
    stats.metrics_skipped += counts["skipped"]
    stats.scores_imported += scored
    stats.imports.append(ModelImport(model, logged, scored, files))


def terminal_progress(stream=sys.stderr) -> Callable[[int, int], None] | None:
    """A progress line on stderr, only on a terminal and only once the scan is long (2 s)."""
    if not stream.isatty():
        return None
    started = time.monotonic()

    def show(done: int, total: int) -> None:
        if time.monotonic() - started > 2:
            stream.write(f"\r  scanning {done}/{total} model folders")
            stream.flush()
            if done == total:
                stream.write("\n")

    return show
