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
