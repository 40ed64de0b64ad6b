"""The language rule (``[language]``): what text reliably detected in an unsupported language gets.

The model judges the languages it was trained on; text in another one is not really judged, so
a policy may send it to review (``flag``) instead of letting the scores silently allow it. Pure:
the worker detects the language (``gpu_worker.language``) and hands the guess in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from modq.errors import PolicyError
from modq.schemas import Decision, Reason
from policy.decide import PolicyOutcome

UNSUPPORTED_LANGUAGE = "unsupported_language"  # the category of the reason the rule adds
DEFAULT_LANGUAGE = "en"  # what text too short or ambiguous to tell is taken to be
DEFAULT_MIN_CONFIDENCE = 0.5
_RANK = {Decision.ALLOW: 0, Decision.FLAG: 1, Decision.REMOVE: 2}

# ISO 639-1 (the two-letter codes, as the Library of Congress registers them).
_ISO_639_1_CODES = """
aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch co cr cs cu cv cy da de
dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he hi ho hr ht hu hy hz ia
id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw ky la lb lg li ln lo
lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj om or os pa pi pl
ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta te tg th ti tk
tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu
"""
ISO_639_1 = frozenset(_ISO_639_1_CODES.split())


@dataclass(frozen=True, slots=True)
class LanguageGuess:
    """A detector's answer: ``code`` (ISO 639-1 where the language has one, else ISO 639-3),
    its probability ``confidence`` (0..1), and whether it is ``reliable``: an unreliable guess
    (short or ambiguous text) names the default language and is never acted on."""

    code: str
    confidence: float
    reliable: bool


@dataclass(frozen=True, slots=True)
class LanguageRule:
    """Text reliably detected (confidence >= ``min_confidence``) in a language not in
    ``supported`` gets at least the decision ``unsupported``."""

    supported: tuple[str, ...] = (DEFAULT_LANGUAGE,)
    unsupported: Decision = Decision.FLAG
    min_confidence: float = DEFAULT_MIN_CONFIDENCE

    def __post_init__(self) -> None:
        if not self.supported:
            raise PolicyError("language.supported needs at least one language code")
        unknown = [c for c in self.supported if c not in ISO_639_1]
        if unknown:
            raise PolicyError(
                f"language.supported: {', '.join(map(repr, unknown))} not an ISO 639-1 code "
                "(two lowercase letters, such as 'en', 'es', 'de')"
            )
        if not 0.0 <= self.min_confidence <= 1.0:
            raise PolicyError(
                f"language.min_confidence must be in [0, 1], got {self.min_confidence}"
            )


def parse_language_rule(table: Any, version: str) -> LanguageRule | None:
    """The ``[language]`` table of policy ``version`` (None: no table, or ``enabled = false``)."""
    if table is None:
        return None
    if not isinstance(table, Mapping):
        raise PolicyError(f"policy {version}: [language] must be a table")
    if not table.get("enabled", True):
        return None
    unknown = set(table) - {"enabled", "supported", "unsupported", "min_confidence"}
    if unknown:
        raise PolicyError(f"policy {version}: unknown language keys {sorted(unknown)}")
    supported = table.get("supported", [DEFAULT_LANGUAGE])
    if not isinstance(supported, list) or not all(isinstance(c, str) for c in supported):
        raise PolicyError(f"policy {version}: language.supported must be a list of codes")
    action = table.get("unsupported", Decision.FLAG.value)
    if action not in {d.value for d in Decision}:
        raise PolicyError(
            f"policy {version}: language.unsupported {action!r} is not an action; "
            f"expected one of {', '.join(d.value for d in Decision)}"
        )
    confidence = table.get("min_confidence", DEFAULT_MIN_CONFIDENCE)
    if isinstance(confidence, bool) or not isinstance(confidence, int | float):
        raise PolicyError(f"policy {version}: language.min_confidence must be a number")
    try:
        return LanguageRule(
            supported=tuple(dict.fromkeys(supported)),
            unsupported=Decision(action),
            min_confidence=float(confidence),
        )
    except PolicyError as exc:
        raise PolicyError(f"policy {version}: {exc}") from exc


def unsupported_reason(guess: LanguageGuess | None, rule: LanguageRule | None) -> Reason | None:
    """The reason ``rule`` adds for ``guess``, or None (no rule, no guess, an unreliable or
    supported language, too low a confidence, or an ``allow`` action: nothing to raise)."""
    if rule is None or guess is None or not guess.reliable:
        return None
    if guess.code in rule.supported or guess.confidence < rule.min_confidence:
        return None
    if rule.unsupported is Decision.ALLOW:
        return None
    return Reason(UNSUPPORTED_LANGUAGE, guess.confidence, rule.min_confidence, rule.unsupported)


def apply_language_rule(
    outcome: PolicyOutcome, guess: LanguageGuess | None, rule: LanguageRule | None
) -> PolicyOutcome:
    """``outcome`` with the language rule applied: a reliable, unsupported language raises the
    decision to at least the rule's action (never lowers it) and adds an
    ``unsupported_language`` reason (score: the guess's confidence; threshold:
    ``min_confidence``). Otherwise ``outcome`` itself."""
    reason = unsupported_reason(guess, rule)
    if reason is None:
        return outcome
    decision = max(outcome.decision, reason.action, key=_RANK.__getitem__)
    reasons = sorted([*outcome.reasons, reason], key=lambda r: (-_RANK[r.action], -r.score))
    return PolicyOutcome(decision, reasons, list(outcome.unscored_categories))
