"""``scan_and_import`` and ``lightml scan`` / ``watch``: result folders into the registry.

Each immediate subdirectory of the scanned path is one model. Its files are read by
``lightml.ingest.scan_folder`` (lm-eval output, or generic JSON), and everything for that
model is written in one transaction: the model (if new), its metrics with per-sample scores, and one
``file_imported`` event per file read. A later scan skips a folder whose files are all
unchanged (same size and modification time, or same content hash) and were imported into
the same model with the same naming, without reading its samples files.
Nothing aborts a scan: each problem is recorded in ``ScanStats.skips`` with its reason.
"""

from __future__ import annotations

import os
import stat
import sys
import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from lightml.errors import InvalidInputError, LightMLError
from lightml.ingest.scan_folder import (
    FolderRead, ParsedFolder, Skip, candidate_files, check_family_template, drop_bad_names, parse_json,
    parse_lm_eval, read_folder, settings_groups, sha256_of,
)
from lightml.ingest.scan_workers import IN_FLIGHT, WorkerGone, WorkerPool
from lightml.log.transaction import WriteTransaction
from lightml.read import import_lookups
from lightml.runner import Registry
from lightml.results import METRIC_SKIPPED
from lightml.write import commands, metric_log
from lightml.write.validation import check_name, normalize_path
from projections import metric_repeats

FORMATS = ("lm_eval", "json")
NAME_FROM = ("folder", "results")


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


# -- options ---------------------------------------------------------------------------------


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


# -- unchanged files ------------------------------------------------------------------------


@dataclass
class _Ledger:
    """What earlier scans imported: the ``imported_file`` rows, and the models of the run."""

    files: dict[str, tuple[str, int, int, int]]  # path -> (sha256, size, mtime_ns, model_id)
    models: dict[str, int]                        # model name -> id, in the scanned run

    @classmethod
    def read(cls, registry: Registry, run_name: str) -> _Ledger:
        return registry.read(lambda conn: cls(import_lookups.imported_files(conn),
                                              import_lookups.models_of_run(conn, run_name)))


