"""Language detection with the real detector (py3langid's packaged model), and the packaged
default policy acting on it. Every probe text below was written by hand for this test."""

import json
import subprocess
import sys
from itertools import islice
from pathlib import Path

import pytest

from gpu_worker.language import LanguageGuess, detect_language
from modq.schemas import Decision
from policy import decide, load_policy
from policy.language import ISO_639_1, UNSUPPORTED_LANGUAGE, apply_language_rule

REPO = Path(__file__).resolve().parent.parent

FOREIGN = {
    "es": [
        "Eres un imbécil y nadie en este foro te soporta.",
        "Vete a la mierda, no quiero volver a ver tus comentarios aquí.",
        "Ojalá te atropelle un camión mañana por la mañana.",
        "Los inmigrantes deberían volver a su país, aquí no los queremos.",
        "Mañana vamos a la playa con mis primos si no llueve.",
        "¿Alguien sabe a qué hora abre la farmacia del centro?",
        "Me encanta esta canción, la escucho todos los días camino al trabajo.",
        "Cállate de una vez, pedazo de idiota, no sabes nada.",
        "El precio de la vivienda ha subido muchísimo en los últimos años.",
        "Te voy a encontrar y te vas a arrepentir de lo que dijiste.",
    ],
    "fr": [
        "Tu es vraiment un connard, personne ne veut de toi ici.",
        "Ferme ta gueule, espèce d'abruti, tu ne sais rien.",
        "Je vais te retrouver et tu vas regretter ce que tu as écrit.",
        "Ces gens-là sont des sous-hommes et devraient quitter le pays.",
        "Nous partons en vacances à la montagne la semaine prochaine.",
        "Est-ce que quelqu'un sait où je peux acheter du pain frais le dimanche ?",
        "Merci beaucoup pour votre aide, le colis est bien arrivé hier soir.",
        "Va te faire foutre, sale menteur, je ne te crois plus.",
        "Le film était un peu long mais les acteurs jouaient très bien.",
        "J'espère que tu vas crever tout seul dans ton coin.",
    ],
    "de": [
        "Du bist so ein dummer Idiot, verschwinde endlich aus diesem Forum.",
        "Halt die Fresse, du Vollidiot, niemand interessiert sich für dich.",
        "Ich werde dich finden und dann wirst du es bereuen.",
        "Diese Leute sind Abschaum und sollten aus dem Land geworfen werden.",
        "Wir fahren am Wochenende mit den Kindern an den See.",
        "Weiß jemand, wann der Bus am Sonntag zum Bahnhof fährt?",
        "Vielen Dank für die schnelle Lieferung, alles ist gut angekommen.",
        "Du bist ein erbärmlicher Versager und jeder weiß es.",
        "Das Wetter war gestern so schlecht, dass wir zu Hause geblieben sind.",
        "Ich hoffe, du verreckst irgendwo im Straßengraben.",
    ],
    "it": [
        "Sei proprio uno stronzo, nessuno ti vuole in questo gruppo.",
        "Stai zitto, pezzo di cretino, non capisci niente.",
        "Ti troverò e ti farò pentire di quello che hai scritto.",
        "Domani andiamo al mare con i nostri amici se fa bel tempo.",
        "Qualcuno sa a che ora chiude il supermercato stasera?",
        "Grazie mille per l'aiuto, il pacco è arrivato ieri sera.",
        "Vaffanculo, bugiardo, non ti credo più.",
        "Il film era un po' lungo ma gli attori erano bravissimi.",
    ],
    "pt": [
        "Você é um idiota completo e ninguém aqui gosta de você.",
        "Cala a boca, seu imbecil, você não sabe de nada.",
        "Eu vou te encontrar e você vai se arrepender do que disse.",
        "Amanhã vamos à praia com os nossos primos se não chover.",
        "Alguém sabe a que horas abre a farmácia do centro da cidade?",
        "Muito obrigado pela ajuda, a encomenda chegou ontem à noite.",
        "Vai se foder, mentiroso, eu não acredito mais em você.",
        "O filme foi um pouco longo, mas os atores estavam ótimos.",
    ],
}
FOREIGN_CASES = [(code, text) for code, texts in FOREIGN.items() for text in texts]

