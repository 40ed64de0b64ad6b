"""The user's history in the decision, through a real worker process and SQLite.

A repeat offender (two removals in the window) posts a borderline text: under the policy's
[user_history] rule it is flagged, and the result and the stored row say why. The same text
without a user_id, or from a user with a clean record, gets exactly the decision the policy
gives without the rule.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from db.results import ResultRepository
from db.session import make_engine
from modq.schemas import Decision
from policy import decide, load_policy
from tasks import moderate
from tests.factories import make_result
from tests.workers import running_worker

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FACTOR = 0.8
POLICY = """
version = "history-test"

[categories.harassment]
flag = {flag}
remove = 0.99

[categories.violence]
flag = 0.9
remove = 0.99

[categories.adult]
flag = 0.9
remove = 0.99

[categories.hate_speech]
flag = 0.9
remove = 0.99

[categories.spam]
flag = 0.9
remove = 0.99

[user_history]
enabled = true
window_days = 30
repeat_offender_violations = 2
flag_threshold_factor = {factor}
"""
CANDIDATES = (
    "you clearly have no idea what you are talking about",
    "that is a pretty stupid thing to say",
    "what a dumb take, honestly",
    "you are being ridiculous again",
    "nobody asked for your silly opinion",
    "go away, you are annoying everyone here",
    "this is the most pathetic argument I have read",
    "stop talking nonsense",
    "your comments are useless",
    "you sound like a fool",
)


def _borderline(model_dir: Path) -> tuple[str, dict[str, float], float]:
    """A text with a middling harassment score (every other category low), and a harassment
    flag threshold just above it: allowed as it stands, under the flag threshold once the
    repeat-offender factor lowers it.

    Each text is scored alone, as the worker scores a lone job: the int8 model's dynamic
    quantization reads the whole padded batch, so a text's score moves with its batch mates."""
    from gpu_worker.backends.onnx import OnnxBackend

    backend = OnnxBackend(model_dir)
    scores = [backend.score([text])[0] for text in CANDIDATES]
    for text, row in zip(CANDIDATES, scores, strict=True):
        by_category = dict(zip(backend.categories, (float(s) for s in row), strict=True))
        others = [v for c, v in by_category.items() if c != "harassment"]
        harassment = by_category["harassment"]
        if 0.25 <= harassment <= 0.85 and max(others) < 0.5:
            flag = round(harassment + 0.05, 3)
            assert harassment >= flag * FACTOR  # borderline: the lowered threshold trips it
            return text, by_category, flag
    pytest.fail(f"no borderline candidate: {[row.round(3).tolist() for row in scores]}")


def test_a_repeat_offenders_borderline_text_is_flagged(database, model_dir, tmp_path):
    policy_path = tmp_path / "history-test.toml"
    text, scores, flag = _borderline(model_dir)
    policy_path.write_text(POLICY.format(flag=flag, factor=FACTOR))
    policy = load_policy(policy_path)
    assert decide(scores, policy).decision is Decision.ALLOW  # without the rule: allowed

    engine = make_engine(database)
    repository = ResultRepository(engine)
    offender, clean_user = f"u-{uuid.uuid4().hex[:8]}", f"u-{uuid.uuid4().hex[:8]}"
    earlier = (datetime.now(UTC) - timedelta(days=2)).isoformat()
    for i in range(2):
        repository.store(
            make_result(f"old-{offender}-{i}", user_id=offender, decision=Decision.REMOVE,
                        created_at=earlier)
        )  # fmt: skip
    repository.store(make_result(f"old-{clean_user}", user_id=clean_user, created_at=earlier))

    env = {"MODQ_DATABASE_URL": database, "MODQ_POLICY_PATH": str(policy_path)}
    with running_worker(env, log_dir=tmp_path, threads=4):
        flagged = moderate.delay(content_id="c-offender", content=text, user_id=offender).get(
            timeout=60
        )
        anonymous = moderate.delay(content_id="c-anon", content=text).get(timeout=60)
        clean = moderate.delay(content_id="c-clean", content=text, user_id=clean_user).get(
            timeout=60
        )

    assert flagged["decision"] == "flag", json.dumps(flagged)[:1500]
    assert flagged["tripped"][0]["category"] == "harassment"
    assert flagged["tripped"][0]["threshold"] == pytest.approx(flag * FACTOR)
    features = flagged["extra"]["user_features"]
    assert features["removals"] == 2 and features["applied"] == ["repeat_offender"]

    # no user_id: exactly the decision of the policy without history, and nothing recorded
    assert anonymous["decision"] == decide(anonymous["scores"], policy).decision.value == "allow"
    assert "user_features" not in anonymous["extra"]
    assert clean["decision"] == "allow"
    assert clean["extra"]["user_features"]["applied"] == []

    (row,) = repository.find("c-offender")
    assert row.decision == "flag" and row.user_features["applied"] == ["repeat_offender"]
    (row,) = repository.find("c-anon")
    assert row.user_features is None
    engine.dispose()
