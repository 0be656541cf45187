#!/usr/bin/env python3
"""Evaluate a model with lm-evaluation-harness and log everything into a LightML registry.

For each (language, benchmark, shots) of config.yaml this calls lm-eval's Python API, then
logs every metric of every task (and group), with its per-sample scores and the documents
they are for, through ``LightMLHandle``. The scores are what ``lightml stats`` needs to tell
whether a difference between two models is real. A benchmark whose tasks are already in the
run (their key metric, ``KEY_METRIC``) is not evaluated again, unless ``force: true``.

    pip install -e ".[examples]"           # lm-eval and pyyaml, from the repository root
    python examples/lm_eval/run_eval.py    # uses config.yaml next to this file
    python examples/lm_eval/run_eval.py my_config.yaml

Names are those of ``lightml scan`` (``lightml.ingest.lm_eval_format``), so that a model evaluated
here and one scanned from ``lm_eval --output_path`` can be compared: the family is the task
(or group), the metric lm-eval's key without a "none" filter (``acc``, ``acc_stderr``,
``exact_match,strict-match``). When the config runs several ``shots`` values, each task gets
one family per value, ``<task>_<n>shot`` (``tiny_mc_0shot``, ``tiny_mc_5shot``), as a scan
of a folder holding those runs names them.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import sys
from pathlib import Path

import yaml

from lightml import METRIC_INSERTED, METRIC_SKIPPED, METRIC_UPDATED, LightMLHandle
from lightml.ingest.lm_eval_format import collect_scores, family_for, parse_results

HERE = Path(__file__).resolve().parent

# Benchmark -> lm-eval task names, per language. The tiny_* tasks live in ./tasks.
TASKS = {
    "eng": {
        "tiny_mc": ["tiny_mc"],
        "tiny_math": ["tiny_math"],
        "hellaswag": ["hellaswag"],
        "mmlu": ["mmlu"],
        "arc": ["arc_easy", "arc_challenge"],
    },
    "ita": {
        "hellaswag": ["itabench_hellaswag_it-it"],
        "mmlu": ["itabench_mmlu_multichoice_it-it"],
        "arc": ["itabench_arc_easy_it-it", "itabench_arc_challenge_it-it"],
    },
}
# The metric that says a task was evaluated (checked before running it again); "acc" if not listed.
KEY_METRIC = {"tiny_math": "exact_match,strict-match", "hellaswag": "acc_norm", "arc_easy": "acc_norm",
              "arc_challenge": "acc_norm"}
OUTCOME = {METRIC_INSERTED: "logged", METRIC_UPDATED: "updated", METRIC_SKIPPED: "skipped (exists)"}


def load_config(path: Path) -> dict:
    config = yaml.safe_load(path.read_text())
    for key in ("db", "run_name", "model_path"):
        if not config.get(key):
            sys.exit(f"{path}: '{key}' is required")
    base = path.parent  # relative paths in the config are relative to it
    config["db"] = str((base / config["db"]).resolve()) if not os.path.isabs(config["db"]) else config["db"]
    if config.get("include_path"):
        config["include_path"] = str((base / config["include_path"]).resolve())
    return config


def model_arguments(config: dict) -> tuple[str, str]:
    """(model_args, device) for lm-eval."""
    gpus = int(config.get("num_gpus", 1))
    args = f"pretrained={config['model_path']}"
    if gpus > 1:
        args += ",parallelize=True"  # hf: split the model across the visible GPUs
    return args, ("cuda:0" if gpus >= 1 else "cpu")


def evaluate(config: dict, tasks: list[str], shots: int) -> dict | None:
    import lm_eval
    from lm_eval.tasks import TaskManager

    include = config.get("include_path")
    model_args, device = model_arguments(config)
    # Local task files name their data relative to their folder: evaluate from there.
    with contextlib.chdir(include or os.getcwd()):
        return lm_eval.simple_evaluate(
            model=config.get("model", "hf"), model_args=model_args, tasks=tasks, num_fewshot=shots,
            device=device, limit=config.get("limit"), log_samples=True,
            task_manager=TaskManager(include_path=include) if include else None,
        )


def already_logged(handle: LightMLHandle, model: str, tasks: list[str], shots: int, all_shots: set[int]) -> bool:
    """Is every task of the benchmark in the run at these shots (its key metric)?"""
    return all(handle.run_metric_exists(model, family_for(task, shots, all_shots), KEY_METRIC.get(task, "acc"))
               for task in tasks)


def log_results(handle: LightMLHandle, model: str, results: dict, shots: int, all_shots: set[int],
                force: bool) -> list[tuple[str, str]]:
    """Log every metric of the results; returns the (family, metric) pairs logged."""
    samples = results.get("samples", {})
    tasks, problems = parse_results(results)  # the tasks and groups, named as scan names them
    for problem in problems:
        print(f"  ! {problem}")
    logged = []
    for task, result in tasks.items():
        family = family_for(task, shots, all_shots)
        per_doc, problems = collect_scores((f"{task} sample {i}", s) for i, s in enumerate(samples.get(task, [])))
        for problem in problems:
            print(f"  ! {task}: {problem}")
        for name, value in result.metrics.items():
            scored = per_doc.get(name)
            outcome = handle.log_model_metric(
                model, family, name, value, force=force,
                scores=scored.scores if scored else None, doc_ids=scored.doc_keys if scored else None)
            extra = f" + {len(scored.scores)} per-sample scores" if scored else ""
            print(f"  ✓ {OUTCOME[outcome]} {family} {name} = {value:.4f}{extra}")
            logged.append((family, name))
    return logged


def next_steps(db: str, run: str, model: str, metric: tuple[str, str] | None) -> list[str]:
    """Commands to look at what was logged (each works on this registry as printed)."""
    base = f"--db {shlex.quote(db)}"
    lines = [f"lightml list {base} --run {shlex.quote(run)}",
             f"lightml info {base} --model {shlex.quote(model)} --run {shlex.quote(run)}"]
    if metric is not None:
        family, name = map(shlex.quote, metric)
        lines.append(f"lightml history {base} --model {shlex.quote(model)} --run {shlex.quote(run)} "
                     f"--family {family} --metric {name}")
        lines.append(f"lightml top {base} --family {family} --metric {name}")
    return lines


def main() -> int:
    config_path = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "config.yaml"
    if not config_path.is_file():
        sys.exit(f"Config not found: {config_path}")
    config = load_config(config_path)
    model, run = config["model_path"], config["run_name"]
    force = bool(config.get("force", False))
    all_shots = set(config.get("shots", [0]))
    Path(config["db"]).parent.mkdir(parents=True, exist_ok=True)
    first_metric = None
    with LightMLHandle(config["db"], run_name=run) as handle:
        handle.register_model(model, model)
        print(f"LightML: {config['db']}  run {run}  model {model}")
        for lang in config.get("lang", ["eng"]):
            for benchmark in config.get("benchmarks", ["hellaswag"]):
                tasks = TASKS.get(lang, {}).get(benchmark)
                if tasks is None:
                    print(f"✗ no tasks for benchmark {benchmark!r} in language {lang!r} (see TASKS)")
                    continue
                for shots in config.get("shots", [0]):
                    print(f"\n== {benchmark} | {lang} | {shots}-shot")
                    if not force and already_logged(handle, model, tasks, shots, all_shots):
                        print("  already in the registry: not evaluated again (force: true re-runs it)")
                        first_metric = first_metric or (family_for(tasks[0], shots, all_shots),
                                                        KEY_METRIC.get(tasks[0], "acc"))
                        continue
                    results = evaluate(config, tasks, shots)
                    if results is None:  # lm-eval returns None on non-zero ranks of a multi-GPU run
                        continue
                    logged = log_results(handle, model, results, shots, all_shots, force)
                    first_metric = first_metric or (logged[0] if logged else None)
    print("\nDone. Look at it:")
    for line in next_steps(config["db"], run, model, first_metric):
        print(f"  {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
