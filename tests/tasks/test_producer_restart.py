"""docs/redis.md's promise to producers: a Redis restart shorter than ``MODQ_PUBLISH_RETRY_S``
is invisible to them. A real producer process (modq's client) sends jobs in a loop while its
real redis-server (AOF) is killed and started again on the same port 2 s later. Before, the
queue-bound check that precedes each publish raised ``BrokerUnavailable`` at once while Redis
was down (59 of them in a 3 s restart); now it retries through the same window as the publish.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from cli.services import RedisServer
from tests.polling import wait_until

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
DOWN_S = 2.0  # the restart: well inside MODQ_PUBLISH_RETRY_S (5 s)

PRODUCER = textwrap.dedent(
    """
    import json, sys, time
    from modq.client import moderate
    from modq.errors import BrokerUnavailable
    sent, refused, announced, stop_file = 0, [], False, sys.argv[1]
    import os
    while not os.path.exists(stop_file):
        try:
            moderate.delay(content_id=f"restart-{sent}", content="an ordinary comment")
            sent += 1
        except BrokerUnavailable as exc:
            refused.append(str(exc)[:200])
        if sent >= 20 and not announced:
            print("sending", flush=True)
            announced = True
        time.sleep(0.02)
    print(json.dumps({"sent": sent, "refused": refused}), flush=True)
    """
)


def test_a_restart_shorter_than_the_publish_retry_window_is_invisible_to_producers(
    tmp_path: Path,
) -> None:
    server = RedisServer(persistence="aof", folder=tmp_path / "redis")
    server.folder.mkdir()
    url = server.start()
    stop_file = tmp_path / "stop"
    env = {k: v for k, v in os.environ.items() if not k.startswith("MODQ_")}
    env.update(MODQ_REDIS_URL=url, MODQ_PUBLISH_RETRY_S="5")
    producer = subprocess.Popen(
        [sys.executable, "-c", PRODUCER, str(stop_file)],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert producer.stdout is not None
        assert producer.stdout.readline().strip() == "sending"  # it sends: now restart
        server.kill()  # a crash: no goodbye to the producer's connections
        time.sleep(DOWN_S)  # the outage itself (what is under test is what the producer saw)
        server.start()
        sent_before = _count(server)
        wait_until(  # it sends again after the restart
            lambda: producer.poll() is None and _count(server) >= sent_before + 20,
            timeout_s=60,
            message="the producer did not send again",
        )
        stop_file.touch()
        report = json.loads(producer.stdout.readline())
        producer.wait(30)
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.wait(10)
        if producer.stdout is not None:
            producer.stdout.close()
        server.stop()
    assert report["refused"] == []
    assert report["sent"] >= 40


def _count(server: RedisServer) -> int:
    from redis import Redis

    client = Redis.from_url(server.url)
    return sum(int(client.llen(key)) for key in client.scan_iter("normal*"))
