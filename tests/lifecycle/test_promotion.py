"""Promote and roll back against a real MLflow registry, history in SQLite and PostgreSQL."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from db.alias_history import AliasHistory
from gpu_worker.manifest import ModelManifest
from lifecycle import promote, register_model_folder, rollback
from modq.errors import PromotionError, StorageUnavailable, UnknownModel
from policy.carried import CARRIED_POLICY_FILE
from registry import ModelRegistry

NAME = "modq-test"


@pytest.fixture(scope="module")
def third_model_dir(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tests.model_variants import make_variant

    return make_variant(model_dir, tmp_path_factory.mktemp("third"), bias_shift=-1.0)


@pytest.fixture
def three_versions(
    model_registry: ModelRegistry,
    model_dir: Path,
    variant_model_dir: Path,
    third_model_dir: Path,
) -> ModelRegistry:
    # that each folder loads is checked in tests/registry; here only the workflow matters
    for folder in (model_dir, variant_model_dir, third_model_dir):
        register_model_folder(folder, name=NAME, registry=model_registry, check_loads=False)
    return model_registry


@pytest.fixture
def history(database_url: str) -> Iterator[AliasHistory]:
    engine = create_engine(database_url)
    yield AliasHistory(engine)
    engine.dispose()


def test_promote_and_rollback_record_every_move(
    three_versions: ModelRegistry, history: AliasHistory
) -> None:
    registry = three_versions
    before_any = datetime.now(UTC)
    promote(registry, history, NAME, "1", actor="alice", reason="first release")
    promote(registry, history, NAME, "2", actor="bob", reason="better recall")
    promote(registry, history, NAME, "3", actor="carol", reason="retrained")
    assert registry.aliases(NAME) == {"production": "3"}

    back = rollback(registry, history, NAME, actor="dave", reason="false positives up")
    assert (back.from_version, back.to_version) == ("3", "2")
    again = rollback(registry, history, NAME, actor="dave", reason="still bad")
    assert (again.from_version, again.to_version) == ("2", "1")  # a stack, not a toggle
    assert registry.aliases(NAME) == {"production": "1"}
    with pytest.raises(PromotionError, match="no earlier version"):
        rollback(registry, history, NAME)

    moves = history.moves(NAME)
    assert [(m.action, m.from_version, m.to_version, m.actor) for m in moves] == [
        ("promote", None, "1", "alice"),
        ("promote", "1", "2", "bob"),
        ("promote", "2", "3", "carol"),
        ("rollback", "3", "2", "dave"),
        ("rollback", "2", "1", "dave"),
    ]
    assert moves[1].reason == "better recall"
    assert all(m.moved_at >= before_any for m in moves)
    # which version was in production at a past moment
    assert history.version_at(NAME, "production", moves[2].moved_at) == "3"
    assert history.version_at(NAME, "production", before_any) is None


def test_aliases_are_independent(three_versions: ModelRegistry, history: AliasHistory) -> None:
    promote(three_versions, history, NAME, "1")
    promote(three_versions, history, NAME, "3", alias="challenger")
    assert three_versions.aliases(NAME) == {"production": "1", "challenger": "3"}
    assert [m.alias for m in history.moves(NAME, "challenger")] == ["challenger"]


def test_bad_promotions_are_clear_errors_and_move_nothing(
    three_versions: ModelRegistry, history: AliasHistory
) -> None:
    promote(three_versions, history, NAME, "1")
    with pytest.raises(UnknownModel, match="no-such"):
        promote(three_versions, history, "no-such", "1")
    with pytest.raises(UnknownModel, match="no version 9"):
        promote(three_versions, history, NAME, "9")
    with pytest.raises(PromotionError, match="already points at v1"):
        promote(three_versions, history, NAME, "1")
    with pytest.raises(UnknownModel, match="no alias 'canary'"):
        rollback(three_versions, history, NAME, alias="canary")
    assert three_versions.aliases(NAME) == {"production": "1"}
    assert len(history.moves(NAME)) == 1


def test_an_alias_moved_outside_modq_is_not_rolled_back_blindly(
    three_versions: ModelRegistry, history: AliasHistory
) -> None:
    promote(three_versions, history, NAME, "1")
    promote(three_versions, history, NAME, "2")
    three_versions.set_alias(NAME, "production", "3")  # e.g. from the MLflow UI
    with pytest.raises(PromotionError, match="moved outside modq"):
        rollback(three_versions, history, NAME)
    assert three_versions.aliases(NAME) == {"production": "3"}


def test_history_down_means_no_move(three_versions: ModelRegistry, tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.raises(StorageUnavailable, match="cannot record alias move"):
        promote(three_versions, AliasHistory(engine), NAME, "2")
    engine.dispose()
    assert three_versions.aliases(NAME) == {}


def test_a_version_without_a_calibrated_policy_is_refused_unless_forced(
    three_versions: ModelRegistry, history: AliasHistory, model_dir: Path, tmp_path: Path
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "v1.toml").write_text('version = "v1"\n[categories.spam]\nremove = 0.9\n')
    # version 3 is a variant: whatever policy.toml it copied names its source's digest
    with pytest.raises(PromotionError, match=r"no policy .* is calibrated for"):
        promote(three_versions, history, NAME, "3", policies_dir=policies)
    with pytest.raises(PromotionError, match="needs a --reason"):
        promote(three_versions, history, NAME, "3", policies_dir=policies, force=True)
    assert history.moves(NAME) == []

    forced = promote(
        three_versions, history, NAME, "2", policies_dir=policies, force=True, reason="hotfix"
    )
    assert forced.reason == "[forced: no calibrated policy] hotfix"

    digest = ModelManifest.read(model_dir).version  # version 1 is the model_dir folder
    (policies / "v2.toml").write_text(
        'version = "v2"\n[calibration]\nmodel_name = "m"\n'
        f'model_version = "{digest}"\nflag_precision_target = 0.8\n'
        "remove_precision_target = 0.95\n[categories.spam]\nremove = 0.9\n"
    )
    move = promote(three_versions, history, NAME, "1", policies_dir=policies, reason="calibrated")
    assert move.to_version == "1" and move.reason == "calibrated"


@pytest.fixture(scope="module")
def fresh_builds(model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The real model as a fresh `modq model build` leaves it (its own policy.toml), and a
    variant of it that copied that policy.toml: one calibrated for another version."""
    from modq.settings import get_settings
    from policy import load_policy
    from tests.model_variants import make_variant
    from training.finish import ensure_carried_policy

    built = tmp_path_factory.mktemp("fresh") / "model"
    built.mkdir()
    for path in model_dir.iterdir():
        if path.is_file() and path.name != CARRIED_POLICY_FILE:
            shutil.copy(path, built / path.name)
    assert ensure_carried_policy(built, load_policy(get_settings().policy_path)) is not None
    variant = make_variant(built, tmp_path_factory.mktemp("copied-policy"), bias_shift=1.5)
    return {"built": built, "variant": variant}


def test_the_policy_a_version_carries_lets_it_through_one_for_another_does_not(
    model_registry: ModelRegistry,
    history: AliasHistory,
    fresh_builds: dict[str, Path],
    tmp_path: Path,
) -> None:
    policies = tmp_path / "policies"  # a policy folder with nothing calibrated for either
    policies.mkdir()
    (policies / "v1.toml").write_text('version = "v1"\n[categories.spam]\nremove = 0.9\n')
    for folder in (fresh_builds["built"], fresh_builds["variant"]):
        register_model_folder(folder, name=NAME, registry=model_registry, check_loads=False)

    move = promote(model_registry, history, NAME, "1", policies_dir=policies, reason="first")
    assert (move.to_version, move.reason) == ("1", "first")  # not recorded as forced

    digest = ModelManifest.read(fresh_builds["built"]).version
    with pytest.raises(
        PromotionError, match=rf"policy.toml: policy v\S+ was calibrated for .*{digest}"
    ):
        promote(model_registry, history, NAME, "2", policies_dir=policies)
    assert model_registry.aliases(NAME) == {"production": "1"}
