"""flips and check_regression on both handles and both engines (``db``, ``lineage``: a SQLite
file, a PostgreSQL database): which documents flipped, paired by document, by direction, at
checkpoints, with the texts read back from scanned samples files (and a plain note when a
file moved or changed); the regression gate, Holm-adjusted and direction-aware."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
from pathlib import Path

import pytest

from lightml.async_handle import AsyncLightMLHandle
from lightml.errors import InvalidInputError, NotFoundError
from lightml.handle import LightMLHandle
from lightml.ingest.scan import scan_and_import
from lightml.read import stats
from lightml.read.flips import TEXT_LIMIT

DATA = Path(__file__).resolve().parents[1] / "data"


# -- flips ---------------------------------------------------------------------------------------


def test_flips_lists_every_document_whose_scores_differ(lineage, lineage_scores) -> None:
    a, b = lineage_scores.base_acc, lineage_scores.sft_acc
    with LightMLHandle(lineage, "r1") as h:
        found = h.flips("base", "sft", "eval", "acc")
    # No document keys were logged: documents are named by position.
    assert found == [{"doc": i, "a": float(a[i]), "b": float(b[i]), "better": "a" if a[i] > b[i] else "b"}
                     for i in range(100) if a[i] != b[i]]
    assert sum(1 for item in found if item["better"] == "a") == 10  # compare_stats' only_a
    assert sum(1 for item in found if item["better"] == "b") == 20


def test_flips_pair_by_document_in_a_order_and_follow_the_metric_direction(db) -> None:
    with LightMLHandle(db, "r") as h:
        h.register_model("a", "/a")
        h.register_model("b", "/b")
        h.log_model_metric("a", "eval", "acc", 0.5, scores=[1, 0, 1, 0], doc_ids=["q1", "q2", "q3", "q4"])
        h.log_model_metric("b", "eval", "acc", 0.5, scores=[1, 1, 0, 0], doc_ids=["q4", "q3", "q2", "q1"])
        h.log_model_metric("a", "eval", "loss", 1.5, scores=[1.0, 2.0], doc_ids=["q1", "q2"])
        h.log_model_metric("b", "eval", "loss", 1.5, scores=[2.0, 1.0], doc_ids=["q1", "q2"])
        # b in a's order: q1 0, q2 0, q3 1, q4 1
        assert h.flips("a", "b", "eval", "acc") == [
            {"doc": "q1", "a": 1.0, "b": 0.0, "better": "a"},
            {"doc": "q4", "a": 0.0, "b": 1.0, "better": "b"},
        ]
        assert h.flips("a", "b", "eval", "acc", limit=1) == [{"doc": "q1", "a": 1.0, "b": 0.0, "better": "a"}]
        assert h.flips("a", "b", "eval", "acc", limit=0) == []
        # A loss: the lower score is the better one.
        assert [item["better"] for item in h.flips("a", "b", "eval", "loss")] == ["a", "b"]
        assert h.flips("a", "a", "eval", "acc") == []


def test_flips_of_checkpoints(db) -> None:
    with LightMLHandle(db, "r") as h:
        h.register_model("m", "/m")
        first, second = h.register_checkpoint("m", 100, "/m/100"), h.register_checkpoint("m", 200, "/m/200")
        h.log_checkpoint_metric(first, "eval", "acc", 0.5, scores=[1, 0])
        h.log_checkpoint_metric(second, "eval", "acc", 0.5, scores=[0, 1])
        h.log_model_metric("m", "eval", "acc", 0.0, scores=[0, 0])
        assert h.flips("m", "m", "eval", "acc", step_a=100, step_b=200) == [
            {"doc": 0, "a": 1.0, "b": 0.0, "better": "a"}, {"doc": 1, "a": 0.0, "b": 1.0, "better": "b"}]
        assert h.flips("m", "m", "eval", "acc", step_b=200) == [{"doc": 1, "a": 0.0, "b": 1.0, "better": "b"}]
        with pytest.raises(NotFoundError, match="'m' has no checkpoint at step 300"):
            h.flips("m", "m", "eval", "acc", step_a=300)


def test_flips_refuse_what_cannot_be_paired(lineage) -> None:
    with LightMLHandle(lineage, "r1") as h:
        with pytest.raises(NotFoundError, match="no per-sample scores for model 'base', family 'eval', metric 'loss'"):
            h.flips("base", "sft", "eval", "loss")
        with pytest.raises(InvalidInputError, match="'base' has 100 scores and 'dpo' has 90"):
            h.flips("base", "dpo", "eval", "acc")
        with pytest.raises(InvalidInputError, match="limit must be an integer >= 0"):
            h.flips("base", "sft", "eval", "acc", limit=-1)
        with pytest.raises(InvalidInputError, match="limit"):
            h.flips("base", "sft", "eval", "acc", limit=True)
        with pytest.raises(NotFoundError, match="model 'nobody' not found"):
            h.flips("base", "nobody", "eval", "acc")


def test_flips_refuse_scores_of_different_documents(db) -> None:
    with LightMLHandle(db, "r") as h:
        h.register_model("a", "/a")
        h.register_model("b", "/b")
        h.log_model_metric("a", "eval", "acc", 0.5, scores=[1, 0], doc_ids=["q1", "q2"])
        h.log_model_metric("b", "eval", "acc", 0.5, scores=[1, 0], doc_ids=["q1", "q3"])
        with pytest.raises(InvalidInputError, match="scored on different documents"):
            h.flips("a", "b", "eval", "acc")


def test_the_async_handle_gives_the_same_flips(lineage) -> None:
    async def both():
        async with AsyncLightMLHandle(lineage, "r1") as h:
            return await h.flips("base", "sft", "eval", "acc", limit=5), await h.check_regression("sft", "base")

    flips, gate = asyncio.run(both())
    with LightMLHandle(lineage, "r1") as h:
        assert flips == h.flips("base", "sft", "eval", "acc", limit=5)
        assert gate == h.check_regression("sft", "base")


# -- the texts of a flip, from the samples files ----------------------------------------------------


@pytest.fixture
def scanned(db, tmp_path: Path) -> tuple[object, Path]:
    """The lm-eval 0.4.13 outputs (dummy-a .. dummy-d) copied and scanned into ``db``."""
    results = Path(shutil.copytree(DATA / "lm_eval_0413", tmp_path / "results"))
    with LightMLHandle(db, "scan"):
        pass
    scan_and_import(db, "scan", results)
    return db, results


def _samples_by_key(path: Path) -> dict[str, dict]:
    samples = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return {f"{s['doc_id']}:{s['doc_hash'][:16]}": s for s in samples}


def test_flips_carry_the_texts_of_the_scanned_samples_files(scanned) -> None:
    db, results = scanned
    with LightMLHandle(db, "scan") as h:
        found = h.flips("dummy-a", "dummy-b", "tiny_mc", "acc")
    assert len(found) == 15
    a_file = _samples_by_key(next((results / "dummy-a").glob("samples_tiny_mc_*.jsonl")))
    b_file = _samples_by_key(next((results / "dummy-b").glob("samples_tiny_mc_*.jsonl")))
    for item in found:
        sample_a, sample_b = a_file[item["doc"]], b_file[item["doc"]]
        assert (item["a"], item["b"]) == (sample_a["acc"], sample_b["acc"])
        choices = [request["arg_1"] for request in sample_a["arguments"].values()]
        assert item["prompt"] == sample_a["arguments"]["gen_args_0"]["arg_0"]
        gold = int(sample_a["target"])
        assert item["target"] == f"{gold}: {choices[gold].strip()}"
        for side, sample in (("response_a", sample_a), ("response_b", sample_b)):
            likelihoods = [float(pair[0]) for pair in sample["filtered_resps"]]
            best = likelihoods.index(max(likelihoods))
            assert item[side] == f"{best}: {choices[best].strip()}"
        # acc is 1 exactly where the most likely choice is the gold one
        assert (item["response_a"] == item["target"]) == (item["a"] == 1.0)
        assert "text_note" not in item


def test_a_moved_or_changed_samples_file_is_said_plainly(scanned) -> None:
    db, results = scanned
    samples_a = next((results / "dummy-a").glob("samples_tiny_mc_*.jsonl"))
    with LightMLHandle(db, "scan") as h:
        shown = h.flips("dummy-a", "dummy-b", "tiny_mc", "acc", limit=1)
        assert shown[0]["prompt"] == "Question: What is 18 + 6?\nAnswer:"
        os.utime(samples_a, ns=(1, 1))  # touched, the same content: still the file scanned
        assert h.flips("dummy-a", "dummy-b", "tiny_mc", "acc", limit=1) == shown
        # an edit of the same length that keeps every document's id and hash: caught by the hash
        samples_a.write_text(samples_a.read_text(encoding="utf-8").replace("What is 18 + 6", "What is 99 + 6"),
                             encoding="utf-8")
        (edited,) = h.flips("dummy-a", "dummy-b", "tiny_mc", "acc", limit=1)
        assert edited["response_a"] is None and edited["prompt"] == shown[0]["prompt"]  # (B's file gave it)
        assert "changed since the scan (its SHA-256 differs)" in edited["text_note"]
    samples_b = next((results / "dummy-b").glob("samples_tiny_mc_*.jsonl"))
    lines = samples_b.read_text(encoding="utf-8").splitlines(keepends=True)
    samples_b.write_text("".join(reversed(lines)), encoding="utf-8")  # same bytes, other places
    with LightMLHandle(db, "scan") as h:
        changed = h.flips("dummy-a", "dummy-b", "tiny_mc", "acc", limit=2)
        assert all("changed since the scan (its SHA-256 differs)" in item["text_note"] for item in changed)
        assert all(item["response_b"] is None and str(samples_b) in item["text_note"] for item in changed)
        samples_b.rename(samples_b.with_suffix(".moved"))
        moved = h.flips("dummy-a", "dummy-b", "tiny_mc", "acc", limit=2)
        assert all("cannot be read" in item["text_note"] and str(samples_b) in item["text_note"] for item in moved)
        # the scores never depended on the file
        assert [(i["doc"], i["a"], i["b"]) for i in moved] == [(i["doc"], i["a"], i["b"]) for i in changed]


def test_texts_follow_overwrites_deletes_and_restores(scanned) -> None:
    db, _ = scanned
    with LightMLHandle(db, "scan") as h:
        before = h.flips("dummy-a", "dummy-b", "tiny_mc", "acc", limit=3)
        h.delete_model("dummy-b")
        h.restore_model("dummy-b")
        assert h.flips("dummy-a", "dummy-b", "tiny_mc", "acc", limit=3) == before
        # scores logged again by hand, without samples file or document keys: B's texts are no
        # longer known, and the sides pair by position (lm-eval's doc_id here)
        scores = h.get_detailed_scores("dummy-b", "tiny_mc", "acc")
        h.log_model_metric("dummy-b", "tiny_mc", "acc", sum(scores) / len(scores), scores=scores, force=True)
        after = h.flips("dummy-a", "dummy-b", "tiny_mc", "acc", limit=3)
    assert [item["doc"] for item in after] == [int(item["doc"].split(":")[0]) for item in before]
    assert all(item["response_b"] is None and item["response_a"] == old["response_a"]
               for item, old in zip(after, before))


def test_a_generation_tasks_texts_are_its_target_and_filtered_answer_cut_to_the_limit(db, tmp_path: Path) -> None:
    folder = tmp_path / "results" / "m1"
    folder.mkdir(parents=True)
    other = tmp_path / "results" / "m2"
    other.mkdir()
    prompt = "shot " * 400 + "Question: the last one?"
    for where, score in ((folder, 1.0), (other, 0.0)):
        stamp = "2026-01-01T00-00-00.000000"
        sample = {"doc_id": 0, "doc": {}, "target": "y" * 900, "arguments": {"gen_args_0": {"arg_0": prompt,
                  "arg_1": {"until": ["\n"]}}}, "resps": [["z" * 900]], "filtered_resps": ["z" * 900],
                  "filter": "none", "metrics": ["exact_match"], "doc_hash": "ab" * 32, "prompt_hash": "p",
                  "target_hash": "t", "exact_match": score}
        (where / f"samples_gen_{stamp}.jsonl").write_text(json.dumps(sample) + "\n", encoding="utf-8")
        (where / f"results_{stamp}.json").write_text(json.dumps({
            "results": {"gen": {"alias": "gen", "exact_match,none": score}}, "n-shot": {"gen": 0},
            "n-samples": {"gen": {"original": 1, "effective": 1}},
            "config": {"model_args": f"pretrained={where.name}"}}), encoding="utf-8")
    with LightMLHandle(db, "r"):
        pass
    scan_and_import(db, "r", tmp_path / "results")
    with LightMLHandle(db, "r") as h:
        (item,) = h.flips("m1", "m2", "gen", "exact_match")
    # the prompt keeps its end (a few-shot prompt ends with the question), the rest its start
    assert len(item["prompt"]) == TEXT_LIMIT and item["prompt"].startswith("…")
    assert item["prompt"].endswith("Question: the last one?")
    assert item["target"] == "y" * (TEXT_LIMIT - 1) + "…" and item["response_a"] == "z" * (TEXT_LIMIT - 1) + "…"


# -- the regression gate -----------------------------------------------------------------------


def test_the_gate_fails_a_candidate_significantly_worse_after_holm(lineage) -> None:
    with LightMLHandle(lineage, "r1") as h:
        tested = h.compare_stats_all("sft", "base")
        gate = h.check_regression("sft", "base")
        assert h.check_regression("base", "sft")["passed"]
    # base is worse than sft on f1 (bootstrap, significant), and on acc only by chance
    assert not gate["passed"]
    assert [(i["family"], i["metric_name"]) for i in gate["regressed"]] == [("eval", "f1")]
    assert gate["tested"] == 2 and gate["improved"] == [] and gate["correction"] == "holm"
    p_values = [i["p_value"] for i in tested]
    assert [i["p_holm"] for i in tested] == pytest.approx(stats.holm(p_values))
    # at a level below f1's adjusted p-value, nothing is significant: the candidate passes
    f1 = next(i for i in tested if i["metric_name"] == "f1")
    with LightMLHandle(lineage, "r1") as h:
        assert h.check_regression("sft", "base", alpha=f1["p_holm"] * 0.99)["passed"]


def test_the_gate_knows_that_a_higher_loss_is_worse(db) -> None:
    with LightMLHandle(db, "r") as h:
        h.register_model("base", "/b")
        h.register_model("new", "/n")
        h.log_model_metric("base", "eval", "loss", 1.0, scores=[1.0 + 0.01 * i for i in range(50)])
        h.log_model_metric("new", "eval", "loss", 1.5, scores=[1.5 + 0.01 * i for i in range(50)])
        worse = h.check_regression("base", "new")
        better = h.check_regression("new", "base")
    assert not worse["passed"] and worse["regressed"][0]["metric_name"] == "loss"
    assert better["passed"] and better["improved"][0]["metric_name"] == "loss"


def test_the_gate_refuses_to_pass_when_it_tests_nothing(lineage) -> None:
    with LightMLHandle(lineage, "r1") as h:
        with pytest.raises(InvalidInputError, match="nothing to test: 'base' and 'sft' have no metric with per-sample "
                                                    "scores in common in family 'knowledge'"):
            h.check_regression("base", "sft", "knowledge")
        with pytest.raises(InvalidInputError, match="none of the 1 metric.s. with per-sample scores on both 'base' "
                                                    "and 'dpo' can be paired .the first: cannot pair eval/acc"):
            h.check_regression("base", "dpo")  # acc: 100 scores against 90
        for alpha in (0, 1, -0.1, float("nan"), "0.05", True):
            with pytest.raises(InvalidInputError, match="alpha must be a number between 0 and 1"):
                h.check_regression("base", "sft", alpha=alpha)
