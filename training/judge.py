"""A model folder and a policy as one judge: texts in, the worker's decision out.

``folder_judge`` scores with ``training.evaluate.score_folder`` (what the build measures with)
and decides with ``policy.decide``; where a language detector (``gpu_worker.language``) and a
policy language rule (``policy.language``) exist, it applies them as the worker does, so an
unsupported language that the rule marks counts as marked. Both are imported lazily: the judge
works with or without them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from policy import Policy
from policy.decide import decide

ACTIONS = ("allow", "flag", "remove")
SCORING_THREADS = 2

Judge = Callable[[Sequence[str]], list["Judgement"]]


@dataclass(frozen=True)
class Judgement:
    """One text's decision: ``action`` (allow / flag / remove), the model's scores, and the
    language the detector saw (None without a detector) and whether the policy supports it.
    ``marked``: the language is unsupported and the policy's language rule acted on it (its
    ``unsupported_language`` reason is in the outcome). ``tripped``: the categories the
    outcome's reasons name."""

    action: str
    scores: dict[str, float]
    language: str | None = None
    language_supported: bool | None = None
    marked: bool = field(default=False)
    tripped: tuple[str, ...] = ()  # the categories (or rules) whose reasons the outcome holds

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got {self.action!r}")

    @property
    def actioned(self) -> bool:
        """Flagged or removed."""
        return self.action != "allow"


def _action_of(outcome: Any) -> str:
    decision = getattr(outcome, "decision", outcome)
    return str(getattr(decision, "value", decision))


def _tripped(outcome: Any) -> tuple[str, ...]:
    return tuple(dict.fromkeys(r.category for r in outcome.reasons))


@dataclass(frozen=True)
class LanguageStep:
    """The detector (``gpu_worker.language.detect_language``), the rule applier
    (``policy.language.apply_language_rule``) and the policy's ``[language]`` rule."""

    detect: Callable[[str], Any]
    apply: Callable[[Any, Any, Any], Any]
    rule: Any
    reason: str  # the category of the reason the rule adds when it acts

    def supported(self, guess: Any) -> bool:
        """Whether the rule takes ``guess``'s language as judged: a supported language, or a
        guess too unreliable to act on (which names the default language)."""
        return not getattr(guess, "reliable", True) or guess.code in self.rule.supported


def language_step(policy: Policy) -> LanguageStep | None:
    """The language step if ``gpu_worker.language`` and ``policy.language`` exist and the
    policy declares a ``[language]`` rule; else None (the judge decides on scores alone)."""
    try:
        from gpu_worker.language import detect_language
        from policy.language import UNSUPPORTED_LANGUAGE, apply_language_rule
    except ImportError:
        return None
    rule = getattr(policy, "language", None)
    if rule is None:
        return None
    return LanguageStep(detect_language, apply_language_rule, rule, UNSUPPORTED_LANGUAGE)


def judge_scores(
    categories: Sequence[str],
    rows: Any,
    texts: Sequence[str],
    policy: Policy,
    step: LanguageStep | None = None,
) -> list[Judgement]:
    """Decisions for a score matrix (``rows[i, j]`` scores ``categories[j]`` of ``texts[i]``),
    with the language rule applied where ``step`` is given."""
    out = []
    for text, row in zip(texts, rows, strict=True):
        scores = {c: float(s) for c, s in zip(categories, row, strict=True)}
        outcome = decide(scores, policy)
        if step is None:
            out.append(Judgement(_action_of(outcome), scores, tripped=_tripped(outcome)))
            continue
        guess = step.detect(text)
        outcome = step.apply(outcome, guess, step.rule)
        supported = step.supported(guess)
        marked = not supported and any(r.category == step.reason for r in outcome.reasons)
        out.append(
            Judgement(_action_of(outcome), scores, guess.code, supported, marked, _tripped(outcome))
        )
    return out


def folder_judge(folder: Path, policy: Policy) -> Judge:
    """A judge backed by the ONNX model in ``folder`` under ``policy``: each call scores all its
    texts in one ``score_folder`` pass (2 threads) and decides each."""
    from training.evaluate import score_folder

    step = language_step(policy)

    def judge(texts: Sequence[str]) -> list[Judgement]:
        if not texts:
            return []
        categories, scores = score_folder(Path(folder), list(texts), threads=SCORING_THREADS)
        return judge_scores(categories, scores, texts, policy, step)

    return judge
