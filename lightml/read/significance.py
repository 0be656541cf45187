"""Paired tests between two registered models, on their stored per-sample scores.

``lightml.read.stats`` does the mathematics on vectors; this module finds the vectors (and
refuses to pair vectors of different lengths) for the handles, the CLI and the dashboard.
"""

from __future__ import annotations

import sqlite3
from typing import Any, NamedTuple

import numpy as np

from lightml.errors import InvalidInputError, NotFoundError
from lightml.log import codec
from lightml.read import queries, repeats, resolve, settings, stats
from lightml.read.direction import lower_is_better
from lightml.write.validation import are_doc_keys, value_matches_mean


class Target(NamedTuple):
    """Whose metric: a model's own (``column`` "model_id") or one of its checkpoints'
    ("checkpoint_id"), and how messages name it."""

    column: str
    id: int
    label: str  # how messages name it: "'base'", "'sft' at step 100" (its checkpoint)


def model_target(model_id: int, model_name: str) -> Target:
    return Target("model_id", model_id, repr(model_name))


class Paired(NamedTuple):
    """Two score vectors put in the same document order, with what else was stored."""

    scores_a: np.ndarray
    scores_b: np.ndarray
    values: tuple[float | None, float | None]  # the stored metric values
    docs: list | None  # the document keys, in the vectors' order; None: unknown (paired by position)
    metric_ids: tuple[int, int]
    b_positions: list[int] | None  # where each of B's paired scores is in B's stored order (None: the same)


def _scores(conn: sqlite3.Connection, target: Target, family: str, metric_name: str):
    """(score vector, document keys or None, stored value, metric id) of the target's metric."""
    if target.column not in ("model_id", "checkpoint_id"):
        raise ValueError(f"unknown target column {target.column!r}")
    row = conn.execute(
        "SELECT d.scores, k.doc_keys, m.value, m.id FROM metrics m JOIN detailed_scores d ON d.metric_id = m.id "
        f"LEFT JOIN score_docs k ON k.metric_id = m.id WHERE m.{target.column} = ? "
        "AND m.family = ? AND m.metric_name = ?", (target.id, family, metric_name)).fetchone()
    if row is None:
        raise NotFoundError(
            f"no per-sample scores for model {target.label}, family {family!r}, metric {metric_name!r} "
            "(log the metric with scores=[...] to test it)"
        )
    try:
        scores = stats.vector_from_json(row[0])
    except (ValueError, TypeError, OverflowError, RecursionError):
        scores = None  # not a flat list of floats (text, nesting, 10**400): written by an older tool
    if scores is None or scores.ndim != 1 or scores.size == 0 or not np.isfinite(scores).all():
        # (the handles refuse such scores; an older tool or a 1.x file may hold them)
        raise InvalidInputError(
            f"cannot test {family}/{metric_name}: the stored scores of {target.label} are not a non-empty list "
            "of finite numbers within the float range (empty, NaN, infinity, beyond 1.8e308 or text)"
        )
    return scores, row[1], row[2], row[3]


def _doc_keys(text: str | None, label: str, family: str, metric_name: str, check: bool = True) -> list | None:
    """The stored document keys of a metric's scores (None: unknown), or a clear error when
    they are not a list of distinct ids (an older tool, or a file damaged behind the log).
    ``check=False``: only that they are a list (the caller does not pair by them)."""
    if text is None:
        return None
    try:
        keys = codec.loads(text)
        if isinstance(keys, list) and (not check or are_doc_keys(keys)):  # the rule the handles log them by
            return keys
    except (ValueError, RecursionError):  # not JSON
        pass
    raise InvalidInputError(f"cannot pair {family}/{metric_name}: the stored document keys of {label} "
                            "are not a list of distinct ids (written by another tool?)")


