"""A policy: a version string and a flag/remove threshold pair per canonical category."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from modq.errors import PolicyError


@dataclass(frozen=True, slots=True)
class CategoryThresholds:
    """Scores at or above ``flag`` flag the content; at or above ``remove`` remove it."""

    flag: float
    remove: float

    def __post_init__(self) -> None:
        if not 0.0 <= self.flag <= self.remove <= 1.0:
            raise PolicyError(
                f"thresholds must satisfy 0 <= flag <= remove <= 1, got flag={self.flag} "
                f"remove={self.remove}"
            )


@dataclass(frozen=True, slots=True)
class Policy:
    version: str
    thresholds: Mapping[str, CategoryThresholds]

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(self.thresholds)
