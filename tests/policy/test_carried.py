"""Which policy a model is served under, and when that policy does not fit the model."""

from pathlib import Path

import pytest

from modq.errors import PolicyError
from policy import load_policy
from policy.carried import (
    CARRIED_POLICY_FILE,
    FROM_DEFAULT,
    FROM_MODEL_FOLDER,
    FROM_SETTING,
    calibration_mismatch,
    carried_policy_version,
    policy_for_model,
)

PACKAGED_V2 = Path(__file__).resolve().parents[2] / "policy" / "policies" / "v2.toml"


def calibrated_for(digest: str, version: str = "v9") -> str:
    return (
        f'version = "{version}"\n[calibration]\nmodel_name = "m"\nmodel_version = "{digest}"\n'
        "flag_precision_target = 0.8\nremove_precision_target = 0.95\n"
        "[categories.spam]\nflag = 0.3\nremove = 0.9\n"
    )


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    model = tmp_path / "model"
    model.mkdir()
    (model / CARRIED_POLICY_FILE).write_text(calibrated_for("aaaaaaaaaaaa", "v2+aaaaaaaaaaaa"))
    return model


def test_a_model_is_served_under_the_policy_its_folder_carries(folder: Path) -> None:
    served = policy_for_model(folder, "aaaaaaaaaaaa", configured=None, default=PACKAGED_V2)
    assert served.source == FROM_MODEL_FOLDER
    assert served.policy.version == "v2+aaaaaaaaaaaa"
    assert served.mismatch is None
    assert served.describe()["policy_calibrated_for"] == "aaaaaaaaaaaa"


def test_modq_policy_path_wins_and_a_policy_for_another_version_is_a_mismatch(
    folder: Path, tmp_path: Path
) -> None:
    configured = tmp_path / "v9.toml"
    configured.write_text(calibrated_for("bbbbbbbbbbbb"))
    served = policy_for_model(folder, "aaaaaaaaaaaa", configured=configured, default=PACKAGED_V2)
    assert served.source == FROM_SETTING and served.policy.version == "v9"
    assert served.mismatch is not None
    assert "calibrated for m bbbbbbbbbbbb, not for the served model aaaaaaaaaaaa" in (
        served.mismatch
    )
    assert served.describe()["policy_mismatch"] == served.mismatch


def test_a_folder_without_a_policy_gets_the_default_checked_against_it(tmp_path: Path) -> None:
    served = policy_for_model(tmp_path, "cccccccccccc", configured=None, default=PACKAGED_V2)
    assert served.source == FROM_DEFAULT and served.policy.version == "v2"
    # the packaged v2 names the model it was calibrated for: any other is a mismatch
    assert served.mismatch is not None and "v2 was calibrated for" in served.mismatch


def test_a_policy_that_names_no_model_is_no_mismatch(tmp_path: Path) -> None:
    hand_set = tmp_path / "v1.toml"
    hand_set.write_text('version = "v1"\n[categories.spam]\nremove = 0.9\n')
    assert calibration_mismatch(load_policy(hand_set), "dddddddddddd") is None


def test_an_unreadable_carried_policy_is_a_typed_error(folder: Path) -> None:
    (folder / CARRIED_POLICY_FILE).write_text("version = ")
    with pytest.raises(PolicyError, match="not valid TOML"):
        policy_for_model(folder, "aaaaaaaaaaaa", configured=None, default=PACKAGED_V2)


def test_a_carried_version_names_its_base_and_the_digest() -> None:
    assert carried_policy_version("v2", "8a39c68812c5") == "v2+8a39c68812c5"
    assert carried_policy_version("v2+23952a214977", "8a39c68812c5") == "v2+8a39c68812c5"
