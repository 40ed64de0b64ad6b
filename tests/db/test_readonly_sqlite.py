"""A read-only SQLite database: typed ``StorageUnavailable`` with a log line, never a crash.

The database's folder is made read-only with a read-only bind mount in a mount namespace of
its own (``unshare -m``): ``chmod 444`` does not stop root, which these tests may run as. The
tests are skipped where unprivileged namespaces or mounts are not allowed.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

import migrations
from cli.services import stop_worker, wait_for_worker, worker_command
from tests.polling import wait_until
from tests.workers import flush_private_redis

REPO = Path(__file__).resolve().parents[2]


def _can_mount_read_only() -> bool:
    probe = "mount --bind /tmp /tmp && mount -o remount,ro,bind /tmp"
    try:
        done = subprocess.run(["unshare", "-m", "sh", "-c", probe], capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


pytestmark = pytest.mark.skipif(
    not _can_mount_read_only(), reason="needs unshare -m and a bind mount (root or userns)"
)


def _read_only(folder: Path, command: list[str]) -> list[str]:
    """``command`` run with ``folder`` read-only (a bind mount in a namespace of its own)."""
    quoted = shlex.quote(str(folder))
    mount = f"mount --bind {quoted} {quoted} && mount -o remount,ro,bind {quoted}"
    return ["unshare", "-m", "sh", "-c", f'{mount} && exec "$@"', "sh", *command]


def _database(tmp_path: Path) -> tuple[Path, str]:
    folder = tmp_path / "db"
    folder.mkdir()
    url = f"sqlite:///{folder / 'modq.db'}"
    migrations.upgrade(url)
    return folder, url


def test_writes_to_a_read_only_sqlite_are_typed_and_logged(tmp_path: Path) -> None:
    folder, url = _database(tmp_path)
    script = textwrap.dedent(
        f"""
        import logging, sys
        logging.basicConfig(level=logging.INFO, stream=sys.stdout, format="%(message)s")
        from db.results import ResultRepository
        from db.session import make_engine
        from modq.errors import StorageUnavailable
        from tasks.storage_breaker import ConsumerPause, StorageBreaker
        from tests.factories import make_result
        engine = make_engine({url!r})
        try:
            ResultRepository(engine).store(make_result("ro-1"))
        except StorageUnavailable as exc:
            print("TYPED", type(exc).__name__, exc)
        breaker = StorageBreaker(engine, failure_threshold=1, probe_s=1, pause=ConsumerPause())
        try:
            breaker.probe()
        except Exception as exc:
            print("PROBE FAILS", type(exc).__name__)
        """
    )
    done = subprocess.run(
        _read_only(folder, [sys.executable, "-c", script]),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    out = done.stdout
    assert "is read-only for this process" in out  # at start, from make_engine
    assert "TYPED StorageUnavailable" in out and "read-only" in out.split("TYPED", 1)[1]
    assert "the database is read-only" in out  # the log line of the failed write
    assert "PROBE FAILS" in out  # so the breaker stays open instead of flapping


@pytest.mark.integration
@pytest.mark.slow
def test_a_worker_on_a_read_only_sqlite_keeps_running_and_retries(
    model_dir: Path, tmp_path: Path
) -> None:
    import os

    from tasks import moderate

    flush_private_redis()
    folder, url = _database(tmp_path)
    hostname = f"test-ro-{uuid.uuid4().hex[:8]}@localhost"
    log = tmp_path / "worker.log"
    env = {
        **os.environ,
        "MODQ_DATABASE_URL": url,
        "MODQ_STORAGE_BREAKER_FAILURES": "2",
        "PYTHONUNBUFFERED": "1",
    }
    command = worker_command(2, hostname=hostname, loglevel="info")
    with open(log, "ab") as output:
        process = subprocess.Popen(
            _read_only(folder, command),
            cwd=REPO,
            env=env,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        wait_for_worker(process, hostname=hostname, require_model=True, timeout_s=120)
        jobs = [moderate.delay(content_id=f"ro-{i}", content=str(i)) for i in range(3)]
        wait_until(
            lambda: "database breaker open" in log.read_text(),
            timeout_s=60,
            message="the breaker never opened",
        )
        assert process.poll() is None, log.read_text()[-3000:]  # no SIGBUS, no exit
        text = log.read_text()
        assert "read-only" in text
        assert all(job.state in ("PENDING", "RETRY") for job in jobs)  # kept, never lost
    finally:
        stop_worker(process)
        flush_private_redis()
    assert process.returncode is not None and process.returncode >= 0  # not killed by a signal