def paired(conn, target_a: Target, target_b: Target, family: str, metric_name: str) -> Paired:
    """The two targets' score vectors for one metric, paired. When both metrics know their
    documents, B is put in A's document order, and different document sets are an error
    (never paired by position)."""
    scores_a, keys_a, value_a, id_a = _scores(conn, target_a, family, metric_name)
    scores_b, keys_b, value_b, id_b = _scores(conn, target_b, family, metric_name)
    name_a, name_b = target_a.label, target_b.label
    # The same documents in the same order (the usual case: one eval harness) are stored as
    # the same text: decoded once, and paired by position, which then is by document, so the
    # keys need not be checked for being distinct ids (a third of the time at 100,000 keys).
    same = keys_a is not None and keys_b == keys_a
    docs_a = _doc_keys(keys_a, name_a, family, metric_name, check=not same)
    docs_b = docs_a if same else _doc_keys(keys_b, name_b, family, metric_name)
    if docs_a is not None and docs_b is not None:
        b_positions = None
        if docs_a is not docs_b and docs_a != docs_b:
            if set(docs_a) != set(docs_b):
                common = len(set(docs_a) & set(docs_b))
                raise InvalidInputError(
                    f"cannot pair {family}/{metric_name}: {name_a} and {name_b} were scored on different "
                    f"documents ({common} in common, {len(docs_a) - common} only in {name_a}, "
                    f"{len(docs_b) - common} only in {name_b}; was one run with --limit?)"
                )
            position = {key: i for i, key in enumerate(docs_b)}
            b_positions = [position[key] for key in docs_a]
            scores_b = scores_b[b_positions]
        return Paired(scores_a, scores_b, (value_a, value_b), docs_a, (id_a, id_b), b_positions)
    if len(scores_a) != len(scores_b):
        raise InvalidInputError(
            f"cannot pair {family}/{metric_name}: {name_a} has {len(scores_a)} scores and "
            f"{name_b} has {len(scores_b)} (were they evaluated on the same documents?)"
        )
    return Paired(scores_a, scores_b, (value_a, value_b), None, (id_a, id_b), None)


def _paired(conn, id_a: int, id_b: int, model_a: str, model_b: str, family: str, metric_name: str) -> Paired:
    """``paired`` of two models' own (model-level) metrics."""
    return paired(conn, model_target(id_a, model_a), model_target(id_b, model_b), family, metric_name)


def _with_stored_values(result: dict[str, Any], model_a: str, model_b: str,
                        values: tuple[float | None, float | None]) -> dict[str, Any]:
    """Say which numbers the test used: always the per-sample scores. ``value_notes`` says
    where a stored metric value is not the mean of its scores (beyond the value's rounding,
    ``validation.value_matches_mean``), since the table elsewhere shows the stored value."""
    notes = []
    for name, value, mean in ((model_a, values[0], result["mean_a"]), (model_b, values[1], result["mean_b"])):
        if value is not None and not value_matches_mean(value, mean):
            notes.append(f"the stored value of {name} is {value:.4f} but the mean of its scores is {mean:.4f}: "
                         "this test uses the scores")
    return {**result, "uses": "scores", "stored_value_a": values[0], "stored_value_b": values[1],
            "value_notes": notes}


def _oriented(result: dict[str, Any], metric_name: str) -> dict[str, Any]:
    """Name the winner by the metric's direction: ``stats.compare_scores`` takes higher as
    better, but for a loss, a perplexity or an error rate the winner has the lower scores."""
    lower = lower_is_better(metric_name)
    result["lower_is_better"] = lower
    if lower:
        flip = {"a": "b", "b": "a", None: None}
        result["winner"] = flip[result["winner"]]
        if result.get("mcnemar"):
            result["mcnemar"] = {**result["mcnemar"], "winner": flip[result["mcnemar"]["winner"]]}
    return result


def models_for(conn: sqlite3.Connection, model_a: str, model_b: str, run: int | None) -> tuple[resolve.ModelRef, resolve.ModelRef]:
    """Both models, by ``resolve.find_model``'s rule (``run``: the preferred run's id)."""
    return resolve.find_model_by_run_id(conn, model_a, run), resolve.find_model_by_run_id(conn, model_b, run)


