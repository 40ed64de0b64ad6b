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


@pytest.mark.parametrize(
    "evasion",
    [
        "you are a stupid i.d.i.o.t",
        "you are a stupid i-d-i-o-t",
        "you are a stupid i_d_i_o_t",
        "you are a stupid i*d*i*o*t",
        "you are a stupid i\U0001f642d\U0001f642i\U0001f642o\U0001f642t",  # emoji between letters
        "you are a s.t.u.p.i.d idiot",
        "you are a stupid \u2170\u217e\u2170\u0585\u03c4",  # Roman numerals, Armenian o, Greek tau
        # mathematical bold letters
        "you are a \U0001d42c\U0001d42d\U0001d42e\U0001d429\U0001d422\U0001d41d idiot",
        "you are a \u13da\u13a2upid idiot",  # Cherokee DU and I (UTS #39: S, T)
    ],
)
def test_separated_and_look_alike_letters_tokenise_as_the_plain_text(tokenizer, evasion):
    assert tokenizer.encode(evasion).tokens == tokenizer.encode(PLAIN).tokens


@pytest.mark.parametrize(
    ("evasion", "plain"),
    [
        ("what a 1oser", "what a loser"),
        ("i will ki11 you", "i will kill you"),
        ("epic fai1", "epic fail"),
    ],
)
def test_one_for_l_is_read_as_l_where_i_is_unlikely(tokenizer, evasion, plain):
    assert tokenizer.encode(evasion).tokens == tokenizer.encode(plain).tokens


@pytest.mark.parametrize(
    "text",
    [
        "e.g. this is a well-known fact, i.e. it is",
        "on 12.03.2020 at 10:30 a.m. see https://example.org/page_2?x=1",
        "the U.S. team won 3-1 in the 11th minute",
        "it's a state-of-the-art, well-written, self-aware piece",
    ],
)
def test_clean_text_keeps_its_tokens(tokenizer, text):
    plain = Tokenizer.from_file(str(encoder_dir() / "tokenizer.json"))
    plain.no_padding()
    assert tokenizer.encode(text).tokens == plain.encode(text).tokens


def test_offsets_still_point_into_the_original_text(tokenizer):
    text = "hey you i.d.i.o.t and \u0455\u0442upid f*ck"
    encoding = tokenizer.encode(text)
    words = {
        tokenizer.decode([i]).replace(" ", ""): o
        for i, o in zip(encoding.ids, encoding.offsets, strict=True)
    }
    start, end = words["idiot"]
    assert text[start:end] == "i.d.i.o.t"
    start, end = words["stupid"]
    assert text[start:end] == "\u0455\u0442upid"


def test_every_confusable_maps_to_one_latin_letter():
    from training.normalize import confusable_letters

    letters = confusable_letters()
    assert len(letters) > 1000
    assert set(letters.values()) <= set("abcdefghijklmnopqrstuvwxyz")
    assert all(ord(char) > 127 for char in letters)
    assert letters["\u0430"] == "a" and letters["\u0399"] == "i"  # Cyrillic a, Greek capital iota
