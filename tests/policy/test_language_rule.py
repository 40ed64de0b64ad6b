"""The ``[language]`` rule: parsing, the decision it makes, and its way through the writer."""

import tomllib
from pathlib import Path

import pytest

from modq.errors import PolicyError
from modq.schemas import Decision, Reason
from policy import decide, load_policy, parse_policy
from policy.calibration import CategoryCalibration, Cut
from policy.decide import PolicyOutcome
from policy.language import (
    UNSUPPORTED_LANGUAGE,
    LanguageGuess,
    LanguageRule,
    apply_language_rule,
)
from policy.model import Calibration
from policy.writer import calibrated_policy_text, render_policy, write_policy

POLICIES = Path(__file__).resolve().parents[2] / "policy" / "policies"
SPANISH = LanguageGuess("es", 0.93, True)
RULE = LanguageRule(supported=("en",), unsupported=Decision.FLAG, min_confidence=0.5)


def outcome(decision: Decision, *reasons: Reason) -> PolicyOutcome:
    return PolicyOutcome(decision, list(reasons), ["self_harm"])


def document(language: object) -> dict[str, object]:
    return {"version": "v9", "categories": {"spam": {"remove": 0.9}}, "language": language}


def test_a_reliable_unsupported_language_turns_allow_into_flag() -> None:
    result = apply_language_rule(outcome(Decision.ALLOW), SPANISH, RULE)
    assert result.decision is Decision.FLAG
    assert result.reasons == [Reason(UNSUPPORTED_LANGUAGE, 0.93, 0.5, Decision.FLAG)]
    assert result.unscored_categories == ["self_harm"]


def test_the_rule_never_lowers_a_decision_the_scores_made() -> None:
    removed = Reason("harassment", 0.97, 0.92, Decision.REMOVE)
    result = apply_language_rule(outcome(Decision.REMOVE, removed), SPANISH, RULE)
    assert result.decision is Decision.REMOVE
    assert result.reasons[0] == removed  # the most severe reason stays first
    assert [r.category for r in result.reasons] == ["harassment", UNSUPPORTED_LANGUAGE]


def test_a_remove_action_raises_flag_to_remove() -> None:
    flagged = Reason("spam", 0.4, 0.25, Decision.FLAG)
    rule = LanguageRule(unsupported=Decision.REMOVE)
    result = apply_language_rule(outcome(Decision.FLAG, flagged), SPANISH, rule)
    assert result.decision is Decision.REMOVE
    assert result.reasons[0].category == UNSUPPORTED_LANGUAGE
    assert result.reasons[0].action is Decision.REMOVE


@pytest.mark.parametrize(
    ("guess", "rule"),
    [
        (None, RULE),
        (SPANISH, None),
        (LanguageGuess("en", 0.12, False), RULE),
        (LanguageGuess("es", 0.93, False), RULE),  # unreliable: never acted on
        (LanguageGuess("en", 0.99, True), RULE),
        (LanguageGuess("es", 0.93, True), LanguageRule(supported=("en", "es"))),
        (LanguageGuess("es", 0.6, True), LanguageRule(min_confidence=0.8)),
        (SPANISH, LanguageRule(unsupported=Decision.ALLOW)),
    ],
)
def test_the_outcome_is_untouched_when_the_rule_does_not_apply(guess, rule) -> None:
    before = outcome(Decision.ALLOW)
    assert apply_language_rule(before, guess, rule) is before


def test_a_policy_without_the_table_decides_as_before() -> None:
    without = parse_policy({"version": "v9", "categories": {"spam": {"remove": 0.9}}})
    assert without.language is None
    scores = {"spam": 0.1}
    plain = decide(scores, without)
    assert apply_language_rule(plain, SPANISH, without.language) is plain
    assert plain.decision is Decision.ALLOW


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_the_packaged_policies_flag_any_language_but_english(version: str) -> None:
    rule = load_policy(POLICIES / f"{version}.toml").language
    assert rule == LanguageRule(supported=("en",), unsupported=Decision.FLAG, min_confidence=0.5)


def test_the_table_survives_the_writer(tmp_path: Path) -> None:
    rule = LanguageRule(supported=("en", "fr"), unsupported=Decision.REMOVE, min_confidence=0.75)
    text = render_policy("v7", {"spam": (0.3, 0.9)}, language=rule)
    assert tomllib.loads(text)["language"]["supported"] == ["en", "fr"]
    assert load_policy(write_policy(tmp_path, "v7", text)).language == rule


def test_a_calibrated_policy_keeps_its_base_policys_language_rule(tmp_path: Path) -> None:
    """What `modq policy calibrate` and a model build's carried policy.toml write."""
    base = load_policy(POLICIES / "v2.toml")
    cut = Cut(threshold=0.5, precision=0.9, recall=0.7, supported=True)
    calibrated = {"spam": CategoryCalibration("spam", cut, cut, 80, 900, thin=False, note="")}
    calibration = Calibration("m", "abcdef123456", 0.8, 0.95, base_policy="v2")
    text = calibrated_policy_text(
        "v2+abcdef123456", calibrated, base, calibration, z=1.0, header_lead="test"
    )
    carried = load_policy(write_policy(tmp_path, "v2+abcdef123456", text))
    assert carried.language == base.language is not None


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ({"unsupported": "review"}, "'review' is not an action"),
        ({"supported": ["english"]}, "'english' not an ISO 639-1 code"),
        ({"supported": ["EN"]}, "'EN' not an ISO 639-1 code"),
        ({"supported": ["xx"]}, "'xx' not an ISO 639-1 code"),
        ({"supported": "en"}, "must be a list"),
        ({"supported": []}, "at least one language"),
        ({"min_confidence": 1.5}, "min_confidence must be in [0, 1]"),
        ({"min_confidence": "high"}, "min_confidence must be a number"),
        ({"min_confidence": True}, "min_confidence must be a number"),
        ({"unsupported": "flag", "fallback": "en"}, "unknown language keys ['fallback']"),
        ("en", "[language] must be a table"),
    ],
)
def test_a_bad_table_is_refused_with_a_clear_message(table: object, message: str) -> None:
    with pytest.raises(PolicyError) as caught:
        parse_policy(document(table))
    assert message in str(caught.value)
    assert "v9" in str(caught.value)


def test_a_disabled_table_is_no_rule() -> None:
    assert parse_policy(document({"enabled": False, "unsupported": "flag"})).language is None


def test_defaults_fill_a_bare_table() -> None:
    assert parse_policy(document({})).language == LanguageRule()
