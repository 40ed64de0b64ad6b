import pytest

import migrations
from tests.workers import flush_private_redis


@pytest.fixture
def database(tmp_path):
    """A migrated SQLite file for one worker test, on an empty private broker."""
    url = f"sqlite:///{tmp_path / 'results.db'}"
    migrations.upgrade(url)
    flush_private_redis()
    yield url
    flush_private_redis()
