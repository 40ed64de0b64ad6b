"""Promote and roll back: move a registry alias and record the move in SQL, as one act."""

from __future__ import annotations

import getpass
import os
from datetime import UTC, datetime
from pathlib import Path

from db.alias_history import AliasHistory, AliasMove
from modq.errors import PolicyError, PromotionError, UnknownModel
from policy import Policy, load_policy
from policy.carried import CARRIED_POLICY_FILE, calibration_mismatch, carried_policy
from registry import ModelRegistry, RegisteredVersion

DEFAULT_ALIAS = "production"


def current_actor() -> str:
    """Who is moving the alias: ``MODQ_ACTOR`` if set, else the login name."""
    try:
        return os.environ.get("MODQ_ACTOR") or getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return f"uid-{os.getuid()}"


def calibrated_policies(entry: RegisteredVersion, policies_dir: Path) -> list[Policy]:
    """The policies in ``policies_dir`` whose thresholds were calibrated for this version's
    artifact (``[calibration] model_version`` = its digest)."""
    found = []
    for path in sorted(Path(policies_dir).glob("*.toml")):
        try:
            policy = load_policy(path)
        except PolicyError:
            continue
        if policy.calibration is not None and policy.calibration.model_version == entry.digest:
            found.append(policy)
    return found


def carried_calibrated_policy(
    registry: ModelRegistry, entry: RegisteredVersion
) -> tuple[Policy | None, str]:
    """The policy the version's own folder carries (``policy.toml``, written by `modq model
    build`) if it was calibrated for this very artifact, else None; and why not."""
    try:
        policy = carried_policy(registry.local_folder(entry))
    except PolicyError as exc:
        return None, f"its {CARRIED_POLICY_FILE} does not load ({exc.message})"
    if policy is None:
        return None, f"its folder carries no {CARRIED_POLICY_FILE}"
    if policy.calibration is None:
        return None, f"its {CARRIED_POLICY_FILE} names no model version"
    mismatch = calibration_mismatch(policy, entry.digest)
    if mismatch is not None:
        return None, f"its {CARRIED_POLICY_FILE}: {mismatch.split(';')[0]}"
    return policy, ""


def promote(
    registry: ModelRegistry,
    history: AliasHistory,
    name: str,
    version: str,
    *,
    alias: str = DEFAULT_ALIAS,
    actor: str | None = None,
    reason: str = "",
    policies_dir: Path | None = None,
    force: bool = False,
) -> AliasMove:
    """Point ``name@alias`` at ``version`` (which must exist) and record who, when and why.

    With ``policies_dir``, a version is refused unless the policy its own folder carries, or
    a policy in ``policies_dir``, was calibrated for it, unless ``force`` (which needs a
    ``reason``; the move's reason records that it was forced).
    """
    target = registry.get(name, version)  # UnknownModel for an unknown name or version
    if force and not reason.strip():
        raise PromotionError("--force needs a --reason: say why an uncalibrated version ships")
    if policies_dir is not None and not calibrated_policies(target, policies_dir):
        carried, why_not = carried_calibrated_policy(registry, target)
        if carried is None and not force:
            raise PromotionError(
                f"no policy in {policies_dir} is calibrated for {name} v{target.version} "
                f"(digest {target.digest}), and {why_not}; rebuild it with `modq model build`, "
                "run `modq policy calibrate` on it, or promote with --force --reason"
            )
        if carried is None:
            reason = f"[forced: no calibrated policy] {reason}"
    held = registry.aliases(name).get(alias)
    if held == target.version:
        raise PromotionError(f"{name}@{alias} already points at v{target.version}")
    return _move(registry, history, name, alias, "promote", held, target.version, actor, reason)


def ab_promotion_reason(
    experiment_id: str, variant: str, verdict: str, why: str, *, force: bool, reason: str
) -> str:
    """The alias-history reason for promoting an A/B variant whose verdict is ``verdict``
    (``why``: the analysis's reason). Without a "ship" verdict it is refused
    (``PromotionError``) unless ``force`` is given with a ``reason``, which is recorded."""
    if verdict == "ship":
        return reason or f"A/B {experiment_id}: {variant} won ({why})"
    if not force:
        raise PromotionError(
            f"A/B {experiment_id}: {variant!r} has no ship verdict ({verdict}: {why}); "
            "promote anyway only with --force --reason '...'"
        )
    if not reason.strip():
        raise PromotionError("--force needs --reason: why promote without a ship verdict")
    return (
        f"A/B {experiment_id}: {variant} FORCED without a ship verdict ({verdict}: {why}): {reason}"
    )


def rollback(
    registry: ModelRegistry,
    history: AliasHistory,
    name: str,
    *,
    alias: str = DEFAULT_ALIAS,
    actor: str | None = None,
    reason: str = "",
) -> AliasMove:
    """Point ``name@alias`` back at the version it held before the current one was promoted."""
    held = registry.aliases(name).get(alias)
    if held is None:
        raise UnknownModel(f"model {name!r} has no alias {alias!r} to roll back")
    moves = history.moves(name, alias)
    if moves and moves[-1].to_version != held:
        raise PromotionError(
            f"{name}@{alias} points at v{held}, but its last recorded move was to "
            f"v{moves[-1].to_version}: it was moved outside modq; promote explicitly instead"
        )
    target = history.rollback_target(name, alias)
    if target is None:
        raise PromotionError(f"{name}@{alias} has no earlier version to roll back to")
    registry.get(name, target)  # the version must still exist
    return _move(registry, history, name, alias, "rollback", held, target, actor, reason)


def _move(
    registry: ModelRegistry,
    history: AliasHistory,
    name: str,
    alias: str,
    action: str,
    from_version: str | None,
    to_version: str,
    actor: str | None,
    reason: str,
) -> AliasMove:
    move = AliasMove(
        model_name=name,
        alias=alias,
        action=action,
        from_version=from_version,
        to_version=to_version,
        actor=actor or current_actor(),
        reason=reason,
        moved_at=datetime.now(UTC),
    )
    # the row commits only if the alias really moved; if the commit itself then fails, the
    # alias is put back so the registry and the history never disagree
    try:
        with history.recording(move):
            registry.set_alias(name, alias, to_version)
    except BaseException:
        current = registry.aliases(name).get(alias)
        if current == to_version and from_version is not None:
            registry.set_alias(name, alias, from_version)
        raise
    return move
