"""The canonical moderation categories every model's labels map onto."""

from __future__ import annotations

from typing import Final

VIOLENCE: Final = "violence"
ADULT: Final = "adult"
HATE_SPEECH: Final = "hate_speech"
HARASSMENT: Final = "harassment"
SPAM: Final = "spam"
SELF_HARM: Final = "self_harm"

CANONICAL_CATEGORIES: Final[tuple[str, ...]] = (
    VIOLENCE,
    ADULT,
    HATE_SPEECH,
    HARASSMENT,
    SPAM,
    SELF_HARM,
)


def is_canonical(category: str) -> bool:
    return category in CANONICAL_CATEGORIES


# OpenAI's moderation categories (POST /v1/moderations) and the one mapping of modq's onto
# them (docs/api.md). OpenAI has no spam category: spam lands on "illicit" (scams and fraud
# are the spam that harms; see docs/api.md for why). An OpenAI category no modq category maps
# onto has no model behind it: it reads 0 / false and is listed in ``unscored_categories``.
OPENAI_CATEGORIES: Final[tuple[str, ...]] = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
OPENAI_NAME: Final[dict[str, str]] = {
    HARASSMENT: "harassment",
    HATE_SPEECH: "hate",
    SELF_HARM: "self-harm",
    ADULT: "sexual",
    VIOLENCE: "violence",
    SPAM: "illicit",
}


def openai_unscored(scored: tuple[str, ...] | list[str]) -> list[str]:
    """The OpenAI categories a model scoring ``scored`` (modq categories) leaves unscored."""
    covered = {OPENAI_NAME[c] for c in scored if c in OPENAI_NAME}
    return [name for name in OPENAI_CATEGORIES if name not in covered]