def _already_imported(registry: Registry, files: list[tuple[Path, os.stat_result]], parsed: ParsedFolder,
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
            if size != st.st_size or sha256_of(path) != sha:
                return False
        except OSError:  # gone or unreadable since the listing: the import says why
            return False
    return parsed.all_metrics() <= registry.read(import_lookups.metric_names, model_id)


# -- writing ----------------------------------------------------------------------------------


def _import_command(run_name: str, parsed: ParsedFolder, items: list[metric_log.MetricInput], force: bool,
                    registry_dir: Path, file_records: list[tuple[str, str, int, int]],
                    repeats: dict[str, tuple[ParsedFolder, list[metric_log.MetricInput]]] | None = None):
    """One model, in one transaction: register, log (with each value's eval settings; the
    values of a task run with several seeds as repeats, ``repeats``: label -> (its part of the
    folder, its items)), record the files (hashed beforehand, so the write lock is not held
    while reading them)."""

    def command(tx: WriteTransaction) -> tuple[bool, dict[str, int], int, list[Skip], list[str]]:
        model_id, created = commands.ensure_model(run_name, parsed.model, normalize_path(parsed.path), None, None,
                                                  registry_dir)(tx)
        present = import_lookups.values_and_whether_scored(tx.conn, model_id)
        late = [] if force else _late_scores(present, items)
        scored = len(late) + sum(1 for i in items if i.scores is not None
                                 and (force or (i.family, i.metric_name) not in present))
        target = metric_log.ModelTarget(run_name, parsed.model)
        counts = {"inserted": 0, "updated": 0, "skipped": 0}
        late_keys = {(i.family, i.metric_name) for i in late}
        for group, settings in settings_groups(parsed, items):
            rest = [i for i in group if (i.family, i.metric_name) not in late_keys]
            mine = [i for i in group if (i.family, i.metric_name) in late_keys]
            logged = [metric_log.LogMetrics(target, rest, force, single=False, settings=settings)(tx)] if rest else []
            if mine:
                # The same value, now with its scores: recorded as an overwrite (old and new value equal).
                logged.append(metric_log.LogMetrics(target, mine, True, single=False, settings=settings)(tx))
            for one in logged:
                counts = {key: counts[key] + one[key] for key in counts}
        skips: list[Skip] = []  # (what the import itself finds to say: the scan adds it to its own)
        notes: list[str] = []
        if repeats:
            scored += _log_repeats(tx, target, model_id, repeats, force, counts, parsed, skips, notes)
        commands.record_imported_files(model_id, file_records)(tx)
        return created, counts, scored, skips, notes

    return command


def _log_repeats(tx: WriteTransaction, target: metric_log.ModelTarget, model_id: int,
                 repeats: dict[str, tuple[ParsedFolder, list[metric_log.MetricInput]]], force: bool,
                 counts: dict[str, int], parsed: ParsedFolder, skips: list[Skip], notes: list[str]) -> int:
    """Each seed's values as repeats of their metrics (``repeat=`` its label). A repeat the
    registry has with the same value and no scores gets its scores now (lm-eval writes the
    samples after the results: ``_late_scores``' rule). A metric the registry holds without
    repeat labels (an earlier scan found one seed only) is left as it is, said in ``skips``,
    unless ``force`` replaces it with the repeats. Adds to ``counts`` metric by metric, and to
    ``notes`` what it imported as repeats; returns how many repeat values brought scores."""
    pairs = {(i.family, i.metric_name) for _, items in repeats.values() for i in items}
    existing = metric_log.existing_metrics(tx.conn, "model_id", model_id, pairs)
    known = metric_repeats.repeat_rows(tx.conn, [metric_id for metric_id, _ in existing.values()])
    plain = {pair for pair, (metric_id, _) in existing.items() if metric_id not in known}
    if plain and not force:
        skips.append(Skip(parsed.path, f"{len(plain)} metric(s) run with several seeds are in the registry as one value "
                                  f"each (from an earlier scan), not as repeats: left as they are (scan with --force "
                                  f"to replace them with the repeats), e.g. {'/'.join(sorted(plain)[0])}"))
    scored, changed = 0, set()
    for label, (part, items) in repeats.items():
        items = [i for i in items if force or (i.family, i.metric_name) not in plain]
        for group, settings in settings_groups(part, items):
            late = [] if force else [i for i in group if i.scores is not None and known.get(
                existing.get((i.family, i.metric_name), (None,))[0], {}).get(label) == (i.value, None)]
            rest = [i for i in group if i not in late]
            for batch, forced in ((rest, force), (late, True)):
                for item in batch:  # (one by one: what each did is counted per metric)
                    logged = metric_log.LogMetrics(target, [item], forced, single=True, settings=settings,
                                                   repeat=label)(tx)
                    if logged != METRIC_SKIPPED:
                        changed.add((item.family, item.metric_name))
                        scored += item.scores is not None
    families = sorted({family for family, _ in changed})
    if families:
        notes.append(f"{parsed.model}: {', '.join(families)} run with {len(repeats)} seeds: imported as repeats "
                     f"({', '.join(repeats)}), each value the mean of its repeats")
    new = {pair for pair in changed if pair not in existing}
    counts["inserted"] += len(new)
    counts["updated"] += len(changed - new)
    counts["skipped"] += len(pairs - changed)
    return scored


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
                    name_from: str = "folder", progress: Callable[[int, int], None] | None = None,
                    workers: int | None = None) -> ScanStats:
    """Import every model folder under ``path`` into run ``run_name`` (created if new).

    ``format``: ``"lm_eval"`` (results and samples files of lm-evaluation-harness) or
    ``"json"``. ``model_prefix`` is put before each folder name. ``force`` overwrites metrics
    that exist. ``family_template`` names the family from ``{task}`` and ``{nshot}``.
    ``name_from="results"`` takes the model name (and path) from the results file's
    ``model_name`` / ``pretrained=`` instead of the folder name. ``workers``: processes that
    read the samples files (``scan_workers``); None: the number of cores, used once the
    folders to read hold more than ``WORKERS_FROM_BYTES`` of samples (below that, starting
    them costs more than they save); 1: this process alone. The registry is the same either way.
    """
    check_options(format, name_from, family_template)
    root = check_root(path)
    check_name(run_name, "run_name")
    if workers is not None and (type(workers) is not int or workers < 1):
        raise InvalidInputError(f"workers must be a positive integer, got {workers!r}")
    stats = ScanStats()
    registry = Registry(db, run_name, origin="scan")
    try:
        ledger = _Ledger.read(registry, run_name)
        folders = _model_folders(root, stats)
        prepared = [_prepare_folder(registry, folder, model_prefix + folder.name, format, force, family_template,
                                    name_from, ledger, stats) for folder in folders]
        reading = [p for p in prepared if isinstance(p, _Reading)]
        for position, task in enumerate(reading):
            task.position = position
        pool = _pool_for(reading, workers)
        try:
            given = 0  # the folders given to the pool so far, in order
            writing = None
            for number, entry in enumerate(prepared, 1):
                if progress is not None:  # (the reading is the slow part: counted as it is done)
                    progress(number, len(prepared))
                if pool is not None and isinstance(entry, _Reading):
                    # a few folders per worker ahead of the one taken now, never the whole tree
                    ahead = entry.position + IN_FLIGHT * pool.size
                    while given < min(ahead, len(reading)):
                        reading[given].ticket = pool.submit(reading[given].folder, format, reading[given].parsed,
                                                            reading[given].files)
                        given += 1
                # Everything is counted in folder order, as one process reading them would.
                submitted = _finish_folder(registry, entry, format, force, stats, pool)
                # The writer commits a model while the next folder is read: wait for the
                # previous one only now.
                if writing is not None:
                    _count_import(*writing, stats)
                writing = submitted
            if writing is not None:
                _count_import(*writing, stats)
        finally:
            if pool is not None:
                pool.close()
    finally:
        registry.close()
    return stats


