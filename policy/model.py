"""A policy: a version string and a flag/remove threshold pair per canonical category."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from modq.errors import PolicyError

if TYPE_CHECKING:  # policy.language builds on policy.decide, which builds on this module
    from policy.language import LanguageRule


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
class UserHistoryRule:
    """How a user's recent outcomes move the decision (the ``[user_history]`` table).

    A user with at least ``repeat_offender_violations`` confirmed violations or removals in
    the last ``window_days`` is a repeat offender: their flag thresholds are multiplied by
    ``flag_threshold_factor`` (remove thresholds never move).
    """

    window_days: int = 30
    repeat_offender_violations: int = 2
    flag_threshold_factor: float = 0.8

    def __post_init__(self) -> None:
        if self.window_days < 1 or self.repeat_offender_violations < 1:
            raise PolicyError(
                "user_history needs window_days >= 1 and repeat_offender_violations >= 1"
            )
        if not 0.0 < self.flag_threshold_factor <= 1.0:
            raise PolicyError(
                "user_history.flag_threshold_factor must be in (0, 1], got "
                f"{self.flag_threshold_factor}"
            )


@dataclass(frozen=True, slots=True)
class Calibration:
    """Which model version a policy's thresholds were calibrated for (``[calibration]``)."""

    model_name: str
    model_version: str
    flag_precision_target: float
    remove_precision_target: float
    base_policy: str = ""
    calibrated_at: str = ""


@dataclass(frozen=True, slots=True)
class Policy:
    version: str
    thresholds: Mapping[str, CategoryThresholds]
    calibration: Calibration | None = None
    user_history: UserHistoryRule | None = None
    thin: frozenset[str] = frozenset()  # categories whose thresholds rest on thin data
    language: LanguageRule | None = None  # the [language] table (policy.language)

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(self.thresholds)
