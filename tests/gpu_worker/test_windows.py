"""Windows: a long text is scored whole and a short abusive span in it is not diluted."""

import itertools

import numpy as np
import pytest

from gpu_worker.backends.onnx import OnnxBackend
from gpu_worker.batcher import MicroBatcher
from gpu_worker.windows import SENTENCE_TOKENS, plan_windows, sentence_spans
from policy.carried import carried_policy

THREAT = "I am going to find where you live and I will kill you."
# benign filler written for this test (no abuse, varied sentences)
FILLER = (
    "We walked along the river after lunch and counted the boats. "
    "The library opens at nine on weekdays and at ten on Saturdays. "
    "My sister planted tomatoes, basil and two kinds of peppers this spring. "
    "The committee will publish the minutes of the meeting next Tuesday. "
    "Remember to bring a jacket, because the evenings are getting colder. "
    "The recipe needs three eggs, a cup of flour and a pinch of salt. "
)


def long_post(at: str, words: int = 2000) -> tuple[str, int]:
    """About ``words`` words of filler with the threat at the start, middle or end, between two
    of its sentences; and where the threat starts. (Glued to half a sentence, a threat can
    straddle two sentence windows: docs/batching.md.)"""
    filler = (FILLER * (words // len(FILLER.split()) + 1)).split(" ")[:words]
    middle = next(i for i in range(len(filler) // 2, len(filler)) if filler[i - 1].endswith("."))
    cut = {"start": 0, "middle": middle, "end": len(filler)}[at]
    before, after = " ".join(filler[:cut]), " ".join(filler[cut:])
    text = " ".join(p for p in (before, THREAT, after) if p)
    return text, text.index(THREAT)


@pytest.fixture(scope="module")
def backend(model_dir):
    return OnnxBackend(model_dir)


def test_a_short_text_is_one_window_and_scores_as_before(backend):
    texts = ["you are a complete idiot", "thanks for the help!"]
    plans = backend.windows(texts)
    assert [len(p.windows) for p in plans] == [1, 1]
    assert plans[0].windows[0].start == 0 and plans[0].windows[0].end == len(texts[0])
    np.testing.assert_allclose(backend.score(texts), backend.run(backend.tokenize(texts)))


def test_windows_cover_every_character_of_a_long_text(backend):
    text, _ = long_post("middle")
    (plan,) = backend.windows([text])
    assert not plan.truncated
    covered = np.zeros(len(text), bool)
    for w in plan.windows:
        covered[w.start : w.end] = True
        assert len(backend.tokenize([text[w.start : w.end]])[0]) <= 256
    assert all(covered[i] for i, ch in enumerate(text) if not ch.isspace())


@pytest.mark.parametrize("at", ["start", "middle", "end"])
def test_a_threat_inside_two_thousand_words_is_caught_as_it_is_alone(backend, model_dir, at):
    alone = backend.score_windows([THREAT])
    text, where = long_post(at)
    scored = backend.score_windows([text])
    violence = backend.categories.index("violence")
    flag = carried_policy(model_dir).thresholds["violence"].flag
    assert alone.scores[0, violence] >= flag
    assert scored.scores[0, violence] >= flag  # caught inside the post as it is alone
    start, end = scored.spans[0, violence]
    assert "kill you" in text[start:end]  # the span is the threat
    assert start < where + len(THREAT) and end > where
    assert end - start < 400  # and little else: a sentence, not the post
    assert scored.windows[0] > 10


def test_the_old_cut_at_256_tokens_lost_the_threat(backend):
    """What windows fix: scored as one truncated text, the threat at the end is not seen."""
    text, _ = long_post("end")
    violence = backend.categories.index("violence")
    truncated = backend.run(backend.tokenize([text]))[0, violence]
    alone = backend.score([THREAT])[0, violence]
    assert truncated < 0.5 * alone


def test_sentences_split_at_ends_and_short_ones_join_the_next():
    text = "Hi. I really cannot stand you anymore! See you at 5 p.m. tomorrow, okay? ok"
    spans = sentence_spans(text)
    assert [text[a:b] for a, b in spans] == [
        "Hi. I really cannot stand you anymore!",
        "See you at 5 p.m. tomorrow, okay? ok",
    ]


def test_one_long_sentence_is_cut_in_pieces_end_to_end():
    words = " ".join(f"w{i}" for i in range(200))
    offsets, at = [], 0
    for word in words.split(" "):
        offsets.append((at, at + len(word)))
        at += len(word) + 1
    plan = plan_windows(words, offsets, max_tokens=256)
    pieces = plan.windows[1:]  # the first is the whole text
    assert plan.windows[0].start == 0 and plan.windows[0].end == len(words)
    assert len(pieces) == -(-200 // SENTENCE_TOKENS)
    assert all(b.start > a.end for a, b in itertools.pairwise(pieces))  # end to end
    assert pieces[0].start == 0 and pieces[-1].end == len(words)


def test_the_batcher_runs_windows_as_rows_and_answers_spans(backend):
    text, where = long_post("end", words=600)
    batcher = MicroBatcher(backend, max_batch_size=16, max_batch_tokens=2048, max_wait_ms=5)
    try:
        scored = batcher.submit_scored([text, THREAT]).result(timeout=60)
        plain = batcher.submit([text, THREAT]).result(timeout=60)
    finally:
        batcher.close()
    (plan,) = backend.windows([text])
    assert batcher.stats.rows + batcher.stats.rows_deduplicated == 2 * (len(plan.windows) + 1)
    np.testing.assert_allclose(scored.scores, plain, atol=1e-6)
    violence = backend.categories.index("violence")
    start, end = scored.spans[0, violence]
    assert "kill you" in text[start:end] and end > where
    assert tuple(scored.spans[1, violence]) == (0, len(THREAT))
