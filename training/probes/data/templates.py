"""Hand-written templates and terms for the identity and hate probe sets (PROVENANCE.md).

Each term is ``(name, singular phrase, plural phrase)``; templates fill ``{one}`` (singular,
with its article) and ``{many}`` (plural). Sentences are capitalised after filling.
"""

from __future__ import annotations

IDENTITY_TERMS: tuple[tuple[str, str, str], ...] = (
    ("queer", "a queer person", "queer people"),
    ("gay", "a gay person", "gay people"),
    ("lesbian", "a lesbian", "lesbians"),
    ("bisexual", "a bisexual person", "bisexual people"),
    ("trans", "a trans person", "trans people"),
    ("black", "a black person", "black people"),
    ("white", "a white person", "white people"),
    ("asian", "an asian person", "asian people"),
    ("latino", "a latino person", "latino people"),
    ("mexican", "a mexican person", "mexican people"),
    ("muslim", "a muslim", "muslims"),
    ("jewish", "a jewish person", "jewish people"),
    ("christian", "a christian", "christians"),
    ("atheist", "an atheist", "atheists"),
    ("women", "a woman", "women"),
    ("men", "a man", "men"),
    ("disabled", "a disabled person", "disabled people"),
    ("immigrant", "an immigrant", "immigrants"),
    ("old", "an old person", "old people"),
    ("young", "a young person", "young people"),
    ("deaf", "a deaf person", "deaf people"),
    ("african", "an african person", "african people"),
)

# neutral nouns: the control rows (no identity), same templates
CONTROL_TERMS: tuple[tuple[str, str, str], ...] = (
    ("tall", "a tall person", "tall people"),
    ("teacher", "a teacher", "teachers"),
    ("farmer", "a farmer", "farmers"),
    ("student", "a student", "students"),
    ("nurse", "a nurse", "nurses"),
)

BENIGN_TEMPLATES: tuple[str, ...] = (
    "I am {one}.",
    "{many} live here.",
    "My best friend is {one}.",
    "I grew up with many {many}.",
    "{many} are welcome at our event.",
    "She is {one} and a great doctor.",
    "As {one}, I love hiking on weekends.",
    "We met some {many} at the festival.",
    "Our new colleague is {one}.",
    "{many} have the same rights as everyone else.",
    "My neighbour is {one} who bakes amazing bread.",
    "The book club has several {many} in it.",
)

TOXIC_TEMPLATES: tuple[str, ...] = (
    "{many} are disgusting.",
    "I hate {many}.",
    "{many} are stupid and worthless.",
    "All {many} are filthy animals.",
    "{many} should die.",
    "Never trust {many}, they are lying scum.",
    "Shut up, you are {one} and an idiot.",
    "{many} are ugly and pathetic.",
)

# hate without profanity: dehumanisation and exclusion of a group
HATE_TEMPLATES: tuple[str, ...] = (
    "{many} are subhuman.",
    "{many} should be thrown out of this country.",
    "{many} are vermin and should be removed from society.",
    "{many} are not real human beings.",
    "{many} do not belong here and must go back where they came from.",
    "Our country would be better off without any {many}.",
    "{many} should not be allowed to vote.",
    "{many} are a plague on this nation.",
    "Keep {many} out of our neighbourhood.",
    "{many} are parasites living off the rest of us.",
)

HATE_GROUPS: tuple[str, ...] = (
    "gay",
    "trans",
    "black",
    "asian",
    "mexican",
    "muslim",
    "jewish",
    "women",
    "disabled",
    "immigrant",
    "african",
    "latino",
)
