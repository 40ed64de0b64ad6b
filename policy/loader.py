"""Read and validate a policy file (TOML)."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from modq.categories import CANONICAL_CATEGORIES
from modq.errors import PolicyError
from policy.model import CategoryThresholds, Policy

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
    for name, table in tables.items():
        if name not in CANONICAL_CATEGORIES:
            raise PolicyError(
                f"unknown category {name!r} in policy {version}; "
                f"known: {', '.join(CANONICAL_CATEGORIES)}"
            )
        if not isinstance(table, Mapping) or not isinstance(table.get("remove"), int | float):
            raise PolicyError(f"category {name!r} needs a numeric 'remove' threshold")
        remove = float(table["remove"])
        flag = float(table.get("flag", round(remove * fraction, 6)))
        try:
            thresholds[name] = CategoryThresholds(flag=flag, remove=remove)
        except PolicyError as exc:
            raise PolicyError(f"category {name!r}: {exc}") from exc
    return Policy(version=version, thresholds=thresholds)


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
