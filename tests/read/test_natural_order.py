"""Names in natural order, case-insensitive, everywhere a listing sorts them: ``mmlu_2shot``
before ``mmlu_10shot``, ``Llama`` beside ``llama`` (``lightml.read.natural``; the dashboard's
``naturalCompare`` is its twin, checked in the browser tests)."""

from __future__ import annotations

import json

from lightml.handle import LightMLHandle
from lightml.read.diff import diff_models
from lightml.read.natural import natural_sorted

NAMES = ["mmlu_10shot", "mmlu_2shot", "Mmlu_3shot", "arc", "ARC", "a10", "a9", "a1b"]


def test_digits_compare_as_numbers_and_case_does_not_matter() -> None:
    assert natural_sorted(NAMES) == ["a1b", "a9", "a10", "ARC", "arc", "mmlu_2shot", "Mmlu_3shot", "mmlu_10shot"]
    assert natural_sorted(reversed(NAMES)) == natural_sorted(NAMES)  # a total order: ties broken by the name


def test_listings_use_it(tmp_path, cli) -> None:
    db = tmp_path / "r.db"
    with LightMLHandle(db, "r") as h:
        for model in ("m10", "m2", "M1"):
            h.register_model(model, f"/{model}")
            h.log_metrics(model, {"fam": {"mmlu_10shot": 0.1, "mmlu_2shot": 0.2}, "Fam10": {"x": 1.0},
                                  "fam2": {"x": 1.0}})
    models = [m["model"] for m in json.loads(cli("list", "--db", str(db), "--json").stdout)]
    assert models == ["M1", "m2", "m10"]
    families = [f["family"] for f in json.loads(cli("list", "families", "--db", str(db), "--json").stdout)]
    assert families == ["fam", "fam2", "Fam10"]
    rows = [(r["family"], r["metric"]) for r in diff_models(db, ["m2", "m10"])["rows"]]
    assert rows == [("fam", "mmlu_2shot"), ("fam", "mmlu_10shot"), ("fam2", "x"), ("Fam10", "x")]
    info = cli("info", "--db", str(db), "--model", "m2").stdout
    assert info.index("mmlu_2shot") < info.index("mmlu_10shot")
