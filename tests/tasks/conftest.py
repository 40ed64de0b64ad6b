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


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    """A tiny random BERT imported as a modq model: a worker serves it in about a millisecond
    a batch, for tests about queues and delivery rather than scores."""
    from tests.tiny_models import save_tiny_bert
    from training.byo import import_hf_checkpoint

    root = tmp_path_factory.mktemp("tiny-model")
    return import_hf_checkpoint(
        save_tiny_bert(root / "checkpoint"),
        name="tiny",
        label_map={"toxic": "harassment", "spam_like": "spam"},
        ignore=["neutral"],
        models_root=root / "models",
    )
