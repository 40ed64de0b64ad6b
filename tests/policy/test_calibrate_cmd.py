"""`modq policy calibrate MODEL` writes a new policy version calibrated for that model version."""

from pathlib import Path

import numpy as np

from gpu_worker.manifest import ModelManifest
from policy import load_policy
from tests.cli.runner import modq
from training.scores import load_scores

BASE = """version = "v1"
[categories.harassment]
remove = 0.8
[categories.spam]
remove = 0.9
[categories.violence]
remove = 0.8
[categories.self_harm]
remove = 0.8
[user_history]
window_days = 7
repeat_offender_violations = 3
flag_threshold_factor = 0.9
"""


def test_calibrate_writes_a_policy_version_for_the_model(model_dir: Path, tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "v1.toml").write_text(BASE)
    code, out = modq(
        "policy", "calibrate", str(model_dir), "--base", str(policies / "v1.toml"),
        "--policies-dir", str(policies), "--flag-precision", "0.8", "--remove-precision", "0.95",
    )  # fmt: skip
    assert code == 0, out
    assert "v2.toml" in out

    policy = load_policy(policies / "v2.toml")
    manifest = ModelManifest.read(model_dir)
    assert policy.version == "v2"
    assert policy.calibration is not None
    assert policy.calibration.model_version == manifest.version
    assert policy.calibration.base_policy == "v1"
    assert policy.user_history is not None and policy.user_history.window_days == 7
    assert policy.thresholds["self_harm"].remove == 0.8  # unscored: base kept

    # harassment rests on thousands of human labels: its flag cut meets 0.80 on validation
    validation = load_scores(model_dir, "validation")
    scores, labels = validation.column("harassment")
    flagged = scores >= policy.thresholds["harassment"].flag
    assert labels[flagged].mean() >= 0.80
    assert 0 < policy.thresholds["harassment"].flag <= policy.thresholds["harassment"].remove
    assert np.isfinite(policy.thresholds["spam"].flag)

    # a second run writes the next version, never over an existing one
    code, out = modq(
        "policy", "calibrate", str(model_dir), "--base", str(policies / "v1.toml"),
        "--policies-dir", str(policies), "--version", "v2",
    )  # fmt: skip
    assert code == 1 and "exists already" in out
