"""``lightml demo``: a small, realistic registry to explore in a minute.

A base -> SFT -> DPO lineage across two runs, SFT checkpoints, three metric families,
per-sample scores (so paired tests have something to chew on), one forced overwrite and
one deleted model, so that history, restore, replay and verify all show something.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

from lightml.errors import ConflictError, LightMLError
from lightml.handle import LightMLHandle
from lightml.log.opening import open_registry_readonly
from lightml.read import catalog

FAMILIES = {
    "reasoning": {"arc_challenge/acc": 0.0, "hellaswag/acc_norm": 0.0, "gsm8k/exact_match": 0.0},
    "knowledge": {"mmlu/acc": 0.0, "triviaqa/exact_match": 0.0},
    "language": {"wikitext/word_perplexity": 0.0, "lambada/acc": 0.0},
}

# Accuracy-like scores per model; perplexity is lower-is-better.
MODELS = {
    "llama-1b-base": {"arc_challenge/acc": 0.312, "hellaswag/acc_norm": 0.601, "gsm8k/exact_match": 0.051,
                      "mmlu/acc": 0.311, "triviaqa/exact_match": 0.254, "wikitext/word_perplexity": 11.82,
                      "lambada/acc": 0.621},
    "llama-1b-sft": {"arc_challenge/acc": 0.347, "hellaswag/acc_norm": 0.612, "gsm8k/exact_match": 0.213,
                     "mmlu/acc": 0.356, "triviaqa/exact_match": 0.261, "wikitext/word_perplexity": 12.40,
                     "lambada/acc": 0.604},
    "llama-1b-dpo": {"arc_challenge/acc": 0.361, "hellaswag/acc_norm": 0.625, "gsm8k/exact_match": 0.229,
                     "mmlu/acc": 0.358, "triviaqa/exact_match": 0.259, "wikitext/word_perplexity": 12.71,
                     "lambada/acc": 0.598},
    "llama-1b-dpo-beta0.5": {"arc_challenge/acc": 0.330, "hellaswag/acc_norm": 0.590, "gsm8k/exact_match": 0.190,
                             "mmlu/acc": 0.349, "triviaqa/exact_match": 0.250, "wikitext/word_perplexity": 13.05,
                             "lambada/acc": 0.587},
}
N_SAMPLES = {"arc_challenge/acc": 1172, "hellaswag/acc_norm": 1000, "gsm8k/exact_match": 1319}


def _scores(rng: random.Random, accuracy: float, n: int, shared: list[float]) -> list[int]:
    # Correlated with a shared per-question difficulty, as two models on one benchmark are.
    return [1 if d + 0.2 * (rng.random() - 0.5) < accuracy else 0 for d in shared[:n]]


def _log_model(h: LightMLHandle, rng: random.Random, model: str, difficulty: dict[str, list[float]]) -> None:
    values = MODELS[model]
    for family, metrics in FAMILIES.items():
        for key in metrics:
            n = N_SAMPLES.get(key)
            if n is None:
                h.log_model_metric(model, family, key, values[key])
                continue
            scores = _scores(rng, values[key], n, difficulty[key])
            h.log_model_metric(model, family, key, round(sum(scores) / n, 4), scores=scores)


RUNS = {"pretrain-baselines", "sft-dpo-2026-11"}


def _is_demo(db: Path) -> bool:
    """Is this a registry that ``lightml demo`` built (so rebuilding it loses nothing)?"""
    try:
        # (A file of an earlier build gets its missing tables here, as on any read.)
        conn = open_registry_readonly(db)
        try:
            runs, models = catalog.names_ever_held(conn)
        finally:
            conn.close()
    except (sqlite3.Error, LightMLError):
        return False
    return runs <= RUNS and models <= set(MODELS)


def build_demo(folder: str | Path = "lightml-demo", overwrite: bool = False) -> Path:
    """Build the demo registry in ``<folder>/main.db``; an existing file is replaced only
    with ``overwrite`` (``--path`` may point at someone's real registry)."""
    folder = Path(folder)
    db = folder / "main.db"
    if db.exists() and not overwrite and not _is_demo(db):
        raise ConflictError(f"{db} already exists and is not a demo registry; use another --path "
                            "(or --overwrite to replace it)")
    folder.mkdir(parents=True, exist_ok=True)
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    rng = random.Random(7)
    difficulty = {key: [rng.random() for _ in range(n)] for key, n in N_SAMPLES.items()}
    checkpoints_dir = folder / "checkpoints"
    for step in (1000, 2000, 3000):
        (checkpoints_dir / f"sft-step{step}").mkdir(parents=True, exist_ok=True)

    with LightMLHandle(db, run_name="pretrain-baselines") as h:  # the names in RUNS
        h.register_model("llama-1b-base", "meta-llama/Llama-3.2-1B", params={"size": "1B"}, tags=["base"])
        _log_model(h, rng, "llama-1b-base", difficulty)

    with LightMLHandle(db, run_name="sft-dpo-2026-11") as h:
        h.register_model("llama-1b-sft", str(checkpoints_dir / "sft-step3000"), parent_name="llama-1b-base",
                         params={"lr": 2e-5, "dataset": "tulu-3-sft", "epochs": 2}, tags=["sft"])
        for step, acc in ((1000, 0.321), (2000, 0.339), (3000, 0.347)):
            cid = h.register_checkpoint("llama-1b-sft", step, checkpoints_dir / f"sft-step{step}")
            h.log_checkpoint_metric(cid, "reasoning", "arc_challenge/acc", acc)
            h.log_checkpoint_metric(cid, "knowledge", "mmlu/acc", round(acc + 0.009, 3))
        _log_model(h, rng, "llama-1b-sft", difficulty)
        for model, beta in (("llama-1b-dpo", 0.1), ("llama-1b-dpo-beta0.5", 0.5)):
            h.register_model(model, f"my-org/{model}", parent_name="llama-1b-sft",
                             params={"lr": 5e-7, "beta": beta, "dataset": "ultrafeedback"}, tags=["dpo"])
            _log_model(h, rng, model, difficulty)
        # gsm8k was first scored with a broken answer extractor, then re-run and overwritten.
        h.log_model_metric("llama-1b-dpo", "reasoning", "gsm8k/exact_match", 0.229, force=True)
        h.delete_model("llama-1b-dpo-beta0.5")
        # What the dashboard saves in the registry: a summary set, two charts and a view.
        reasoning = [["reasoning", m] for m in ("arc_challenge/acc", "gsm8k/exact_match", "hellaswag/acc_norm")]
        h.save_dashboard_item("summary", "reasoning average", {"metrics": reasoning})
        h.save_dashboard_item("chart", "reasoning, base -> SFT -> DPO",
                              {"type": "grouped_bar", "metrics": reasoning, "error_bars": True})
        h.save_dashboard_item("chart", "reasoning profile", {"type": "radar", "metrics": reasoning})
        h.save_dashboard_item("view", "tuned models, by gsm8k",
                              {"family": "reasoning", "where": "tag:sft or tag:dpo",
                               "sort_by": ["reasoning", "gsm8k/exact_match"], "sort_dir": -1})
    return db


NEXT_STEPS = """\
Created {db}: 3 models (base -> SFT -> DPO) in 2 runs, 3 SFT checkpoints, 3 metric families,
per-sample scores, one forced overwrite and one deleted model. Try:

  lightml gui     --db {db}      # the dashboard, on http://127.0.0.1:5050 (saved charts, a view, a summary set)
  lightml stats   --db {db} --model-a llama-1b-sft --model-b llama-1b-dpo --all
  lightml compare --db {db} --model-a llama-1b-base --model-b llama-1b-sft
  lightml compare --db {db} --a llama-1b-sft --b llama-1b-dpo --fail-on-regression   # exit 1 on a regression
  lightml flips   --db {db} --a llama-1b-sft --b llama-1b-dpo --family reasoning --metric hellaswag/acc_norm
  lightml diff    --db {db} --models llama-1b-base llama-1b-sft llama-1b-dpo
  lightml list    --db {db} --where "tag:dpo or params.lr >= 1e-5"     # filter by params, tags, metrics
  lightml exists  --db {db} --model 'llama-1b-*' --family reasoning
  lightml history --db {db} --model llama-1b-dpo --family reasoning --metric gsm8k/exact_match
  lightml history --db {db} --model llama-1b-sft --family reasoning --metric arc_challenge/acc --step 2000
  lightml info    --db {db} --model llama-1b-sft
  lightml export  --db {db} --output lightml-demo/report.xlsx
  lightml verify  --db {db}
  lightml replay  --db {db} --out {db_dir}/past.db --upto 20
  python -c "from lightml import LightMLHandle; h = LightMLHandle('{db}'); h.restore_model('llama-1b-dpo-beta0.5'); print(h.search('llama*', 'reasoning'))"
"""
