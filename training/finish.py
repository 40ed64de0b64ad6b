"""What every built folder gets once it scores: thresholds calibrated on validation (and the
policy it carries, ``policy.toml``, calibrated for that very artifact), metrics and the issue's
targets on evaluation, the probe sets on real content (issue 21), real errors of weak categories,
the evasion set, the card."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from gpu_worker.manifest import ModelManifest
from modq.categories import HARASSMENT, SPAM
from policy import Calibration, Policy, load_policy
from policy.calibration import CategoryCalibration, calibrate
from policy.carried import CARRIED_POLICY_FILE, carried_policy_version
from policy.writer import calibrated_policy_text
from training.card import write_model_card
from training.datasets import HUMAN_SOURCES, TOXICITY_CATEGORIES, Example
from training.metrics import bootstrap_interval, category_metrics, wilson_interval
from training.scores import ScoreSet
from training.split import EVALUATION, VALIDATION

CALIBRATION_FILE = "calibration.json"
METRICS_FILE = "metrics.json"
TARGETS_FILE = "targets.json"
ERRORS_SHOWN = 3
ERROR_CHARS = 140
WEAK_AUC = 0.95  # a category below this on evaluation (or thin) lists its errors


# categories whose remove cut must hold on every source (policy.calibration.source_vetoes): spam,
# whose SMS-calibrated cut removed legitimate e-mail and chat. Harassment stays pooled: on the
# 8a39c68812c5 validation scores the insults rows alone would raise its cut from 0.939 to 0.987
# and halve its remove recall (0.36 -> 0.19), a figure the card keeps.
PER_SOURCE_REMOVE = (SPAM,)


def calibrate_scores(
    validation: ScoreSet,
    base: Policy,
    *,
    flag_target: float | None = None,
    remove_target: float | None = None,
    z: float | None = None,
) -> dict[str, CategoryCalibration]:
    """Flag/remove cuts per category on validation scores (defaults: policy.calibration's)."""
    from policy import calibration

    scores, labels, thin, row_sources = {}, {}, {}, {}
    sources = validation.source_array()
    for category in validation.categories:
        if category not in base.thresholds:
            continue
        scores[category], labels[category] = validation.column(category)
        index = validation.categories.index(category)
        known = validation.label_matrix()[:, index] >= 0
        row_sources[category] = sources[known]
        positive_sources = sources[known][labels[category] == 1]
        human = np.isin(positive_sources, sorted(HUMAN_SOURCES)).sum()
        thin[category] = len(positive_sources) < calibration.THIN_POSITIVES or human * 2 < len(
            positive_sources
        )
    return calibrate(
        scores,
        labels,
        {c: (t.flag, t.remove) for c, t in base.thresholds.items()},
        thin=thin,
        flag_target=flag_target or calibration.FLAG_PRECISION_TARGET,
        remove_target=remove_target or calibration.REMOVE_PRECISION_TARGET,
        z=calibration.CONFIDENCE_Z if z is None else z,
        sources={c: row_sources[c] for c in PER_SOURCE_REMOVE if c in row_sources},
    )


def thresholds_of(calibrated: Mapping[str, CategoryCalibration]) -> dict[str, tuple[float, float]]:
    return {c: (k.flag.threshold, k.remove.threshold) for c, k in calibrated.items()}


def _rate(hits: int, total: int) -> dict[str, Any]:
    return {
        "value": round(hits / total, 4) if total else None,
        "ci95": wilson_interval(hits, total),
        "n": total,
    }


def issue_targets(
    evaluation: ScoreSet, thresholds: Mapping[str, tuple[float, float]]
) -> dict[str, Any]:
    """The issue's figures on evaluation: offensive vs not (max over the toxicity heads),
    the insults cross-domain check, SMS spam, with 95% intervals."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    categories = evaluation.categories
    scores = evaluation.scores
    sources = evaluation.source_array()
    labels = evaluation.label_matrix()
    tox = [categories.index(c) for c in TOXICITY_CATEGORIES if c in categories]
    flag = np.array([thresholds[categories[i]][0] for i in tox])
    remove = np.array([thresholds[categories[i]][1] for i in tox])
    all_remove = np.array([thresholds.get(c, (1.1, 1.1))[1] for c in categories])
    offensive = scores[:, tox].max(axis=1)
    flagged = (scores[:, tox] >= flag).any(axis=1)
    removed = (scores[:, tox] >= remove).any(axis=1)
    removed_any = (scores >= all_remove).any(axis=1)
    harassment = labels[:, categories.index(HARASSMENT)]
    out: dict[str, Any] = {}

    def auc(mask: np.ndarray, score: np.ndarray, truth: np.ndarray) -> dict[str, Any]:
        t, s = truth[mask], score[mask]
        return {
            "roc_auc": round(float(roc_auc_score(t, s)), 4),
            "roc_auc_ci95": bootstrap_interval(t, s, roc_auc_score),
            "pr_auc": round(float(average_precision_score(t, s)), 4),
            "rows": int(mask.sum()),
            "positives": int(t.sum()),
        }

    profanity = (sources == "profanity") & (harassment >= 0)
    if profanity.any():
        truth = harassment == 1
        entry = auc(profanity, offensive, truth.astype(int))
        entry["flag_precision"] = _rate(
            int((flagged & truth & profanity).sum()), int((flagged & profanity).sum())
        )
        entry["flag_recall"] = _rate(
            int((flagged & truth & profanity).sum()), int((truth & profanity).sum())
        )
        entry["remove_precision"] = _rate(
            int((removed & truth & profanity).sum()), int((removed & profanity).sum())
        )
        entry["remove_recall"] = _rate(
            int((removed & truth & profanity).sum()), int((truth & profanity).sum())
        )
        out["offensive"] = entry
    insults = (sources == "insults") & (harassment >= 0)
    if insults.any():
        out["insults"] = auc(insults, scores[:, categories.index(HARASSMENT)], harassment)
        out["insults"]["offensive_max_roc_auc"] = round(
            float(roc_auc_score(harassment[insults], offensive[insults])), 4
        )
    if SPAM in categories:
        spam_column = categories.index(SPAM)
        spam = labels[:, spam_column]
        sms = (sources == "sms") & (spam >= 0)
        if sms.any():
            truth = spam == 1
            spam_flagged = scores[:, spam_column] >= thresholds[SPAM][0]
            entry = auc(sms, scores[:, spam_column], spam)
            entry["flag_recall"] = _rate(
                int((spam_flagged & truth & sms).sum()), int((truth & sms).sum())
            )
            entry["flag_precision"] = _rate(
                int((spam_flagged & truth & sms).sum()), int((spam_flagged & sms).sum())
            )
            spam_removed = scores[:, spam_column] >= thresholds[SPAM][1]
            entry["ham_removed"] = int((removed_any & ~truth & sms).sum())
            entry["ham_removed_as_spam"] = int((spam_removed & ~truth & sms).sum())
            entry["ham"] = int((~truth & sms).sum())
            entry["ham_removed_examples"] = _ham_examples(
                evaluation, removed_any & ~truth & sms, thresholds
            )
            out["sms_spam"] = entry
        enron = (sources == "enron") & (spam >= 0)
        if enron.any():
            truth = spam == 1
            spam_removed = scores[:, spam_column] >= thresholds[SPAM][1]
            entry = auc(enron, scores[:, spam_column], spam)
            ham = ~truth & enron
            entry["ham_removed"] = _rate(int((removed_any & ham).sum()), int(ham.sum()))
            entry["ham_removed_as_spam"] = _rate(int((spam_removed & ham).sum()), int(ham.sum()))
            entry["ham_removed_examples"] = _ham_examples(evaluation, removed_any & ham, thresholds)
            out["email_spam"] = entry
        # every legitimate row outside SMS (comments, tweets, e-mail, seed): removed as spam
        other_ham = (spam == 0) & (sources != "sms")
        out["non_sms_ham_removed_as_spam"] = _rate(
            int((other_ham & (scores[:, spam_column] >= thresholds[SPAM][1])).sum()),
            int(other_ham.sum()),
        )
    return out


def _ham_examples(
    evaluation: ScoreSet, removed: np.ndarray, thresholds: Mapping[str, tuple[float, float]]
) -> list[dict[str, Any]]:
    """Each removed ham message: why (the categories past their remove cut) and its text."""
    if evaluation.rows is None:
        return []
    out = []
    for i in np.flatnonzero(removed):
        row = evaluation.rows[int(i)]
        why = [
            c
            for c, s in zip(evaluation.categories, evaluation.scores[i], strict=True)
            if s >= thresholds.get(c, (1.1, 1.1))[1]
        ]
        text = row.text if len(row.text) <= ERROR_CHARS else row.text[:ERROR_CHARS] + "…"
        out.append({"removed_for": why, "text": text})
    return out


def weak_category_errors(
    evaluation: ScoreSet,
    thresholds: Mapping[str, tuple[float, float]],
    metrics: Mapping[str, Mapping[str, Any]],
) -> dict[str, list[dict[str, Any]]]:
    """For each weak category (thin, or ROC-AUC below WEAK_AUC): the highest-scored negatives
    the policy flags and the lowest-scored positives it lets through, from evaluation."""
    if evaluation.rows is None:
        return {}
    out: dict[str, list[dict[str, Any]]] = {}
    labels = evaluation.label_matrix()
    for category, entry in metrics.items():
        if not entry.get("thin_data") and (entry.get("roc_auc") or 0) >= WEAK_AUC:
            continue
        index = evaluation.categories.index(category)
        score, truth = evaluation.scores[:, index], labels[:, index]
        flag = thresholds[category][0]
        false_pos = [i for i in np.argsort(-score) if truth[i] == 0 and score[i] >= flag]
        false_neg = [i for i in np.argsort(score) if truth[i] == 1 and score[i] < flag]
        shown = []
        for kind, picks in (("false positive", false_pos), ("false negative", false_neg)):
            for i in picks[:ERRORS_SHOWN]:
                row = evaluation.rows[int(i)]
                text = row.text if len(row.text) <= ERROR_CHARS else row.text[:ERROR_CHARS] + "…"
                shown.append(
                    {
                        "kind": kind,
                        "score": round(float(score[i]), 3),
                        "source": row.source,
                        "text": text,
                    }
                )
        out[category] = shown
    return out


def finish_folder(
    folder: Path,
    manifest: ModelManifest,
    base: Policy,
    score_sets: Mapping[str, ScoreSet],
    *,
    evasion: Callable[[Mapping[str, tuple[float, float]]], dict[str, Any]] | None = None,
    extra_targets: Mapping[str, Any] | None = None,
    probes: bool = True,
) -> dict[str, dict[str, Any]]:
    """Calibrate, measure, write calibration.json, metrics.json, targets.json and the card.
    ``evasion(thresholds)`` returns the evasion report (``training.evasion``). A folder measured
    on evaluation also runs the probe sets (``training.probes``, unless ``probes`` is False)
    under the policy it carries, into targets.json's ``probes``. Returns the evaluation
    metrics."""
    calibrated = calibrate_scores(score_sets[VALIDATION], base)
    thresholds = thresholds_of(calibrated)
    # a folder not served (fp32 when its int8 variant is) is measured on validation only
    measured_on = EVALUATION if EVALUATION in score_sets else VALIDATION
    evaluation = score_sets[measured_on]
    metrics = category_metrics(
        evaluation.scores,
        evaluation.label_matrix(),
        list(evaluation.source_array()),
        evaluation.categories,
        thresholds,
    )
    targets: dict[str, Any] = {"measured_on": measured_on}
    if measured_on == EVALUATION:
        targets.update(issue_targets(evaluation, thresholds))
        targets["errors"] = weak_category_errors(evaluation, thresholds, metrics)
    report = evasion(thresholds) if evasion is not None else {}
    if report:
        targets["evasion"] = report
    if extra_targets:
        targets.update(extra_targets)
    document = {
        "model": {"name": manifest.name, "version": manifest.version},
        "base_policy": base.version,
        "categories": {c: asdict(k) for c, k in calibrated.items()},
    }
    (folder / CALIBRATION_FILE).write_text(json.dumps(document, indent=2) + "\n")
    carried = write_carried_policy(folder, manifest, base, calibrated)
    if probes and measured_on == EVALUATION and evaluation.rows is not None:
        targets["probes"] = folder_probes(folder, load_policy(carried), evaluation.rows)
    (folder / METRICS_FILE).write_text(json.dumps(metrics, indent=2) + "\n")
    (folder / TARGETS_FILE).write_text(json.dumps(targets, indent=2, ensure_ascii=False) + "\n")
    write_model_card(folder / "MODEL_CARD.md", manifest, metrics)
    return metrics


def folder_probes(folder: Path, policy: Policy, rows: Sequence[Example]) -> dict[str, Any]:
    """The probe sets (issue 21) judged by ``folder``'s model under ``policy``."""
    from training.judge import folder_judge
    from training.probes import run_probes

    return run_probes(folder_judge(folder, policy), rows)


def write_carried_policy(
    folder: Path,
    manifest: ModelManifest,
    base: Policy,
    calibrated: Mapping[str, CategoryCalibration],
) -> Path:
    """``folder/policy.toml``: ``calibrated`` as a policy whose ``[calibration]`` names this
    folder's artifact (version ``<base>+<digest>``, policy.carried), checked to load."""
    from policy import calibration as defaults

    calibration = Calibration(
        model_name=manifest.name,
        model_version=manifest.version,
        flag_precision_target=defaults.FLAG_PRECISION_TARGET,
        remove_precision_target=defaults.REMOVE_PRECISION_TARGET,
        base_policy=base.version,
        calibrated_at=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    version = carried_policy_version(base.version, manifest.version)
    text = calibrated_policy_text(
        version,
        calibrated,
        base,
        calibration,
        z=defaults.CONFIDENCE_Z,
        header_lead="thresholds calibrated by `modq model build`",
    )
    path = folder / CARRIED_POLICY_FILE
    staged = folder / f".{CARRIED_POLICY_FILE}.{os.getpid()}"
    staged.write_text(text, encoding="utf-8")
    load_policy(staged)  # a PolicyError here is a bug in the writer, never a silent bad file
    os.replace(staged, path)  # a worker reading it meanwhile sees the whole file or none
    return path


def ensure_carried_policies(current: Path, base: Policy) -> list[Path]:
    """``ensure_carried_policy`` for the model ``current`` points at and, if it is an int8
    copy, the fp32 folder it was made from; the files written."""
    folder = current.resolve()
    folders = [folder]
    extra = ModelManifest.read(folder).extra
    if extra.get("precision") == "int8" and "quantized_from_name" in extra:
        source = folder.parent.parent / extra["quantized_from_name"] / str(extra["quantized_from"])
        if source.is_dir():
            folders.append(source)
    written = [ensure_carried_policy(each, base) for each in folders]
    return [path for path in written if path is not None]


def ensure_carried_policy(folder: Path, base: Policy) -> Path | None:
    """Give a folder built before models carried their policy its ``policy.toml`` (from the
    validation scores it holds: no second scoring pass). None if it has one already."""
    from training.scores import load_scores

    if (folder / CARRIED_POLICY_FILE).is_file():
        return None
    calibrated = calibrate_scores(load_scores(folder, VALIDATION), base)
    return write_carried_policy(folder, ModelManifest.read(folder), base, calibrated)
