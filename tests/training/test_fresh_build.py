"""A fresh build, as `make model` runs it, then README's "Shipping a model" on what it built:
`modq model register models/current`, `modq model promote modq-text 1 --reason "first release"`,
with the packaged policies (none of which was calibrated for this build)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import migrations
from gpu_worker.manifest import ModelManifest
from modq.settings import get_settings
from policy import load_policy
from policy.carried import CARRIED_POLICY_FILE
from tests.cli.runner import modq

# a whole build: 5-6 min on 2 idle cores, far longer on shared ones (pytest's 300 s is too short)
pytestmark = [pytest.mark.slow, pytest.mark.long, pytest.mark.timeout(3600)]


@pytest.fixture
def shipping_env(
    registry_settings: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[None]:
    """A private registry and a migrated SQLite file (alias history), for this test only."""
    database_url = f"sqlite:///{tmp_path / 'modq.db'}"
    migrations.upgrade(database_url)
    for key, value in {**registry_settings, "MODQ_DATABASE_URL": database_url}.items():
        monkeypatch.setenv(key, value)
    monkeypatch.delenv("MODQ_POLICY_PATH", raising=False)  # the packaged policies
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_a_fresh_build_carries_its_policy_and_ships_as_the_readme_says(
    shipping_env: None, tmp_path: Path
) -> None:
    root = tmp_path / "models"
    code, out = modq("model", "build", "--models-dir", str(root), "--no-register")
    assert code == 0, out
    assert "model card:" in out and "## " not in out  # a summary; the card stays in its file
    current = (root / "current").resolve()
    digest = ModelManifest.read(current).version
    built = {path.parent for path in root.glob("*/*/manifest.json")}  # fp32 and its int8 copy
    assert current in built and len(built) == 2
    for folder in built:
        policy = load_policy(folder / CARRIED_POLICY_FILE)
        assert policy.calibration is not None
        assert policy.calibration.model_version == ModelManifest.read(folder).version
    assert ModelManifest.read(current).extra["build_environment"]["torch_cpu_capability"]

    code, out = modq("model", "register", str(root / "current"))
    assert code == 0 and out == f"modq-text v1 (digest {digest})\n"
    code, out = modq("model", "promote", "modq-text", "1", "--reason", "first release")
    assert code == 0 and "v- → v1" in out, out
