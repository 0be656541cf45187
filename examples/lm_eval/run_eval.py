#!/usr/bin/env python3
"""Evaluate a model with lm-evaluation-harness and log everything into a LightML registry.

For each (language, benchmark, shots) of config.yaml this calls lm-eval's Python API, then
logs every metric of every task, with its per-sample scores and the documents they are for,
through ``LightMLHandle``. The scores are what ``lightml stats`` needs to tell whether a
difference between two models is real.

    pip install -e ".[examples]"           # lm-eval and pyyaml, from the repository root
    python examples/lm_eval/run_eval.py    # uses config.yaml next to this file
    python examples/lm_eval/run_eval.py my_config.yaml

Families are named ``<lang>_<benchmark>_<shots>shot`` and metrics ``<task>/<metric>``, with
the lm-eval filter kept when it is not "none" (``tiny_math/exact_match,strict-match``).
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path

import yaml

from lightml import METRIC_INSERTED, METRIC_SKIPPED, METRIC_UPDATED, LightMLHandle
from lightml.lm_eval_format import collect_scores, metric_name

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


def log_results(handle: LightMLHandle, model: str, results: dict, family: str, force: bool) -> None:
    samples = results.get("samples", {})
    for task, values in results["results"].items():
        per_doc, problems = collect_scores((f"{task} sample {i}", s) for i, s in enumerate(samples.get(task, [])))
        for problem in problems:
            print(f"  ! {task}: {problem}")
        for key, value in values.items():
            if key in ("alias", "name", "sample_len", "sample_count") or not isinstance(value, (int, float)):
                continue  # labels, counts and "N/A" stderrs are not metrics
            name = metric_name(key)
            scored = per_doc.get(name)
            outcome = handle.log_model_metric(
                model, family, f"{task}/{name}", float(value), force=force,
                scores=scored.scores if scored else None, doc_ids=scored.doc_keys if scored else None)
            extra = f" + {len(scored.scores)} per-sample scores" if scored else ""
            print(f"  ✓ {OUTCOME[outcome]} {family} {task}/{name} = {value:.4f}{extra}")


def main() -> int:
    config_path = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "config.yaml"
    if not config_path.is_file():
        sys.exit(f"Config not found: {config_path}")
    config = load_config(config_path)
    model = config["model_path"]
    Path(config["db"]).parent.mkdir(parents=True, exist_ok=True)
    with LightMLHandle(config["db"], run_name=config["run_name"]) as handle:
        handle.register_model(model, model)
        print(f"LightML: {config['db']}  run {config['run_name']}  model {model}")
        for lang in config.get("lang", ["eng"]):
            for benchmark in config.get("benchmarks", ["hellaswag"]):
                tasks = TASKS.get(lang, {}).get(benchmark)
                if tasks is None:
                    print(f"✗ no tasks for benchmark {benchmark!r} in language {lang!r} (see TASKS)")
                    continue
                for shots in config.get("shots", [0]):
                    print(f"\n== {benchmark} | {lang} | {shots}-shot")
                    results = evaluate(config, tasks, shots)
                    if results is None:  # lm-eval returns None on non-zero ranks of a multi-GPU run
                        continue
                    log_results(handle, model, results, f"{lang}_{benchmark}_{shots}shot",
                                bool(config.get("force", False)))
    print(f"\nDone. Look at it: lightml list --db {config['db']}   "
          f"lightml stats --db {config['db']} --model-a A --model-b B --all")
    return 0


if __name__ == "__main__":
    sys.exit(main())
