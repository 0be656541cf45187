"""Naming models: one rule (exact name, RUN/MODEL, MODEL@RUN, --run preferred), the spellings
the pickers offer, and the Python API taking the same spellings."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from lightml import LightMLHandle, compare_models, diff_models
from lightml.errors import AmbiguousNameError, InvalidInputError, NotFoundError
from lightml.read.resolve import find_model, model_spellings


SFT = "llama-1b-sft"
HUB = "meta-llama/Llama-3.2-1B"


def _find(db: Path, spelling: str, run: str | None = None):
    conn = sqlite3.connect(db)
    try:
        return find_model(conn, spelling, run)
    finally:
        conn.close()


def test_run_qualified_spellings_name_one_model(twice: Path) -> None:
    assert _find(twice, f"eval-2/{SFT}")[1:] == (SFT, "eval-2")
    assert _find(twice, f"{SFT}@eval-1")[1:] == (SFT, "eval-1")
    # --run is a preference: it picks its run's model, and a name only elsewhere is still found
    assert _find(twice, SFT, "eval-2")[1:] == (SFT, "eval-2")
    assert _find(twice, "base", "eval-2")[1:] == ("base", "eval-1")
    # a spelled run wins over --run
    assert _find(twice, f"eval-1/{SFT}", "eval-2")[1:] == (SFT, "eval-1")


def test_an_exact_name_always_wins(twice: Path) -> None:
    # "meta-llama/Llama-3.2-1B" is a model's name; the run meta-llama's model needs MODEL@RUN
    assert _find(twice, HUB)[1:] == (HUB, "hub")
    assert _find(twice, "Llama-3.2-1B@meta-llama")[1:] == ("Llama-3.2-1B", "meta-llama")
    assert _find(twice, f"hub/{HUB}")[1:] == (HUB, "hub")  # split at the first "/": run "hub"


def test_an_ambiguous_name_lists_the_spellings_that_work(twice: Path) -> None:
    with pytest.raises(AmbiguousNameError, match=f"'eval-1/{SFT}', 'eval-2/{SFT}'"):
        _find(twice, SFT)
    with pytest.raises(NotFoundError, match="RUN/MODEL or MODEL@RUN"):
        _find(twice, f"eval-3/{SFT}")
    with pytest.raises(NotFoundError, match="run 'eval-3' not found"):
        _find(twice, SFT, "eval-3")


def test_the_suggested_spelling_avoids_one_an_exact_name_takes(tmp_path: Path) -> None:
    db = tmp_path / "taken.db"
    with LightMLHandle(db, "r") as h:
        h.register_model("m", "org/m")
        h.register_model("r/m", "org/rm")  # takes the spelling "r/m" by its exact name
    with LightMLHandle(db, "s") as h:
        h.register_model("m", "org/m2")
    with pytest.raises(AmbiguousNameError, match="'m@r', 's/m'"):
        _find(db, "m")


def test_pickers_offer_spellings_that_name_one_model(twice: Path) -> None:
    conn = sqlite3.connect(twice)
    try:
        offered = model_spellings(conn)
        assert f"eval-1/{SFT}" in offered and f"eval-2/{SFT}" in offered and "base" in offered
        assert [find_model(conn, s).id for s in offered] == sorted(
            {find_model(conn, s).id for s in offered}, key=[find_model(conn, s).id for s in offered].index)
    finally:
        conn.close()


def test_python_api_takes_the_same_spellings(twice: Path) -> None:
    result = compare_models(twice, f"eval-1/{SFT}", f"{SFT}@eval-2")
    assert (result.run_a, result.run_b) == ("eval-1", "eval-2") and result.deltas[0].delta == 0.02
    data = diff_models(twice, ["base", SFT, "dpo"], run_name="eval-2")
    assert data["runs"] == {"base": "eval-1", SFT: "eval-2", "dpo": "eval-1"}
    assert data["rows"][0]["values"] == {"base": 0.3, SFT: 0.42, "dpo": 0.45}
    with pytest.raises(InvalidInputError, match="listed more than once"):
        diff_models(twice, [f"eval-1/{SFT}", f"{SFT}@eval-1"])
    with LightMLHandle(twice) as h:
        stats = h.compare_stats(f"eval-1/{SFT}", f"eval-2/{SFT}", "eval", "acc")
    assert (stats["run_a"], stats["run_b"], stats["mean_b"]) == ("eval-1", "eval-2", 0.42)
