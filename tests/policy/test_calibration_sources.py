"""The remove cut holds on every source, not just on the pooled rows.

Constructed score sets (data, written for these tests): an SMS-like source whose negatives score
uniformly on [0, 0.6] and positives on [0.4, 1.0] (pooled remove cut ~0.578 at precision 0.95),
beside sources that hold only legitimate rows (comments, e-mail ham).
"""

import numpy as np

from policy.calibration import NO_REMOVAL, calibrate, calibrate_category

BASE = (0.5, 0.9)


def sms_like(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    scores = np.r_[rng.uniform(0.0, 0.6, n), rng.uniform(0.4, 1.0, n)]
    return scores, np.r_[np.zeros(n, int), np.ones(n, int)]


def with_sources(
    parts: list[tuple[str, np.ndarray, np.ndarray]],
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    scores = np.concatenate([s for _, s, _ in parts])
    labels = np.concatenate([lab for _, _, lab in parts])
    sources = np.concatenate([np.full(len(s), name) for name, s, _ in parts])
    return scores, labels, sources


def test_a_higher_cut_when_one_sources_ham_would_be_removed():
    sms_scores, sms_labels = sms_like(2_000, seed=11)
    # 500 legitimate e-mails, 10 of which look like spam to the model (0.60 .. 0.80)
    email_ham = np.r_[np.linspace(0.0, 0.3, 490), np.linspace(0.60, 0.80, 10)]
    comments = np.linspace(0.0, 0.35, 1_000)
    scores, labels, sources = with_sources(
        [
            ("sms", sms_scores, sms_labels),
            ("email", email_ham, np.zeros(500, int)),
            ("comments", comments, np.zeros(1_000, int)),
        ]
    )
    pooled = calibrate_category("spam", scores, labels, BASE, thin=False)
    per_source = calibrate_category("spam", scores, labels, BASE, thin=False, sources=sources)
    # pooled, the e-mails' 10 false positives drown in SMS: the cut removes legitimate mail
    assert pooled.remove.threshold < 0.62
    assert (email_ham >= pooled.remove.threshold).sum() >= 9
    # per source, the cut clears every legitimate e-mail and still removes spam
    assert per_source.remove.supported
    assert per_source.remove.threshold > 0.80
    assert (email_ham >= per_source.remove.threshold).sum() == 0
    assert per_source.remove.recall > 0.2
    assert per_source.vetoed_by == ("email",)
    assert "email" in per_source.note
    assert per_source.flag == pooled.flag  # the flag cut stays pooled


def test_unchanged_when_every_source_agrees():
    sms_scores, sms_labels = sms_like(2_000, seed=12)
    scores, labels, sources = with_sources(
        [
            ("sms", sms_scores, sms_labels),
            ("email", np.linspace(0.0, 0.3, 400), np.zeros(400, int)),
            ("comments", np.linspace(0.0, 0.2, 1_000), np.zeros(1_000, int)),
        ]
    )
    pooled = calibrate_category("spam", scores, labels, BASE, thin=False)
    per_source = calibrate_category("spam", scores, labels, BASE, thin=False, sources=sources)
    assert per_source == pooled
    assert per_source.vetoed_by == () and per_source.note == ""


def test_a_small_source_or_one_without_false_positives_never_vetoes():
    sms_scores, sms_labels = sms_like(2_000, seed=13)
    scores, labels, sources = with_sources(
        [
            ("sms", sms_scores, sms_labels),
            # 12 rows: below the row minimum, though 2 of its ham score 0.99
            ("tiny", np.r_[np.full(10, 0.1), 0.99, 0.99], np.zeros(12, int)),
            # 40 rows, its 15 spam near the top and its ham far below: nothing wrong removed
            ("seed", np.r_[np.full(15, 0.97), np.full(25, 0.05)], np.r_[np.ones(15), np.zeros(25)]),
        ]
    )
    out = calibrate(
        {"spam": scores},
        {"spam": labels.astype(int)},
        {"spam": BASE},
        thin={"spam": False},
        sources={"spam": sources},
    )
    alone = calibrate(
        {"spam": scores}, {"spam": labels.astype(int)}, {"spam": BASE}, thin={"spam": False}
    )
    assert out["spam"].remove == alone["spam"].remove
    assert out["spam"].vetoed_by == ()


def test_no_cut_clears_a_sources_ham_turns_removal_off():
    sms_scores, sms_labels = sms_like(1_000, seed=14)
    comments = np.r_[np.linspace(0.0, 0.3, 99), 1.0]  # one comment scores above every spam
    scores, labels, sources = with_sources(
        [("sms", sms_scores, sms_labels), ("comments", comments, np.zeros(100, int))]
    )
    result = calibrate_category("spam", scores, labels, BASE, thin=False, sources=sources)
    assert result.remove.threshold == NO_REMOVAL and not result.remove.supported
    assert result.vetoed_by == ("comments",)
    assert "removal off" in result.note
