"""Evasion normalisation lives in the model's tokenizer.json: evasions tokenise as plain text."""

import pytest
from tokenizers import Tokenizer

from training.encoder import encoder_dir
from training.evasion import TRANSFORMATIONS
from training.normalize import load_model_tokenizer

PLAIN = "you are a stupid idiot"


@pytest.fixture(scope="module")
def tokenizer():
    return load_model_tokenizer(str(encoder_dir() / "tokenizer.json"), 256)


@pytest.mark.parametrize(
    "evasion",
    [
        "you are a stu\u200bpid i\u200bd\u200bi\u200bo\u200bt",  # zero-width
        "yоu аrе а stupid idiоt",  # Cyrillic о, а, е
        "you are a stup1d 1d10t",  # leetspeak
        # spaced letters (a lone letter just before them joins them too: "a s t u" -> "astu")
        "you are a  s t u p i d  i d i o t",
        "you are a stuuuuupid idiooooot",  # repeated characters
        "YOU ARE A STUPID IDIOT",
    ],
)
def test_evasions_tokenise_as_the_plain_text(tokenizer, evasion):
    assert tokenizer.encode(evasion).tokens == tokenizer.encode(PLAIN).tokens


@pytest.mark.parametrize("name", sorted(TRANSFORMATIONS))
def test_each_evasion_of_the_set_is_undone(tokenizer, name):
    text = "what a pathetic loser you are"
    assert tokenizer.encode(TRANSFORMATIONS[name](text)).ids == tokenizer.encode(text).ids


def test_ordinary_text_keeps_its_numbers_and_words(tokenizer):
    plain = Tokenizer.from_file(str(encoder_dir() / "tokenizer.json"))
    plain.no_padding()
    for text in ("in 2020 I had 3 cats", "call 555-0123 at 10:30", "hello, good morning"):
        assert tokenizer.encode(text).tokens == plain.encode(text).tokens


def test_the_built_model_carries_the_normaliser(model_dir):
    served = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    assert served.encode("1d10t").tokens == served.encode("idiot").tokens
