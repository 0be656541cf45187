"""``scan_and_import`` and ``lightml scan`` / ``watch``: result folders into the registry.

Each immediate subdirectory of the scanned path is one model. Its files are parsed
(``lightml.lm_eval_format`` or the generic JSON below), and everything for that model is
written in one transaction: the model (if new), its metrics with per-sample scores, and one
``file_imported`` event per file read. A later scan skips a folder whose files are all
unchanged (same size and modification time, or same content hash) without parsing them.
Nothing aborts a scan: each problem is recorded in ``ScanStats.skips`` with its reason.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import stat
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lightml import commands, events as ev, lm_eval_format
from lightml.core import Registry
from lightml.errors import InvalidInputError, LightMLError
from lightml.validation import check_name, normalize_path
from lightml.writer import WriteTransaction

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
class _Parsed:
    """One model folder, parsed: what to log."""

    model: str
    path: str
    metrics: dict[tuple[str, str], float] = field(default_factory=dict)
    scores: dict[tuple[str, str], lm_eval_format.SampleScores] = field(default_factory=dict)


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


def _parse_lm_eval(folder: Path, model: str, stats: ScanStats, family_template: str,
                   name_from: str) -> _Parsed | None:
    parsed = _Parsed(model=model, path=str(folder))
    results = []
    for path in _results_files(folder):
        read = lm_eval_format.read_results(path)
        if isinstance(read, str):
            stats.skips.append(Skip(str(path), read))
            continue
        results.append(read)
        stats.skips.extend(Skip(str(path), problem) for problem in read.problems)
    if not results:
        return None
    if name_from == "results":
        newest = results[-1]
        parsed.model = newest.model_name or newest.pretrained or model
        parsed.path = newest.pretrained or parsed.path
    # A task evaluated at two n-shot values must not overwrite itself: those get "_<n>shot".
    shots: dict[str, set] = {}
    for r in results:
        for task, result in r.tasks.items():
            shots.setdefault(task, set()).add(result.nshot)
    for r in results:  # oldest first: the newest value of a metric wins
        for task, result in r.tasks.items():
            family = _family(task, result.nshot, family_template, len(shots[task]) > 1)
            for name, value in result.metrics.items():
                parsed.metrics[(family, name)] = value
            _attach_samples(folder, r, task, result, family, parsed, stats)
    for task, values in shots.items():
        if len(values) > 1 and "{nshot}" not in family_template:
            stats.notes.append(f"{model}: {task} has results at {sorted(v for v in values if v is not None)} shots: "
                               f"imported as separate families {task}_<n>shot")
    return parsed


def _family(task: str, nshot: int | None, template: str, shot_conflict: bool) -> str:
    family = template.format(task=task, nshot="" if nshot is None else nshot)
    if shot_conflict and "{nshot}" not in template:
        family = f"{family}_{nshot}shot"
    return family


def _attach_samples(folder: Path, results: lm_eval_format.ResultsFile, task: str,
                    result: lm_eval_format.TaskResult, family: str, parsed: _Parsed, stats: ScanStats) -> None:
    if results.time is None:
        return
    path = folder / f"samples_{task}_{results.time}.jsonl"
    if not path.is_file():
        return
    samples, problems = lm_eval_format.read_samples(path)
    stats.skips.extend(Skip(str(path), problem) for problem in problems)
    for name, sample in samples.items():
        if name not in result.metrics:
            continue  # a per-sample metric with no aggregate (cannot be logged without a value)
        if result.n_effective is not None and len(sample.scores) != result.n_effective:
            stats.skips.append(Skip(str(path), f"{name}: {len(sample.scores)} documents, but the results say "
                                              f"{result.n_effective}: scores not attached"))
            continue
        parsed.scores[(family, name)] = sample


def _parse_json(folder: Path, model: str, stats: ScanStats) -> _Parsed | None:
    """``{"metric": value}`` (family = file stem) or ``{"family": {"metric": value}}``."""
    parsed = _Parsed(model=model, path=str(folder))
    for path in _json_files(folder):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
            stats.skips.append(Skip(str(path), f"not readable JSON ({exc.__class__.__name__}: {exc})"))
            continue
        if not isinstance(data, dict):
            stats.skips.append(Skip(str(path), "not a JSON object"))
            continue
        for key, value in data.items():
            pairs = value.items() if isinstance(value, dict) else [(key, value)]
            family = key if isinstance(value, dict) else path.stem
            for name, number in pairs:
                if isinstance(number, bool) or not isinstance(number, (int, float)) or not math.isfinite(number):
                    stats.skips.append(Skip(str(path), f"{family}/{name}: {number!r} is not a finite number"))
                    continue
                parsed.metrics[(family, name)] = float(number)
    return parsed if parsed.metrics else None


# -- unchanged files ------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _unchanged(files: list[tuple[Path, os.stat_result]], ledger: dict[str, tuple]) -> bool:
    """Were all these files imported before, as they are now? Size and mtime are checked
    first; a file whose mtime moved is hashed and compared with the recorded hash."""
    for path, st in files:
        known = ledger.get(str(path))
        if known is None:
            return False
        sha, size, mtime_ns = known
        if (size, mtime_ns) == (st.st_size, st.st_mtime_ns):
            continue
        if size != st.st_size or _sha256(path) != sha:
            return False
    return True


# -- writing ----------------------------------------------------------------------------------


def _metric_inputs(parsed: _Parsed, stats: ScanStats) -> list[commands.MetricInput]:
    items = []
    for (family, name), value in parsed.metrics.items():
        try:
            check_name(family, "family")
            check_name(name, "metric_name")
        except InvalidInputError as exc:
            stats.skips.append(Skip(parsed.path, f"{family}/{name}: {exc}"))
            continue
        sample = parsed.scores.get((family, name))
        if sample is None:
            items.append(commands.MetricInput(family, name, value))
            continue
        # The parser checked every score (finite numbers) and every key (distinct): encode directly.
        items.append(commands.MetricInput(family, name, value, _encode_scores(sample.scores), len(sample.scores),
                                          json.dumps(sample.doc_keys, separators=(",", ":"), ensure_ascii=False)))
    return items


def _encode_scores(scores: list[float]) -> str:
    """As JSON; 0/1 scores as ``[1,0,...]`` (half the size of ``[1.0,0.0,...]``)."""
    if all(v == 0.0 or v == 1.0 for v in scores):
        return "[" + ",".join("1" if v else "0" for v in scores) + "]"
    return json.dumps(scores, separators=(",", ":"))


def _import_command(run_name: str, parsed: _Parsed, items: list[commands.MetricInput], force: bool,
                    registry_dir: Path, file_records: list[tuple[str, str, int, int]]):
    """One model, in one transaction: register, log, record the files (hashed beforehand,
    so the write lock is not held while reading them)."""

    def command(tx: WriteTransaction) -> tuple[bool, dict[str, int], int]:
        conn = tx.conn
        run_id = commands._run_id(tx, run_name)
        existed = conn.execute("SELECT id FROM model WHERE model_name = ? AND run_id = ?",
                               (parsed.model, run_id)).fetchone()
        model_id = commands.register_model(run_name, parsed.model, normalize_path(parsed.path), None, None,
                                           registry_dir)(tx)
        present = set(conn.execute("SELECT family, metric_name FROM metrics WHERE model_id = ?", (model_id,)))
        scored = sum(1 for i in items if i.scores is not None and (force or (i.family, i.metric_name) not in present))
        counts = {"inserted": 0, "updated": 0, "skipped": 0}
        if items:
            counts = commands.LogMetrics(commands.ModelTarget(run_name, parsed.model), items, force, single=False)(tx)
        tx.emit([(ev.FILE_IMPORTED, {"path": path, "sha256": sha, "size": size, "mtime_ns": mtime_ns,
                                     "model_id": model_id})
                 for path, sha, size, mtime_ns in file_records])
        return existed is None, counts, scored

    return command


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
    if format not in FORMATS:
        raise InvalidInputError(f"Unknown format '{format}'. Available: {list(FORMATS)}")
    if name_from not in NAME_FROM:
        raise InvalidInputError(f"name_from must be one of {list(NAME_FROM)}, got {name_from!r}")
    try:
        family_template.format(task="t", nshot=0)
    except (KeyError, IndexError, ValueError) as exc:
        raise InvalidInputError(f"family_template may use {{task}} and {{nshot}} only ({exc})") from None
    if "{task}" not in family_template:
        raise InvalidInputError("family_template must contain {task}")
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"Directory not found: {root}")
    check_name(run_name, "run_name")
    stats = ScanStats()
    registry = Registry(db, run_name, origin="scan")
    try:
        ledger = {p: (sha, size, mtime) for p, sha, size, mtime in registry.read(
            lambda c: c.execute("SELECT path, sha256, size, mtime_ns FROM imported_file").fetchall())}
        folders = _model_folders(root, stats)
        for number, folder in enumerate(folders, 1):
            if progress is not None:
                progress(number, len(folders))
            _scan_folder(registry, folder, model_prefix + folder.name, format, force, family_template, name_from,
                         ledger, stats)
    finally:
        registry.close()
    return stats


def _scan_folder(registry: Registry, folder: Path, model: str, fmt: str, force: bool, family_template: str,
                 name_from: str, ledger: dict, stats: ScanStats) -> None:
    try:
        files = [(p, p.stat()) for p in _candidate_files(folder, fmt)]
    except OSError as exc:
        stats.skipped_dirs.append(folder.name)
        stats.skips.append(Skip(str(folder), f"cannot read it ({exc.__class__.__name__}: {exc})"))
        return
    if files and not force and _unchanged(files, ledger):
        stats.files_unchanged += len(files)
        return
    if fmt == "json":
        parsed = _parse_json(folder, model, stats)
    else:
        parsed = _parse_lm_eval(folder, model, stats, family_template, name_from)
    stats.files_read += len(files)
    if parsed is None:
        stats.skipped_dirs.append(folder.name)
        stats.skips.append(Skip(str(folder), "no metrics found" if files else "no result files in it"))
        return
    try:
        check_name(parsed.model, "model name")
        items = _metric_inputs(parsed, stats)
        records = [(str(path), _sha256(path), st.st_size, st.st_mtime_ns) for path, st in files]
        command = _import_command(registry.run_name, parsed, items, force, registry.registry_dir, records)
        created, counts, scored = registry.submit(command).result()
    except (LightMLError, ValueError, OSError) as exc:
        stats.skipped_dirs.append(folder.name)
        stats.skips.append(Skip(str(folder), f"not imported: {exc}"))
        return
    stats.models_registered += int(created)
    logged = counts["inserted"] + counts["updated"]
    stats.metrics_logged += logged
    stats.metrics_skipped += counts["skipped"]
    stats.scores_imported += scored
    stats.imports.append(ModelImport(parsed.model, logged, scored, len(files)))


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