def compare_stats(conn: sqlite3.Connection, model_a: str, model_b: str, family: str, metric_name: str,
                  run: int | None = None, *, strict: bool = False, **options: Any) -> dict[str, Any]:
    """``stats.compare_scores`` of two models' scores for one metric, plus the names, and
    ``settings_differ`` (``strict``: refused when it is not empty; see ``read.settings``).

    Models are named by ``resolve.find_model``'s rule (``run``: the id of the preferred run).
    ``options``: resamples, confidence, seed. The result says which numbers it used (the
    scores) and, in ``value_notes``, where a stored value is not the mean of its scores.
    """
    stats.check_options(**options)
    ref_a, ref_b = models_for(conn, model_a, model_b, run)
    names = {"model_a": model_a, "model_b": model_b, "run_a": ref_a.run_name, "run_b": ref_b.run_name,
             "family": family, "metric_name": metric_name}
    repeated = (queries.repeated_metrics(conn, ref_a.id, family), queries.repeated_metrics(conn, ref_b.id, family))
    over_repeats = _over_repeats(conn, ref_a.id, ref_b.id, model_a, model_b, family, metric_name, options, repeated)
    if over_repeats is None:
        scores_a, scores_b, values, *_ = _paired(conn, ref_a.id, ref_b.id, model_a, model_b, family, metric_name)
        one_side = _one_side_repeated(model_a, model_b, family, metric_name, repeated)
    differ = _differing_settings(conn, ref_a.id, ref_b.id, family).get((family, metric_name), [])
    settings.refuse_if_strict(strict, [(f"{family}/{metric_name}", differ)] if differ else [])
    if over_repeats is not None:
        return {**names, **_oriented(over_repeats, metric_name), "settings_differ": differ}
    result = _oriented(stats.compare_scores(scores_a, scores_b, **options), metric_name)
    tested = _with_stored_values({**names, **result, "settings_differ": differ}, model_a, model_b, values)
    if one_side is not None:
        tested["value_notes"].append(one_side)
    return tested


def _one_side_repeated(model_a: str, model_b: str, family: str, metric_name: str,
                       repeated: tuple[dict, dict]) -> str | None:
    """A note when one model logged the metric with repeats and the other did not: the test then
    pairs one run's scores with the per-document means of several."""
    with_repeats = [name for name, of_model in zip((model_a, model_b), repeated) if (family, metric_name) in of_model]
    if len(with_repeats) != 1:
        return None
    one = with_repeats[0]
    other = model_b if one == model_a else model_a
    return (f"{one}'s value is the mean of its repeats and {other}'s one run: the test pairs {other}'s "
            f"scores with {one}'s per-document means (log repeats on both sides to test over them)")


def _over_repeats(conn, id_a: int, id_b: int, model_a: str, model_b: str, family: str, metric_name: str,
                  options: dict[str, Any], repeated: tuple[dict, dict]) -> dict[str, Any] | None:
    """``repeats.compare_repeats`` when both models logged the metric with repeat labels, else
    None (the per-sample test applies). With per-sample scores on every repeat of both sides
    (their per-document means are then the metric's scores) the test pairs them by document.
    ``repeated``: both models' ``queries.repeated_metrics``."""
    metric_a, metric_b = (of_model.get((family, metric_name)) for of_model in repeated)
    if metric_a is None or metric_b is None:
        return None
    found = repeats.values_of(conn, [metric_a, metric_b])
    documents, note = None, None
    try:
        paired_scores = _paired(conn, id_a, id_b, model_a, model_b, family, metric_name)
        documents = (paired_scores.scores_a.tolist(), paired_scores.scores_b.tolist())
    except NotFoundError:
        pass  # (some repeat has no scores: the test is over the repeat values)
    except InvalidInputError as exc:
        note = f"tested over the repeat values: the per-sample scores cannot be paired ({exc})"
    result = repeats.compare_repeats(found[metric_a], found[metric_b], documents,
                                     options.get("confidence", stats.DEFAULT_CONFIDENCE))
    result["value_notes"] = [note] if note else []
    return result


def _differing_settings(conn, id_a: int, id_b: int, family: str | None) -> dict[tuple[str, str], list[str]]:
    """(family, metric) -> the decisive settings keys in which the two models' values differ."""
    found = settings.settings_by_model(conn, [id_a, id_b], family)
    settings_a, settings_b = found.get(id_a, {}), found.get(id_b, {})
    differing = settings.DifferingKeys()
    found = {key: differing([settings_a.get(key), settings_b.get(key)]) for key in settings_a}
    return {key: keys for key, keys in found.items() if keys}


