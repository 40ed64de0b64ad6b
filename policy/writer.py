"""Write a policy version as TOML (what `modq policy calibrate` produces)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from modq.errors import PolicyError
from policy.calibration import CategoryCalibration
from policy.language import LanguageRule
from policy.loader import load_policy
from policy.model import Calibration, Policy, UserHistoryRule


def next_version(folder: Path) -> str:
    """``vN`` one past the highest ``vN.toml`` in ``folder``."""
    numbers = [int(p.stem[1:]) for p in folder.glob("v*.toml") if p.stem[1:].isdigit()]
    return f"v{max(numbers, default=0) + 1}"


def _number(value: float) -> str:
    return f"{value:.6g}" if value not in (0.0, 1.0) else f"{value:.1f}"


def render_policy(
    version: str,
    thresholds: Mapping[str, tuple[float, float]],
    *,
    calibration: Calibration | None = None,
    user_history: UserHistoryRule | None = None,
    language: LanguageRule | None = None,
    thin: frozenset[str] = frozenset(),
    notes: Mapping[str, str] | None = None,
    header: str = "",
) -> str:
    """TOML text of a policy (read back by ``policy.load_policy``)."""
    lines = [f"# {line}" if line else "#" for line in header.splitlines()]
    lines.append(f'version = "{version}"')
    if calibration is not None:
        lines += [
            "",
            "[calibration]",
            f'model_name = "{calibration.model_name}"',
            f'model_version = "{calibration.model_version}"',
            f'base_policy = "{calibration.base_policy}"',
            f"flag_precision_target = {_number(calibration.flag_precision_target)}",
            f"remove_precision_target = {_number(calibration.remove_precision_target)}",
            f'calibrated_at = "{calibration.calibrated_at}"',
        ]
    for category, (flag, remove) in thresholds.items():
        lines += ["", f"[categories.{category}]"]
        if notes and notes.get(category):
            lines.append(f"# {notes[category]}")
        lines += [f"flag = {_number(flag)}", f"remove = {_number(remove)}"]
        if category in thin:
            lines.append("thin = true")
    if user_history is not None:
        lines += [
            "",
            "[user_history]",
            "enabled = true",
            f"window_days = {user_history.window_days}",
            f"repeat_offender_violations = {user_history.repeat_offender_violations}",
            f"flag_threshold_factor = {_number(user_history.flag_threshold_factor)}",
        ]
    if language is not None:
        codes = ", ".join(f'"{code}"' for code in language.supported)
        lines += [
            "",
            "[language]",
            "enabled = true",
            f"supported = [{codes}]",
            f'unsupported = "{language.unsupported.value}"',
            f"min_confidence = {_number(language.min_confidence)}",
        ]
    return "\n".join(lines) + "\n"


def write_policy(folder: Path, version: str, text: str) -> Path:
    """Write ``folder/<version>.toml`` (never over an existing version) and check it loads."""
    path = Path(folder) / f"{version}.toml"
    if path.exists():
        raise PolicyError(f"policy version {version} exists already ({path}); pick another")
    path.write_text(text, encoding="utf-8")
    try:
        loaded: Policy = load_policy(path)
    except PolicyError:
        path.unlink()
        raise
    if loaded.version != version:  # pragma: no cover - render_policy writes the version
        path.unlink()
        raise PolicyError(f"{path} does not declare version {version}")
    return path


def calibrated_policy_text(
    version: str,
    calibrated: Mapping[str, CategoryCalibration],
    base: Policy,
    calibration: Calibration,
    *,
    z: float,
    header_lead: str,
) -> str:
    """TOML text of a policy calibrated for ``calibration``'s model: each calibrated category's
    cuts with a note on what they do on validation; categories the model does not score keep
    the base policy's; the base policy's ``[user_history]`` and ``[language]`` rules are carried
    over."""
    thresholds = {c: (k.flag.threshold, k.remove.threshold) for c, k in calibrated.items()}
    for category, limits in base.thresholds.items():
        thresholds.setdefault(category, (limits.flag, limits.remove))  # e.g. self_harm
    notes = {
        c: (
            f"validation: flag P {k.flag.precision:.2f} R {k.flag.recall:.2f}, remove P "
            f"{k.remove.precision:.2f} R {k.remove.recall:.2f} ({k.positives} positives)"
            + (f"; {k.note}" if k.note else "")
        )
        for c, k in calibrated.items()
    }
    for category in sorted(set(base.thresholds) - set(calibrated)):
        notes[category] = "not scored by this model: base thresholds kept"
    return render_policy(
        version,
        thresholds,
        calibration=calibration,
        user_history=base.user_history,
        language=base.language,
        thin=frozenset(c for c, k in calibrated.items() if k.thin),
        notes=notes,
        header=(
            f"modq policy {version}: {header_lead} for {calibration.model_name} "
            f"{calibration.model_version}\non its validation split (flag precision >= "
            f"{calibration.flag_precision_target}, remove precision >= "
            f"{calibration.remove_precision_target}, Wilson z = {z}).\n"
            f"Base policy {base.version}. Change a threshold => bump `version`."
        ),
    )
