"""Which documents flipped: the per-document scores of one metric where two models differ.

``compare_stats`` says whether a difference is real; this says where it comes from. Both
sides are paired by ``significance.paired`` (by document key where both know them, else by
position), so a flip list never pairs different documents. Where ``scan`` recorded the
samples file of a side's scores (``score_sources``), each flip also carries the texts, read
from that file on demand: the registry keeps where each document's line is, not the text.
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from typing import Any, NamedTuple

import numpy as np

from lightml.errors import InvalidInputError, NotFoundError
from lightml.ingest.lm_eval_format import sample_texts
from lightml.read import queries, resolve, significance
from lightml.read.direction import lower_is_better

# Each text is cut to this many characters, marked with "…": the prompt keeps its end (a
# few-shot prompt ends with the question asked), the target and the responses their start.
TEXT_LIMIT = 500


class FlipList(NamedTuple):
    items: list[dict[str, Any]]  # see ``flips``
    documents: int               # documents both sides were scored on
    flipped: int                 # documents that differ (``items`` may hold only the first ones)
    better_a: int                # of those, where A is better
    by_document: bool            # paired by document key (False: by position, keys unknown)

    def counts(self) -> dict[str, Any]:
        """How many documents, how many flipped each way, how they were paired: what the CLI's
        JSON and the dashboard's answer put before the flips."""
        return {"documents": self.documents, "flipped": self.flipped, "better_a": self.better_a,
                "better_b": self.flipped - self.better_a, "paired_by": self.paired_by}

    @property
    def paired_by(self) -> str:
        return "document" if self.by_document else "position"


def target(conn: sqlite3.Connection, ref: resolve.ModelRef, step: int | None) -> significance.Target:
    """The model's own metrics, or (``step``) those of its checkpoint at that step (the most
    recently registered one when several share it, as ``find_checkpoint``)."""
    if step is None:
        return significance.model_target(ref.id, ref.model_name)
    checkpoint_id = queries.find_checkpoint(conn, ref.id, step, None)
    if checkpoint_id is None:
        raise NotFoundError(f"model {ref.model_name!r} has no checkpoint at step {step}")
    return significance.Target("checkpoint_id", checkpoint_id, f"{ref.model_name!r} at step {step}")


def check_limit(limit: Any) -> int | None:
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 0):
        raise InvalidInputError(f"limit must be an integer >= 0 (left out: every flip), got {limit!r}")
    return limit


def flips(conn: sqlite3.Connection, model_a: str, model_b: str, family: str, metric_name: str,
          step_a: int | None = None, step_b: int | None = None, run: int | None = None,
          limit: int | None = None) -> FlipList:
    """The documents whose scores differ between A and B, in A's document order (the first
    ``limit`` of them if given): ``doc`` (the document key, or the 0-based position when
    either side has no keys), ``a``, ``b``, ``better`` (``"a"`` or ``"b"``, by the metric's
    direction: the lower score wins for a loss). Where the samples file of a side is known:
    ``prompt``, ``target``, ``response_a``, ``response_b`` (cut to ``TEXT_LIMIT``), and
    ``text_note`` when a file can no longer give them (moved, changed).
    Models are named by ``resolve.find_model``'s rule (``run``: the preferred run's id)."""
    ref_a, ref_b = significance.models_for(conn, model_a, model_b, run)
    return flips_of(conn, ref_a, ref_b, family, metric_name, step_a, step_b, limit)


def flips_of(conn: sqlite3.Connection, ref_a: resolve.ModelRef, ref_b: resolve.ModelRef, family: str,
             metric_name: str, step_a: int | None = None, step_b: int | None = None,
             limit: int | None = None) -> FlipList:
    """``flips`` of two models already found (the dashboard finds each in its own run)."""
    check_limit(limit)
    pair = significance.paired(conn, target(conn, ref_a, step_a), target(conn, ref_b, step_b), family, metric_name)
    differ = np.flatnonzero(pair.scores_a != pair.scores_b)
    a_lower = pair.scores_a[differ] < pair.scores_b[differ]
    a_better = a_lower if lower_is_better(metric_name) else ~a_lower
    shown = differ if limit is None else differ[:limit]
    positions = shown.tolist()
    a_values, b_values = pair.scores_a[shown].tolist(), pair.scores_b[shown].tolist()
    docs = positions if pair.docs is None else [pair.docs[i] for i in positions]
    better = np.where(a_better[:len(positions)], "a", "b").tolist()
    items = [{"doc": doc, "a": a, "b": b, "better": side} for doc, a, b, side in zip(docs, a_values, b_values, better)]
    if items:
        b_positions = positions if pair.b_positions is None else [pair.b_positions[i] for i in positions]
        _add_texts(conn, items, pair, positions, b_positions)
    return FlipList(items, len(pair.scores_a), len(differ), int(np.count_nonzero(a_better)), pair.docs is not None)


