"""What the CLI tests share: their registries (each is the data of exact outputs some test
asserts, so each stays as it was written), ``cli_out``, the rows the edit tests compare, and
``on_terminal``, the CLI run as a process on a pseudo-terminal (prompts and pickers only
show there)."""

from __future__ import annotations

import os
import pty
import select
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from lightml.handle import LightMLHandle


@pytest.fixture
def arc_registry(tmp_path: Path, verify_at_teardown) -> Path:
    """Run r1: base -> sft; reasoning/arc 0.31 on base, 0.35 (scores [1, 0, 1]) then forced to
    0.36 on sft, and 0.33 on sft's checkpoint at step 500 (events 1-4: run, base, sft, base's arc)."""
    db = tmp_path / "reg.db"
    with LightMLHandle(db, run_name="r1") as h:
        h.register_model("base", "org/base")
        h.register_model("sft", "org/sft", parent_name="base")
        h.log_model_metric("base", "reasoning", "arc", 0.31)
        h.log_model_metric("sft", "reasoning", "arc", 0.35, scores=[1, 0, 1])
        h.log_model_metric("sft", "reasoning", "arc", 0.36, force=True)
        cid = h.register_checkpoint("sft", 500, "/ckpt/sft-500")
        h.log_checkpoint_metric(cid, "reasoning", "arc", 0.33)
    return verify_at_teardown(db)


@pytest.fixture
def model_tree(tmp_path: Path, verify_at_teardown) -> Path:
    """Run r1: base -> sft -> dpo and sft -> twin, each with eval/acc and eval/loss (sft and
    twin tie on acc), a checkpoint of sft at step 100, sft's notes "lr 2e-5". Run r2: other
    (knowledge/mmlu)."""
    db = tmp_path / "reg.db"
    with LightMLHandle(db, "r1") as h:
        h.register_model("base", "org/base")
        h.register_model("sft", "org/sft", parent_name="base")
        h.register_model("dpo", "org/dpo", parent_name="sft")
        h.register_model("twin", "org/twin", parent_name="sft")
        h.log_metrics("base", {"eval": {"acc": 0.5, "loss": 2.0}})
        h.log_metrics("sft", {"eval": {"acc": 0.6, "loss": 1.8}})
        h.log_metrics("dpo", {"eval": {"acc": 0.7, "loss": 1.9}})
        h.log_metrics("twin", {"eval": {"acc": 0.6, "loss": 1.7}})
        h.register_checkpoint("sft", 100, "/ckpt/sft-100")
        h.set_notes("sft", "lr 2e-5")
    with LightMLHandle(db, "r2") as h:
        h.register_model("other", "org/other")
        h.log_metrics("other", {"knowledge": {"mmlu": 0.3}})
    return verify_at_teardown(db)


@pytest.fixture
def sft_in_two_runs(tmp_path: Path, verify_at_teardown) -> Path:
    """Run r1: base, dpo and sft (no parents), each with eval/acc; run r2: another sft."""
    db = tmp_path / "reg.db"
    with LightMLHandle(db, "r1") as h:
        for name in ("base", "dpo", "sft"):
            h.register_model(name, f"org/{name}")
            h.log_model_metric(name, "eval", "acc", {"base": 0.3, "dpo": 0.5, "sft": 0.4}[name])
    with LightMLHandle(db, "r2") as h:
        h.register_model("sft", "org/sft-again")  # the same name in another run
        h.log_model_metric("sft", "eval", "acc", 0.45)
    return verify_at_teardown(db)


@pytest.fixture
def cli_out(cli) -> Callable[..., str]:
    """``cli_out(*args)``: the stdout of a ``lightml`` run that must succeed."""

    def run(*args) -> str:
        result = cli(*args)
        assert result.returncode == 0, result.stderr
        return result.stdout

    return run


@pytest.fixture
def log_rows() -> Callable[[Path], list[tuple]]:
    """``log_rows(db)``: (seq, type, payload) of every event: what a refused command must not change."""

    def rows(db: Path) -> list[tuple]:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT seq, type, payload FROM events ORDER BY seq").fetchall()

    return rows


@pytest.fixture
def model_rows() -> Callable[[Path], list[tuple]]:
    """``model_rows(db)``: (run, model, notes, hidden) of every model, ordered."""

    def rows(db: Path) -> list[tuple]:
        with sqlite3.connect(db) as conn:
            return conn.execute("SELECT r.run_name, m.model_name, m.notes, m.hidden FROM model m "
                                "LEFT JOIN run r ON r.id = m.run_id ORDER BY 1, 2").fetchall()

    return rows


@pytest.fixture
def on_terminal() -> Callable[..., str]:
    """``on_terminal(args, answers, env=None, prompt_end=b"]:")``: run ``python -m lightml ARGS``
    with stdin/stdout/stderr on a pseudo-terminal, answering prompts in order (a prompt: the
    output ends with ``prompt_end``; a picker's ends with "[1-N]:"); everything it showed."""

    def run(args: list, answers: list[str], env: dict[str, str] | None = None, prompt_end: bytes = b"]:") -> str:
        leader, follower = pty.openpty()
        proc = subprocess.Popen([sys.executable, "-m", "lightml", *map(str, args)], stdin=follower, stdout=follower,
                                stderr=follower, env={**os.environ, **(env or {})}, close_fds=True)
        os.close(follower)
        output = b""
        pending = list(answers)
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([leader], [], [], 0.2)
                if ready:
                    try:
                        chunk = os.read(leader, 65536)
                    except OSError:  # the child closed the terminal
                        break
                    if not chunk:
                        break
                    output += chunk
                    if pending and output.rstrip().endswith(prompt_end):
                        os.write(leader, (pending.pop(0) + "\n").encode())
                        output += b"\n"  # keep the prompt check from firing twice
                elif proc.poll() is not None:
                    break
        finally:
            proc.wait(timeout=30)
            os.close(leader)
        return output.decode(errors="replace").replace("\r\n", "\n")

    return run