# English that must never be called foreign: chat, slang, profanity, leetspeak, fragments,
# emoji, numbers, links, loanwords.
ENGLISH_SHORT = [
    "u r an idiot lol", "k", "ok thx", "1d10t", "😂😂😂", "🔥🔥", "👍", "🤬🤬🤬 !!!", "12345",
    "555-0199", "https://example.com/a?b=c", "www.example.org", "lol", "lmaooo", "wtf",
    "wtf is this", "gg ez noob", "shut up", "you suck", "f*** off", "stfu", "omg", "brb",
    "idk tbh", "ur mom", "n00b", "l33t h4x0r", "y0u 4r3 4n 1d10t", "stfu n00b ur tr4sh",
    "thx m8", "gr8 job m8", "bruh", "sus", "fr fr no cap", "haha", "hahaha ok", "yo wassup",
    "die in a fire", "nice pic", "see ya", "ty", "np", "ur so dumb", "kys", "go away", "yes",
    "no", "ok", "hi", "hey", "@mike_92 lol", "#blessed", "$$$ free money $$$", "!!!", "?",
    "...", "u stupid af", "dat ass tho", "r u serious", "piss off", "suck it", "ugh", "meh",
    "pls", "lol ur so dumb bro", "nah fam that aint it", "bro wtf r u doing", "get rekt scrub",
    "gonna be late sry", "go to hell", "fuck off", "fuck you", "eat shit", "holy shit",
    "damn son", "gtfo noob", "ez pz lemon squeezy", "1 h8 u", "u r a l0ser", "i d i o t",
    "b-i-t-c-h", "sh1t", "a$$hole", "kill urself", "ayy lmao", "ikr", "smh", "ffs mate",
    "cheers mate", "innit bruv", "oi mate", "Love it", "Amazing!!", "call me at 5", "RIP",
    "OMG!!!", "LOL", "NO", "STOP", "merry xmas", "hasta la vista baby", "bon appetit guys",
    "Grüße from Berlin lol", "ciao bella", "adios amigo", "déjà vu all over again",
]  # fmt: skip
ENGLISH_LONG = [
    "You are a complete idiot and nobody in this forum can stand you.",
    "Shut the fuck up, you worthless piece of shit, nobody asked for your opinion.",
    "I will find you and you will regret what you said about my family.",
    "We are going to the beach with my cousins tomorrow if it does not rain.",
    "Does anyone know what time the pharmacy downtown opens on Sunday?",
    "Thanks for the update, call me at 5 and we can go over the numbers.",
    "lol this is the dumbest thing i have read all week, delete ur account",
    "omg that movie was soooo good, cant wait for the sequel tbh",
    "Jose and Maria met Pierre and Hans at the cafe on Rue Lafayette.",
    "Click here to claim your free prize, limited offer, act now!!!",
    "ur a fkn loser and everyone knows it lmao",
    "Those people are subhuman and should be thrown out of this country.",
    "gg ez, uninstall the game noob, ur trash at this",
    "Ok lor wat time u finish? Muz go buy dinner wif him later can?",  # Singapore English
    "aint nobody got time fo dat, dem boys be trippin fr",  # African-American English
]


@pytest.mark.parametrize(("code", "text"), FOREIGN_CASES)
def test_european_sentences_are_detected_reliably(code: str, text: str) -> None:
    guess = detect_language(text)
    assert (guess.code, guess.reliable) == (code, True), guess
    assert 0.5 <= guess.confidence <= 1.0


@pytest.mark.parametrize("text", ENGLISH_SHORT + ENGLISH_LONG)
def test_english_chat_slang_and_fragments_are_never_called_foreign(text: str) -> None:
    guess = detect_language(text)
    assert guess.code == "en", guess
    assert 0.0 <= guess.confidence <= 1.0


@pytest.mark.parametrize("text", ["u r an idiot lol", "k", "ok thx", "1d10t", "😂😂😂", "12345"])
def test_short_text_is_english_and_unreliable(text: str) -> None:
    guess = detect_language(text)
    assert guess == LanguageGuess("en", guess.confidence, False)


@pytest.mark.parametrize("text", ["über", "Tschüss!", "Größe"])
def test_a_word_or_two_is_too_short_to_call_foreign(text: str) -> None:
    """A loanword with an umlaut looks German to the model (about 0.7): the letter floor keeps
    fewer than eight letters from ever counting as a language."""
    assert detect_language(text) == LanguageGuess("en", detect_language(text).confidence, False)


