"""Calibration on synthetic scores whose answer is known in closed form.

Negatives score uniformly on [0, 0.6], positives on [0.4, 1.0], as many of each. Above a cut
t in [0.4, 0.6] precision is (1 - t) / ((1 - t) + (0.6 - t)): 0.80 at t = 0.4667, 0.95 at
t = 0.5778.
"""

import numpy as np
import pytest

from modq.errors import PolicyError
from policy.calibration import calibrate, calibrate_category, lowest_cut, wilson_lower

FLAG_ANSWER = 0.28 / 0.6  # precision 0.80
REMOVE_ANSWER = 0.52 / 0.9  # precision 0.95


def synthetic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = np.r_[rng.uniform(0.0, 0.6, n), rng.uniform(0.4, 1.0, n)]
    labels = np.r_[np.zeros(n, int), np.ones(n, int)]
    return scores, labels


def precision_at(scores, labels, cut):
    picked = scores >= cut
    return labels[picked].mean()


def test_the_cut_is_the_known_answer_and_holds_on_fresh_rows():
    scores, labels = synthetic(20_000, seed=1)
    fresh_scores, fresh_labels = synthetic(20_000, seed=2)
    result = calibrate_category("harassment", scores, labels, (0.5, 0.9), z=1.0)
    assert result.flag.supported and result.remove.supported
    assert result.flag.threshold == pytest.approx(FLAG_ANSWER, abs=0.01)
    assert result.remove.threshold == pytest.approx(REMOVE_ANSWER, abs=0.01)
    # the lower-bound rule errs on the safe side: the targets hold on rows never seen
    assert precision_at(fresh_scores, fresh_labels, result.flag.threshold) >= 0.795
    assert precision_at(fresh_scores, fresh_labels, result.remove.threshold) >= 0.945
    assert result.flag.precision >= 0.80 and result.remove.precision >= 0.95


def test_z_zero_is_the_plain_lowest_cut_and_z_one_is_never_lower():
    scores, labels = synthetic(2_000, seed=3)
    plain = lowest_cut(scores, labels, 0.8, z=0.0)
    careful = lowest_cut(scores, labels, 0.8, z=1.0)
    assert plain is not None and careful is not None
    assert careful.threshold >= plain.threshold
    assert precision_at(scores, labels, plain.threshold) >= 0.8


def test_a_cut_nothing_supports_keeps_base_flag_and_turns_removal_off():
    rng = np.random.default_rng(4)
    scores = rng.uniform(0, 1, 400)
    labels = (rng.uniform(0, 1, 400) < 0.3).astype(int)  # scores say nothing about labels
    result = calibrate_category("spam", scores, labels, (0.6, 0.9), thin=False)
    assert not result.flag.supported and result.flag.threshold == 0.6
    assert not result.remove.supported and result.remove.threshold == 1.0
    assert "removal off" in result.note


def test_thin_categories_never_go_below_their_base_thresholds():
    scores, labels = synthetic(30, seed=5)  # 30 positives: thin
    result = calibrate_category("violence", scores, labels, (0.7, 0.95))
    assert result.thin
    assert result.flag.threshold >= 0.7 and result.remove.threshold >= 0.95


def test_remove_is_never_below_flag_and_targets_are_checked():
    scores, labels = synthetic(5_000, seed=6)
    out = calibrate(
        {"adult": scores}, {"adult": labels}, {"adult": (0.5, 0.9)}, thin={"adult": False}
    )
    assert out["adult"].remove.threshold >= out["adult"].flag.threshold
    with pytest.raises(PolicyError):
        calibrate({}, {}, {}, flag_target=0.9, remove_target=0.8)


def test_wilson_lower_bound():
    bound = wilson_lower(np.array([8, 80, 800]), np.array([10, 100, 1000]), 1.96)
    assert bound[0] < bound[1] < bound[2] < 0.8
    assert bound[2] == pytest.approx(0.7741, abs=1e-3)
