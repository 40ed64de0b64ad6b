"""The `modq` command as people type it, against a migrated database and a private registry."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import migrations
from modq.settings import get_settings


@pytest.fixture
def cli_env(
    registry_settings: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[dict[str, str]]:
    """MODQ_* of a migrated SQLite file and a private registry, set for this test only."""
    database_url = f"sqlite:///{tmp_path / 'modq.db'}"
    migrations.upgrade(database_url)
    env = {**registry_settings, "MODQ_DATABASE_URL": database_url, "MODQ_ACTOR": "tester"}
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()