@pytest.mark.parametrize("text", ENGLISH_LONG[:8])
def test_plain_english_sentences_are_reliably_english(text: str) -> None:
    assert detect_language(text).reliable


def test_the_result_is_deterministic_across_calls_and_processes() -> None:
    texts = [text for _, text in FOREIGN_CASES[::4]] + ENGLISH_SHORT[::7]
    here = [detect_language(text) for text in texts]
    assert here == [detect_language(text) for text in texts]
    script = (
        "import json, sys\nfrom gpu_worker.language import detect_language\n"
        "print(json.dumps([list(vars_) for vars_ in ("
        "(g.code, g.confidence, g.reliable) for g in map(detect_language, json.load(sys.stdin)))]))"
    )
    run = subprocess.run(
        [sys.executable, "-c", script],
        input=json.dumps(texts),
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    assert [LanguageGuess(*g) for g in json.loads(run.stdout)] == here


def test_the_model_loads_lazily_and_once_under_concurrent_first_calls() -> None:
    """In a fresh process: importing the module loads nothing; 16 threads racing on the first
    call share one model and agree with a sequential run."""
    script = """
import sys, threading
import gpu_worker.language as language
assert "py3langid" not in sys.modules, "the detector was imported with the module"
texts = ["Eres un imbécil y nadie te soporta aquí.", "u r an idiot lol"] * 8
models, results = [], [None] * len(texts)
barrier = threading.Barrier(len(texts))
def work(i):
    barrier.wait()
    results[i] = language.detect_language(texts[i])
    models.append(id(language._model()))
threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
for t in threads: t.start()
for t in threads: t.join()
assert len(set(models)) == 1, models
assert results == [language.detect_language(t) for t in texts], results
assert results[0].code == "es" and results[1].code == "en"
print("ok")
"""
    run = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO, check=False
    )
    assert run.stdout.strip() == "ok", run.stderr


def test_only_the_head_of_a_long_text_is_read() -> None:
    english = "We are going to the beach with my cousins tomorrow if it does not rain. " * 60
    assert detect_language(english + FOREIGN["de"][0] * 50).code == "en"


def test_every_two_letter_code_the_detector_names_is_iso_639_1() -> None:
    from py3langid.langid import MODEL_FILE, LanguageIdentifier

    labels = LanguageIdentifier.from_model_file(MODEL_FILE).labels
    two_letter = {label for label in labels if len(label) == 2}
    assert len(two_letter) > 90
    assert two_letter <= ISO_639_1, two_letter - ISO_639_1


@pytest.mark.parametrize("version", ["v1", "v2"])
def test_the_default_policy_flags_foreign_text_and_leaves_english_chat_alone(
    version: str,
) -> None:
    policy = load_policy(REPO / "policy" / "policies" / f"{version}.toml")
    quiet = {category: 0.0 for category in policy.categories}  # what the English model says
    allowed = decide(quiet, policy)
    for _, text in FOREIGN_CASES:
        result = apply_language_rule(allowed, detect_language(text), policy.language)
        assert result.decision is Decision.FLAG, text
        assert [r.category for r in result.reasons] == [UNSUPPORTED_LANGUAGE]
    for text in ENGLISH_SHORT + ENGLISH_LONG:
        result = apply_language_rule(allowed, detect_language(text), policy.language)
        assert result is allowed, text


def _false_foreign_rate(texts: list[str], min_confidence: float) -> float:
    guesses = [detect_language(text) for text in texts]
    foreign = [
        g for g in guesses if g.reliable and g.code != "en" and g.confidence >= min_confidence
    ]
    return len(foreign) / len(texts)


@pytest.mark.slow
def test_real_english_corpora_are_rarely_sent_to_review() -> None:
    """Human-written English from the training packages (SMS slang, tweets, Wikipedia talk):
    at the default min_confidence, at most 0.3% is called foreign (some of it really is)."""
    from training.datasets import profanity_examples, sms_examples

    sms = [example.text for example in sms_examples()]
    comments = [example.text for example in islice(profanity_examples(), 0, None, 40)]
    assert len(sms) > 4000 and len(comments) > 4000
    assert _false_foreign_rate(sms, 0.5) <= 0.003
    assert _false_foreign_rate(comments, 0.5) <= 0.003
