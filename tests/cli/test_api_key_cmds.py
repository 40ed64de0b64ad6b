"""`modq api-key create|list|revoke`, run as a subprocess the way operators type it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import migrations
from db.api_keys import ApiKeyRepository, hash_key
from db.session import make_engine

MODQ = [sys.executable, "-m", "cli.main"]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def database(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    migrations.upgrade(url)
    return url


def modq(database: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MODQ_DATABASE_URL": database}
    return subprocess.run(
        [*MODQ, "api-key", *args], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )


def test_create_prints_the_key_once_and_list_never_shows_it(database):
    created = modq(database, "create", "--name", "mobile", "--priorities", "urgent,normal")
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("modq_") and "\n" not in key  # stdout is the key alone: pipeable
    assert "cannot be shown again" in created.stderr
    found = ApiKeyRepository(make_engine(database)).lookup(key, touch=False)
    assert found is not None and found.priorities == {"urgent", "normal"} and not found.may_review

    reviewer = modq(
        database,
        "create",
        "--name",
        "moderators",
        "--priorities",
        "bulk",
        "--reviews",
        "--rate-per-min",
        "30",
    )
    assert reviewer.returncode == 0, reviewer.stderr

    listed = modq(database, "list")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert len(lines) == 3 and lines[0].startswith("ID")
    assert found.key_id in lines[1] and "urgent,normal" in lines[1] and "active" in lines[1]
    assert "default" in lines[1]  # no rate of its own
    assert "bulk,reviews" in lines[2] and " 30 " in lines[2]
    for secret in (key, reviewer.stdout.strip(), hash_key(key)):
        assert secret not in listed.stdout and secret not in listed.stderr


def test_revoke_marks_the_key_revoked(database):
    key = modq(database, "create", "--name", "old").stdout.strip()
    key_id = key.split("_")[1]
    revoked = modq(database, "revoke", key_id)
    assert revoked.returncode == 0 and f"revoked {key_id}" in revoked.stdout
    found = ApiKeyRepository(make_engine(database)).lookup(key, touch=False)
    assert found is not None and not found.active
    assert "revoked" in modq(database, "list").stdout.splitlines()[1]
    again = modq(database, "revoke", key_id)
    assert again.returncode == 1 and "no active API key" in again.stderr


def test_bad_scopes_fail_with_a_message_not_a_traceback(database):
    result = modq(database, "create", "--name", "x", "--priorities", "asap")
    assert result.returncode == 1
    assert "invalid_content: unknown priorities ['asap']" in result.stderr
    assert "Traceback" not in result.stderr
    assert modq(database, "list").stdout.splitlines()[1:] == []
