import dataclasses

from gpu_worker.runtime import EngineConfig, current_engine, get_engine, shutdown_engine


def test_one_engine_per_process_rebuilt_only_when_the_config_changes(model_dir):
    shutdown_engine()
    assert current_engine() is None  # nothing loads until asked
    config = EngineConfig(model_dir=model_dir, max_batch_size=8)
    first = get_engine(config)
    assert get_engine(EngineConfig(model_dir=model_dir, max_batch_size=8)) is first
    pending = first.batcher.submit(["a text submitted just before the swap"])

    second = get_engine(dataclasses.replace(config, max_batch_size=16))
    assert second is not first and second.batcher.max_batch_size == 16
    assert current_engine() is second
    assert pending.result(timeout=10).shape[0] == 1  # the old batcher drained, nothing lost
    assert second.batcher.submit(["after the swap"]).result(timeout=10).shape[0] == 1
    shutdown_engine()
    assert current_engine() is None