# Samples bytes to read from which the default (workers=None) reads them in worker processes.
WORKERS_FROM_BYTES = 64 * 2**20


@dataclass
class _Reading:
    """A folder whose files are to be read and imported."""

    folder: Path
    parsed: ParsedFolder
    files: list[tuple[Path, os.stat_result]]
    position: int = 0  # among the folders to read
    ticket: int | None = None  # its task in the worker pool, if it went to one


@dataclass
class _Skipped:
    """A folder left out, with what to count for it (applied in folder order)."""

    folder: Path
    reason: Skip | None = None  # (None: unchanged, nothing to say)
    skipped_dir: bool = True
    parsed: ParsedFolder | None = None  # (its own skips and notes, when it was parsed)


def _pool_for(reading: list[_Reading], workers: int | None):
    """A worker pool for these folders, or None to read them in this process."""

    if len(reading) < 2 or workers == 1:
        return None
    if workers is None:
        samples = sum(st.st_size for task in reading for path, st in task.files if path.name.startswith("samples_"))
        if samples < WORKERS_FROM_BYTES or (os.cpu_count() or 1) < 2:
            return None
        workers = os.cpu_count() or 1
    return WorkerPool(min(workers, len(reading)))


def _prepare_folder(registry: Registry, folder: Path, model: str, fmt: str, force: bool, family_template: str,
                    name_from: str, ledger: _Ledger, stats: ScanStats) -> _Reading | _Skipped:
    """The cheap part of a folder: list its files, parse its results (or JSON) files, which are
    small, to know the model and the metrics, and say whether it must be read at all."""
    try:
        files = [(p, p.stat()) for p in candidate_files(folder, fmt)]
    except OSError as exc:
        return _Skipped(folder, Skip(str(folder), f"cannot read it ({exc.__class__.__name__}: {exc})"))
    if fmt == "json":
        parsed = parse_json(folder, model)
    else:
        parsed = parse_lm_eval(folder, model, family_template, name_from)
    drop_bad_names(parsed)
    if files and parsed.all_metrics() and not force and _already_imported(registry, files, parsed, ledger):
        stats.files_unchanged += len(files)
        return _Skipped(folder, skipped_dir=False)
    stats.files_read += len(files)
    if not parsed.all_metrics():
        return _Skipped(folder, Skip(str(folder), "no metrics found" if files else "no result files in it"), parsed=parsed)
    try:
        check_name(parsed.model, "model name")
    except (LightMLError, ValueError) as exc:
        return _Skipped(folder, Skip(str(folder), f"not imported: {exc}"), parsed=parsed)
    return _Reading(folder, parsed, files)


def _finish_folder(registry: Registry, entry: _Reading | _Skipped, fmt: str, force: bool, stats: ScanStats,
                   pool) -> tuple[Path, str, int, Future] | None:
    """Read the folder's samples (or take what its worker read) and submit its import; returns
    what ``_count_import`` needs, or None if there is nothing to import."""
    parsed = entry.parsed
    if parsed is not None:
        stats.skips.extend(parsed.skips)
        stats.notes.extend(parsed.notes)
    if isinstance(entry, _Skipped):
        if entry.skipped_dir:
            stats.skipped_dirs.append(entry.folder.name)
        if entry.reason is not None:
            stats.skips.append(entry.reason)
        return None
    read: FolderRead | None = None
    if entry.ticket is not None:
        try:
            read = pool.answer(entry.ticket)
        except WorkerGone:
            read = None  # (read here instead)
        if not isinstance(read, FolderRead):  # (an answer that is not one: a worker's own failure)
            read = None
    if read is None:
        read = read_folder(entry.folder, fmt, parsed, entry.files)
    stats.skips.extend(read.skips)
    try:
        if read.error is not None:
            raise read.error
        command = _import_command(registry.run_name, read.parsed, read.items, force, registry.registry_dir,
                                  read.records, read.repeats)
    except (LightMLError, ValueError, OSError) as exc:
        stats.skipped_dirs.append(entry.folder.name)
        stats.skips.append(Skip(str(entry.folder), f"not imported: {exc}"))
        return None
    return entry.folder, read.parsed.model, len(entry.files), registry.submit(command)


def _count_import(folder: Path, model: str, files: int, future: Future, stats: ScanStats) -> None:
    try:
        created, counts, scored, skips, notes = future.result()
    except (LightMLError, ValueError, OSError) as exc:
        stats.skipped_dirs.append(folder.name)
        stats.skips.append(Skip(str(folder), f"not imported: {exc}"))
        return
    stats.skips.extend(skips)
    stats.notes.extend(notes)
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
