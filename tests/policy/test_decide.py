from pathlib import Path

import pytest

from modq.errors import PolicyError
from modq.schemas import Decision
from policy import decide, load_policy, parse_policy

PACKAGED = Path(__file__).resolve().parents[2] / "policy" / "policies" / "v1.toml"
SEED_REMOVE = {"violence": 0.8, "adult": 0.85, "hate_speech": 0.75, "spam": 0.9}


@pytest.fixture(scope="module")
def policy():
    return load_policy(PACKAGED)


def test_packaged_policy_carries_the_seed_thresholds(policy):
    for category, remove in SEED_REMOVE.items():
        assert policy.thresholds[category].remove == remove
        assert policy.thresholds[category].flag == pytest.approx(0.7 * remove)


@pytest.mark.parametrize("category", sorted(SEED_REMOVE))
def test_boundaries_just_under_at_and_over_each_threshold(policy, category):
    limits = policy.thresholds[category]
    base = {c: 0.0 for c in policy.categories}
    eps = 1e-6
    cases = [
        (limits.flag - eps, Decision.ALLOW),
        (limits.flag, Decision.FLAG),
        (limits.flag + eps, Decision.FLAG),
        (limits.remove - eps, Decision.FLAG),
        (limits.remove, Decision.REMOVE),
        (limits.remove + eps, Decision.REMOVE),
    ]
    for score, expected in cases:
        outcome = decide({**base, category: score}, policy)
        assert outcome.decision is expected, (category, score)
        if expected is not Decision.ALLOW:
            (reason,) = outcome.reasons
            assert reason.category == category and reason.score == score
            assert reason.threshold == (
                limits.remove if expected is Decision.REMOVE else limits.flag
            )
        else:
            assert outcome.reasons == []


def test_most_severe_action_wins_and_reasons_are_ordered(policy):
    outcome = decide(
        {
            "violence": 0.6,
            "spam": 0.95,
            "adult": 0.0,
            "hate_speech": 0.0,
            "harassment": 0.0,
            "self_harm": 0.0,
        },
        policy,
    )
    assert outcome.decision is Decision.REMOVE
    assert [r.category for r in outcome.reasons] == ["spam", "violence"]


def test_missing_score_is_reported_not_read_as_zero(policy):
    outcome = decide({"violence": 0.1}, policy)
    assert outcome.decision is Decision.ALLOW
    assert set(outcome.unscored_categories) == set(policy.categories) - {"violence"}


@pytest.mark.parametrize(
    "document, message",
    [
        ({"categories": {"spam": {"remove": 0.9}}}, "version"),
        ({"version": "x", "categories": {"spam": {"remove": 1.2}}}, "flag <= remove <= 1"),
        ({"version": "x", "categories": {"spam": {"remove": 0.5, "flag": 0.6}}}, "flag <= remove"),
        ({"version": "x", "categories": {"spam": {"remove": 0.5, "flag": -0.1}}}, "0 <= flag"),
        ({"version": "x", "categories": {"gambling": {"remove": 0.5}}}, "unknown category"),
        ({"version": "x", "categories": {"spam": {}}}, "numeric 'remove'"),
        ({"version": "x", "categories": {}}, "non-empty"),
    ],
)
def test_invalid_policies_are_refused(document, message):
    with pytest.raises(PolicyError, match=message):
        parse_policy(document)


def test_load_policy_errors_name_the_file(tmp_path):
    with pytest.raises(PolicyError, match="not found"):
        load_policy(tmp_path / "missing.toml")
    broken = tmp_path / "broken.toml"
    broken.write_text("version = ")
    with pytest.raises(PolicyError, match="not valid TOML"):
        load_policy(broken)
