"""Read and validate a policy file (TOML)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modq.categories import CANONICAL_CATEGORIES
from modq.errors import PolicyError
from policy.language import parse_language_rule
from policy.model import Calibration, CategoryThresholds, Policy, UserHistoryRule

FLAG_FRACTION_DEFAULT = 0.7  # flag at 0.7 x the remove threshold unless a file says otherwise


def parse_policy(document: Mapping[str, Any]) -> Policy:
    """Build a validated ``Policy`` from a parsed TOML document.

    Each ``[categories.NAME]`` table needs ``remove`` and may give ``flag``; without it the flag
    threshold is ``flag_fraction`` (top level, default 0.7) x ``remove``.
    """
    version = document.get("version")
    if not isinstance(version, str) or not version.strip():
        raise PolicyError("policy needs a non-empty string 'version'")
    fraction = document.get("flag_fraction", FLAG_FRACTION_DEFAULT)
    if not isinstance(fraction, int | float) or not 0.0 < fraction <= 1.0:
        raise PolicyError(f"flag_fraction must be in (0, 1], got {fraction!r}")
    tables = document.get("categories")
    if not isinstance(tables, Mapping) or not tables:
        raise PolicyError("policy needs a non-empty [categories] table")
    thresholds: dict[str, CategoryThresholds] = {}
    thin: set[str] = set()
    for name, table in tables.items():
        if name not in CANONICAL_CATEGORIES:
            raise PolicyError(
                f"unknown category {name!r} in policy {version}; "
                f"known: {', '.join(CANONICAL_CATEGORIES)}"
            )
        if not isinstance(table, Mapping) or not isinstance(table.get("remove"), int | float):
            raise PolicyError(f"category {name!r} needs a numeric 'remove' threshold")
        if table.get("thin") is True:
            thin.add(name)
        remove = float(table["remove"])
        flag = float(table.get("flag", round(remove * fraction, 6)))
        try:
            thresholds[name] = CategoryThresholds(flag=flag, remove=remove)
        except PolicyError as exc:
            raise PolicyError(f"category {name!r}: {exc}") from exc
    return Policy(
        version=version,
        thresholds=thresholds,
        calibration=_calibration(document.get("calibration"), version),
        user_history=_user_history(document.get("user_history"), version),
        thin=frozenset(thin),
        language=parse_language_rule(document.get("language"), version),
    )


def _calibration(table: Any, version: str) -> Calibration | None:
    if table is None:
        return None
    try:
        return Calibration(
            model_name=str(table["model_name"]),
            model_version=str(table["model_version"]),
            flag_precision_target=float(table["flag_precision_target"]),
            remove_precision_target=float(table["remove_precision_target"]),
            base_policy=str(table.get("base_policy", "")),
            calibrated_at=str(table.get("calibrated_at", "")),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise PolicyError(f"policy {version}: bad [calibration] table ({exc})") from exc


def _user_history(table: Any, version: str) -> UserHistoryRule | None:
    if table is None:
        return None
    if not isinstance(table, Mapping):
        raise PolicyError(f"policy {version}: [user_history] must be a table")
    if not table.get("enabled", True):
        return None
    known = {"enabled", "window_days", "repeat_offender_violations", "flag_threshold_factor"}
    unknown = set(table) - known
    if unknown:
        raise PolicyError(f"policy {version}: unknown user_history keys {sorted(unknown)}")
    try:
        return UserHistoryRule(
            window_days=int(table.get("window_days", 30)),
            repeat_offender_violations=int(table.get("repeat_offender_violations", 2)),
            flag_threshold_factor=float(table.get("flag_threshold_factor", 0.8)),
        )
    except (TypeError, ValueError) as exc:
        raise PolicyError(f"policy {version}: bad [user_history] table ({exc})") from exc


def load_policy(path: str | Path) -> Policy:
    """Read a TOML policy file; any problem is a ``PolicyError`` naming the file."""
    file = Path(path)
    try:
        document = tomllib.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise PolicyError(f"policy file not found: {file}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PolicyError(f"policy file {file} is not valid TOML: {exc}") from exc
    return parse_policy(document)


def load_policy_version(version: str, folder: str | Path) -> Policy:
    """The policy ``version`` from ``folder/<version>.toml`` (the file must declare that
    version: a renamed file never passes for another version)."""
    if not version or "/" in version or "\\" in version or version.startswith("."):
        raise PolicyError(f"bad policy version {version!r}")
    file = Path(folder) / f"{version}.toml"
    if not file.is_file():
        known = sorted(p.stem for p in Path(folder).glob("*.toml"))
        raise PolicyError(
            f"no policy version {version!r} in {folder} (known: {', '.join(known) or 'none'})"
        )
    policy = load_policy(file)
    if policy.version != version:
        raise PolicyError(f"{file} declares version {policy.version!r}, not {version!r}")
    return policy
