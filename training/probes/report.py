"""The model card's probe sections: "Targets on real content" (one row per target: goal,
measured value, 95% interval, n, met) and a detail table per set."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

Entry = Mapping[str, Any]
PROBES_HEADING = "## Targets on real content"

TITLES = {
    "long_text": "long text: abuse in ~2,000 benign words vs alone (worst ratio)",
    "evasion": "evasion: offensive recall drop vs plain (worst family)",
    "evasion_clean": "evasion: clean texts actioned (worst family)",
    "noise": "appended noise: actioned drop vs alone (worst suffix)",
    "identity": "identity: benign sentences actioned (worst term)",
    "hate": "hate without profanity: actioned (recall)",
    "languages": "other languages: silently wrong (neither right nor marked)",
    "email": "legitimate e-mail and chat: removed",
    "insults": "insults test rows: harassment ROC-AUC",
}


def _num(value: Any, digits: int = 3) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _ci(ci: Sequence[float] | None) -> str:
    return "—" if not ci else f"[{ci[0] + 0.0:.3f}, {ci[1] + 0.0:.3f}]"  # never "-0.000"


def _rate(entry: Entry | None) -> str:
    if not entry:
        return "—"
    return f"{_num(entry.get('value'))} {_ci(entry.get('ci95'))} ({entry['hits']}/{entry['n']})"


def _verdict(met: bool | None) -> str:
    return "report only" if met is None else ("met" if met else "**not met**")


def summary_table(targets: Mapping[str, Entry]) -> list[str]:
    """The "Targets on real content" table."""
    lines = [
        "| target | goal | measured | 95% interval | n | |",
        "|---|---|---|---|---|---|",
    ]
    for name, e in targets.items():
        lines.append(
            f"| {TITLES.get(name, name)} | {e['goal']} | {_num(e['value'])} | {_ci(e['ci95'])} "
            f"| {e['n']} | {_verdict(e['met'])} |"
        )
    return lines


def _long_text(e: Entry) -> list[str]:
    d = e["details"]
    lines = [
        f"Long text ({d['abusive_texts']} abusive texts, alone {_rate(d['alone'])}; each placed "
        f"once in {d['filler_words']} hand-written benign words, the positions in turn, and "
        f"followed by 30 and 120 of them; actioned = flagged or removed for a toxicity "
        f"category; filler alone actioned {_rate(d.get('filler_alone_actioned'))}, for "
        f"toxicity {_rate(d.get('filler_alone_toxic'))}):",
        "",
        "| placement | actioned (95% interval) | same texts alone | ratio to alone |",
        "|---|---|---|---|",
    ]
    for key, entry in d.items():
        if isinstance(entry, Mapping) and "ratio_to_alone" in entry:
            lines.append(
                f"| {key} | {_rate(entry)} | {_rate(entry.get('alone_same_texts'))} "
                f"| {_num(entry['ratio_to_alone'])} |"
            )
    return lines


def _evasion(e: Entry, clean: Entry | None) -> list[str]:
    d, c = e["details"], (clean or {}).get("details", {})
    lines = [
        "Evasion (transforms written independently of the normaliser; each family on the texts "
        "it changes; offensive recall vs the same texts plain, and clean texts actioned):",
        "",
        "| family | offensive recall | plain | drop | clean actioned | of which marked as "
        "another language |",
        "|---|---|---|---|---|---|",
    ]
    for family, entry in d.items():
        if isinstance(entry, Mapping) and "recall" in entry:
            lines.append(
                f"| {family} | {_rate(entry['recall'])} | {_num(entry['plain_recall']['value'])} "
                f"| {entry['drop']:+.3f} | {_rate(c.get(family))} "
                f"| {c.get(family, {}).get('marked_as_other_language', '—')} |"
            )
    return lines


def _noise(e: Entry) -> list[str]:
    d = e["details"]
    lines = [
        f"Appended noise (actioned for a toxicity category; alone: {_rate(d['alone'])}):",
        "",
        "| suffix | actioned | drop | example |",
        "|---|---|---|---|",
    ]
    for kind, entry in d.items():
        if kind != "alone":
            example = str(entry["example"]).replace("|", "\\|")
            lines.append(f"| {kind} | {_rate(entry)} | {entry['drop']:+.3f} | {example} |")
    return lines


def _identity(e: Entry) -> list[str]:
    d = e["details"]
    lines = [
        f"Identity ({d['templates']['benign']} benign and {d['templates']['toxic']} toxic "
        "templates per term; AUCs of the max toxicity score; control rows are neutral nouns):",
        "",
        "| term | benign actioned | toxic actioned | subgroup AUC | BPSN AUC | BNSP AUC |",
        "|---|---|---|---|---|---|",
    ]
    for term, t in d["terms"].items():
        name = f"{term} (control)" if t["control"] else term
        lines.append(
            f"| {name} | {_rate(t)} | {_num(t['toxic_actioned'])} | {_num(t['subgroup_auc'])} "
            f"| {_num(t['bpsn_auc'])} | {_num(t['bnsp_auc'])} |"
        )
    return lines


def _hate(e: Entry) -> list[str]:
    lines = ["Hate without profanity, per template:", "", "| template | actioned |", "|---|---|"]
    for template, entry in e["details"]["templates"].items():
        lines.append(f"| {template} | {_rate(entry)} |")
    return lines


def _languages(e: Entry) -> list[str]:
    d = e["details"]
    lines = [
        "Other languages (right: abusive actioned or benign allowed; marked: unsupported "
        f"language acted on by the policy; language rule applied: "
        f"{'yes' if d.get('language_rule_applied') else 'no'}):",
        "",
        "| language | texts | abusive actioned | benign allowed | marked | silently wrong |",
        "|---|---|---|---|---|---|",
    ]
    for language, c in d["languages"].items():
        lines.append(
            f"| {language} | {c.get('n', 0)} "
            f"| {c.get('abusive_actioned', 0)}/{c.get('abusive', 0)} "
            f"| {c.get('benign_allowed', 0)}/{c.get('benign', 0)} | {c.get('marked', 0)} "
            f"| {c.get('silently_wrong', 0)} |"
        )
    return lines


def _email(e: Entry) -> list[str]:
    d = e["details"]
    lines = [
        f"E-mail and chat (hand-written; spam actioned {_rate(d['spam_actioned'])}, removed "
        f"{_rate(d['spam_removed'])}):",
        "",
        "| kind | removed | actioned |",
        "|---|---|---|",
    ]
    for kind, entry in d["kinds"].items():
        lines.append(f"| {kind} | {_rate(entry)} | {_rate(entry['actioned'])} |")
    for text in d.get("removed_examples", []):
        lines.append(f"- removed: {text}")
    return lines


def _insults(e: Entry) -> list[str]:
    d = e["details"]
    return [
        f"Insults: {e['n']} evaluation rows, a seeded sample of {d.get('sampled_of')} "
        f"({d['positives']} insults); flag-or-remove "
        f"precision {_num(d['actioned_precision'])}, recall {_num(d['actioned_recall'])}."
    ]


DETAILS: dict[str, Callable[[Entry], list[str]]] = {
    "long_text": _long_text,
    "noise": _noise,
    "identity": _identity,
    "hate": _hate,
    "languages": _languages,
    "email": _email,
    "insults": _insults,
}


def probe_sections(probes: Mapping[str, Any]) -> list[str]:
    """Markdown lines for the card: the summary table, then each set's details."""
    targets = probes.get("targets", {})
    if not targets:
        return []
    lines = [
        "",
        f"{PROBES_HEADING} (issue 21 probe sets)",
        "",
        "Hand-written and evaluation-split probe sets, built independently of the normaliser "
        f"and augmenter (training/probes/); {probes.get('texts')} distinct texts, judged by "
        "this folder's model under the policy it carries. Rates: 95% Wilson intervals; "
        "ratios, drops and AUCs: 95% bootstrap intervals. Actioned = flagged or removed.",
        "",
        *summary_table(targets),
    ]
    for name, entry in targets.items():
        if name == "evasion":
            lines += ["", *_evasion(entry, targets.get("evasion_clean"))]
        elif name in DETAILS:
            lines += ["", *DETAILS[name](entry)]
    return lines
