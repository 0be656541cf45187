"""Registries several test folders build the same way (imported by their conftest.py files)."""

from __future__ import annotations

from lightml import LightMLHandle


def build_lineage(db, scores) -> None:
    """The ``lineage`` registry (tests/conftest.py) at ``db``, a path or a PostgreSQL URL:
    run r1: base -> sft -> dpo; eval/acc with per-sample scores on all three (dpo: 90 of
    them), eval/f1 with scores on base and sft, eval/loss, knowledge/mmlu, sft's eval/bleu, and
    a checkpoint of sft (no metrics). Run r2: its own base (acc 0.5, with scores) and solo.
    ``scores``: ``lineage_scores``."""
    with LightMLHandle(db, run_name="r1") as h:
        h.register_model("base", "org/base")
        h.register_model("sft", "org/sft", parent_name="base")
        h.register_model("dpo", "org/dpo", parent_name="sft")
        h.log_model_metric("base", "eval", "acc", 0.6, scores=scores.base_acc)
        h.log_model_metric("sft", "eval", "acc", 0.7, scores=scores.sft_acc)
        h.log_model_metric("dpo", "eval", "acc", 0.72, scores=[1] * 90)
        h.log_model_metric("base", "eval", "f1", 0.5495, scores=scores.base_f1)
        h.log_model_metric("sft", "eval", "f1", 0.6495, scores=scores.sft_f1)
        h.log_metrics("base", {"eval": {"loss": 2.0}, "knowledge": {"mmlu": 0.3}})
        h.log_metrics("sft", {"eval": {"loss": 1.8, "bleu": 10.5}, "knowledge": {"mmlu": 0.3}})
        h.log_metrics("dpo", {"eval": {"loss": 1.9}, "knowledge": {"mmlu": 0.35}})
        h.register_checkpoint("sft", 100, "/ckpt/sft-100")
    with LightMLHandle(db, run_name="r2") as h:
        h.register_model("base", "org/base-r2")
        h.log_model_metric("base", "eval", "acc", 0.5, scores=[1] * 50 + [0] * 50)
        h.register_model("solo", "org/solo")
        h.log_model_metric("solo", "eval", "acc", 0.1)
