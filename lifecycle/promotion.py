"""Promote and roll back: move a registry alias and record the move in SQL, as one act."""

from __future__ import annotations

import getpass
import os
from datetime import UTC, datetime

from db.alias_history import AliasHistory, AliasMove
from modq.errors import PromotionError, UnknownModel
from registry import ModelRegistry

DEFAULT_ALIAS = "production"


def current_actor() -> str:
    """Who is moving the alias: ``MODQ_ACTOR`` if set, else the login name."""
    try:
        return os.environ.get("MODQ_ACTOR") or getpass.getuser()
    except (KeyError, OSError):  # no passwd entry (some containers)
        return f"uid-{os.getuid()}"


def promote(
    registry: ModelRegistry,
    history: AliasHistory,
    name: str,
    version: str,
    *,
    alias: str = DEFAULT_ALIAS,
    actor: str | None = None,
    reason: str = "",
) -> AliasMove:
    """Point ``name@alias`` at ``version`` (which must exist) and record who, when and why."""
    target = registry.get(name, version)  # UnknownModel for an unknown name or version
    held = registry.aliases(name).get(alias)
    if held == target.version:
        raise PromotionError(f"{name}@{alias} already points at v{target.version}")
    return _move(registry, history, name, alias, "promote", held, target.version, actor, reason)


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