def compare_stats_all(conn: sqlite3.Connection, model_a: str, model_b: str, family: str | None = None,
                      run: int | None = None, *, strict: bool = False, **options: Any) -> list[dict[str, Any]]:
    """``compare_stats`` for every metric both models have scores for (in ``family`` if
    given), with Holm (``p_holm``) and Benjamini-Hochberg (``p_bh``) adjusted p-values.

    A metric whose two vectors differ in length cannot be tested: it is listed after the
    tested ones with an ``error`` and no p-values, and left out of the adjustment. Each item
    has ``settings_differ``; ``strict`` refuses the comparison when one is not empty.
    """
    stats.check_options(**options)  # refused even when no metric has scores to test
    ref_a, ref_b = models_for(conn, model_a, model_b, run)
    id_a, id_b = ref_a.id, ref_b.id
    repeated = (queries.repeated_metrics(conn, id_a, family), queries.repeated_metrics(conn, id_b, family))
    common = sorted((set(queries.scored_metrics(conn, id_a, family)) & set(queries.scored_metrics(conn, id_b, family)))
                    | (set(repeated[0]) & set(repeated[1])))  # (the metrics both scored, or both repeated)
    differing = _differing_settings(conn, id_a, id_b, family)
    settings.refuse_if_strict(strict, [(f"{fam}/{metric}", differing[(fam, metric)])
                                       for fam, metric in common if (fam, metric) in differing])
    tested, untestable = [], []
    for fam, metric in common:
        names = {"model_a": model_a, "model_b": model_b, "family": fam, "metric_name": metric,
                 "settings_differ": differing.get((fam, metric), [])}
        over_repeats = _over_repeats(conn, id_a, id_b, model_a, model_b, fam, metric, options, repeated)
        if over_repeats is not None and over_repeats["test"] == repeats.UNTESTABLE:
            untestable.append({**names, **over_repeats, "error": f"{fam}/{metric}: untestable: {over_repeats['reason']}",
                               "p_holm": None, "p_bh": None})
            continue
        if over_repeats is not None:
            tested.append({**names, **_oriented(over_repeats, metric)})
            continue
        try:
            scores_a, scores_b, values, *_ = _paired(conn, id_a, id_b, model_a, model_b, fam, metric)
            compared = stats.compare_scores(scores_a, scores_b, **options)
        except InvalidInputError as exc:
            untestable.append({**names, "error": str(exc), "p_value": None, "p_holm": None, "p_bh": None})
            continue
        tested.append(_with_stored_values({**names, **_oriented(compared, metric)}, model_a, model_b, values))
    p_values = [item["p_value"] for item in tested]
    for item, p_holm, p_bh in zip(tested, stats.holm(p_values), stats.benjamini_hochberg(p_values)):
        item["p_holm"] = p_holm
        item["p_bh"] = p_bh
    return tested + untestable


def verdicts_by_id(conn: sqlite3.Connection, id_a: int, id_b: int, model_a: str, model_b: str,
                   family: str | None = None) -> dict[tuple[str, str], dict[str, Any]]:
    """(family, metric_name) -> ``stats.paired_verdict`` for each metric both models have
    scores for (over repeats, ``repeats.compare_repeats``'s, where both logged repeats);
    ``{"error": ...}`` where the vectors cannot be paired. For compare views."""
    repeated = (queries.repeated_metrics(conn, id_a, family), queries.repeated_metrics(conn, id_b, family))
    common = set(queries.scored_metrics(conn, id_a, family)) & set(queries.scored_metrics(conn, id_b, family))
    verdicts: dict[tuple[str, str], dict[str, Any]] = {}
    for fam, metric in sorted(common | (set(repeated[0]) & set(repeated[1]))):
        over_repeats = _over_repeats(conn, id_a, id_b, model_a, model_b, fam, metric, {}, repeated)
        if over_repeats is not None:
            if over_repeats["test"] == repeats.UNTESTABLE:
                verdicts[(fam, metric)] = {"error": f"untestable: {over_repeats['reason']}"}
            else:
                verdicts[(fam, metric)] = {key: over_repeats[key] for key in ("test", "p_value", "significant")} | {
                    "delta": over_repeats["interval"]["delta"]}
            continue
        try:
            scores_a, scores_b, *_ = _paired(conn, id_a, id_b, model_a, model_b, fam, metric)
            verdicts[(fam, metric)] = stats.paired_verdict(scores_a, scores_b)
        except InvalidInputError as exc:
            verdicts[(fam, metric)] = {"error": str(exc)}
    return verdicts