# -- the texts, from the samples files --------------------------------------------------------


class _Source(NamedTuple):
    path: str
    sha256: str
    size: int
    mtime_ns: int
    offsets: list[int]


def _source(conn: sqlite3.Connection, metric_id: int) -> _Source | None:
    row = conn.execute("SELECT path, sha256, size, mtime_ns, offsets FROM score_sources WHERE metric_id = ?",
                       (metric_id,)).fetchone()
    if row is None:
        return None
    try:
        offsets = json.loads(row[4])
    except (ValueError, RecursionError):
        offsets = None
    if not isinstance(offsets, list) or not set(map(type, offsets)) <= {int} or min(offsets, default=0) < 0:
        return None  # not what scan writes (a table damaged behind the log): texts unknown
    return _Source(row[0], row[1], row[2], row[3], offsets)


def _unchanged(source: _Source, handle) -> bool:
    """Is the open file still the one scan read? scan's own rule for a file it has seen: the
    same size and modification time, or else the same content (SHA-256)."""
    st = os.fstat(handle.fileno())
    if st.st_size == source.size and st.st_mtime_ns == source.mtime_ns:
        return True
    digest = hashlib.sha256()
    for block in iter(lambda: handle.read(1 << 20), b""):
        digest.update(block)
    return digest.hexdigest() == source.sha256


def _read_side(source: _Source, positions: list[int], docs: list | None) -> tuple[list[dict | None], str | None]:
    """The samples at ``positions`` of the source's scores (None where unreadable), and a note
    saying why when the file cannot give them."""
    nothing = [None] * len(positions)
    try:
        handle = open(source.path, "rb")
    except OSError as exc:
        return nothing, (f"samples file {source.path} cannot be read "
                         f"({exc.__class__.__name__}: moved or deleted since the scan?)")
    samples: list[dict | None] = []
    with handle:
        if not _unchanged(source, handle):
            return nothing, f"samples file {source.path} changed since the scan (its SHA-256 differs): texts not shown"
        for i, position in enumerate(positions):
            sample = None
            if position < len(source.offsets):
                handle.seek(source.offsets[position])
                try:
                    sample = json.loads(handle.readline())
                except (ValueError, RecursionError):
                    sample = None
            if not isinstance(sample, dict) or (docs is not None and not _is_document(sample, docs[i])):
                # (the file is the one scanned, so the registry's offsets are not its lines)
                return nothing, f"samples file {source.path} does not hold these documents where the scan found them"
            samples.append(sample)
    return samples, None


def _is_document(sample: dict, key: Any) -> bool:
    """Is this sample the document the stored key names (``<doc_id>:<doc_hash prefix>``)?"""
    return f"{sample.get('doc_id')}:{str(sample.get('doc_hash', ''))[:16]}" == key


def _cut(text: str | None, keep_end: bool = False) -> str | None:
    if text is None or len(text) <= TEXT_LIMIT:
        return text
    return "…" + text[-(TEXT_LIMIT - 1):] if keep_end else text[:TEXT_LIMIT - 1] + "…"


def _add_texts(conn, items: list[dict], pair: significance.Paired, a_positions: list[int],
               b_positions: list[int]) -> None:
    source_a, source_b = _source(conn, pair.metric_ids[0]), _source(conn, pair.metric_ids[1])
    if source_a is None and source_b is None:
        return
    docs = [item["doc"] for item in items] if pair.docs is not None else None
    samples_a, note_a = _read_side(source_a, a_positions, docs) if source_a else ([None] * len(items), None)
    samples_b, note_b = _read_side(source_b, b_positions, docs) if source_b else ([None] * len(items), None)
    note = "; ".join(n for n in (note_a, note_b) if n) or None
    for item, sample_a, sample_b in zip(items, samples_a, samples_b):
        texts_a = sample_texts(sample_a) if sample_a is not None else {}
        texts_b = sample_texts(sample_b) if sample_b is not None else {}
        item["prompt"] = _cut(texts_a.get("prompt") or texts_b.get("prompt"), keep_end=True)
        item["target"] = _cut(texts_a.get("target") or texts_b.get("target"))
        item["response_a"] = _cut(texts_a.get("response"))
        item["response_b"] = _cut(texts_b.get("response"))
        if note is not None and (sample_a is None or sample_b is None):
            item["text_note"] = note
