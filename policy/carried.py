"""The policy a model folder carries, and which policy a worker serves a model under.

`modq model build` writes ``policy.toml`` into every folder it builds: thresholds calibrated on
that folder's own validation scores, its ``[calibration]`` table naming that very artifact
(``model_version`` = its digest). The policy travels with the model: into the registry when
the folder is registered, and into every worker that loads it.

A worker serves a model under, in this order: the policy ``MODQ_POLICY_PATH`` names, if it is
set; else the policy the model's folder carries; else the packaged default. Whichever it is, a
policy whose ``[calibration]`` names another model version is a *mismatch*: its thresholds were
chosen for other scores. The worker still serves (a promotion may have been forced), and says
so in ``/healthz`` (``degraded``) and ``modq_stats``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from policy.loader import load_policy
from policy.model import Policy

CARRIED_POLICY_FILE = "policy.toml"
FROM_MODEL_FOLDER = "model folder"
FROM_SETTING = "MODQ_POLICY_PATH"
FROM_DEFAULT = "packaged default"


def carried_policy_version(base_version: str, digest: str) -> str:
    """The version of a carried policy: its base policy's, ``+`` the model's digest
    (``v2+8a39c68812c5``: v2's rules, thresholds calibrated for 8a39c68812c5)."""
    return f"{base_version.split('+')[0]}+{digest}"


def carried_policy(folder: Path) -> Policy | None:
    """The policy ``folder`` carries, or None if it carries none (``PolicyError`` if the file
    is there but unreadable)."""
    path = Path(folder) / CARRIED_POLICY_FILE
    return load_policy(path) if path.is_file() else None


def calibration_mismatch(policy: Policy, digest: str) -> str | None:
    """Why ``policy`` does not fit the model whose artifact digest is ``digest``, or None.

    A policy without a ``[calibration]`` table (hand-set thresholds, such as v1) names no model
    and fits none in particular: it is not a mismatch."""
    calibration = policy.calibration
    if calibration is None or calibration.model_version == digest:
        return None
    return (
        f"policy {policy.version} was calibrated for {calibration.model_name} "
        f"{calibration.model_version}, not for the served model {digest}; calibrate one for it "
        "(`modq policy calibrate`) or serve the policy its folder carries"
    )


@dataclass(frozen=True, slots=True)
class ServedPolicy:
    """The policy a model is served under, where it came from, and whether it fits."""

    policy: Policy
    source: str  # FROM_SETTING, FROM_MODEL_FOLDER or FROM_DEFAULT
    model_digest: str
    mismatch: str | None  # None: calibrated for this model (or declares no model)

    def describe(self) -> dict[str, str | None]:
        """What ``modq_stats`` reports."""
        calibration = self.policy.calibration
        return {
            "policy_version": self.policy.version,
            "policy_source": self.source,
            "policy_calibrated_for": calibration.model_version if calibration else None,
            "policy_mismatch": self.mismatch,
        }


def policy_for_model(
    folder: Path, digest: str, *, configured: Path | None, default: Path
) -> ServedPolicy:
    """The policy to serve the model in ``folder`` (artifact digest ``digest``) under:
    ``configured`` (``MODQ_POLICY_PATH`` when set) if given, else the folder's own policy,
    else ``default``; checked against ``digest``."""
    if configured is not None:
        policy, source = load_policy(configured), FROM_SETTING
    else:
        carried = carried_policy(folder)
        if carried is not None:
            policy, source = carried, FROM_MODEL_FOLDER
        else:
            policy, source = load_policy(default), FROM_DEFAULT
    return ServedPolicy(policy, source, digest, calibration_mismatch(policy, digest))
