"""Which registry a command opens without --db: LIGHTML_DB, a .lightml file, the only *.db of
the working folder, in that order; --db wins. Run in this process with the environment and
working folder of each call set."""

from __future__ import annotations

import json
from pathlib import Path

from lightml.handle import LightMLHandle


def test_database_resolution_order(model_tree: Path, tmp_path: Path, cli) -> None:
    env_db = tmp_path / "env"
    env_db.mkdir()
    with LightMLHandle(env_db / "env.db", "e") as h:
        h.register_model("from-env", "org/e")
    work = tmp_path / "work"
    work.mkdir()

    def models(cwd: Path, env: dict[str, str] | None = None, *args: str) -> list[str] | str:
        result = cli("list", "--json", *args, cwd=cwd, env=env)
        if result.returncode:
            return result.stderr.strip()
        return [m["model"] for m in json.loads(result.stdout)]

    no_env = {"LIGHTML_DB": None}
    message = models(work, no_env)
    assert "no registry given and none found here" in message and "LIGHTML_DB" in message
    (work / "one.db").write_bytes(model_tree.read_bytes())  # the only *.db here
    assert models(work, no_env) == ["base", "dpo", "sft", "twin", "other"]
    (work / "two.db").write_bytes(b"")
    assert "several registries here (one.db, two.db)" in models(work, no_env)
    (work / ".lightml").write_text(f"# my registry\ndb={model_tree}\n")
    assert models(work, no_env)[0] == "base"
    assert models(work, {"LIGHTML_DB": str(env_db / "env.db")}) == ["from-env"]  # env beats .lightml
    assert models(work, {"LIGHTML_DB": str(env_db / "env.db")}, "--db", str(model_tree))[0] == "base"  # --db wins
    (work / ".lightml").write_text("nothing useful\n")
    assert "has no 'db=...' line" in models(work, no_env)
