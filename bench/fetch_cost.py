"""What one fetch of a huge item costs Redis: the CPU time of its main thread (``INFO cpu``,
load-independent unlike the SLOWLOG's wall time) for ``fetch.lua`` on one item, beside the
``LPUSH`` that wrote it. ``--script`` measures another version of the script (e.g. the one
before issue 20: ``git show 757d78f:modq/broker/fetch.lua > /tmp/old_fetch.lua``; that one
takes the parked list where this one takes the fetch counter, and two arguments).

    python -m bench.fetch_cost --bytes 30000000 --runs 5 [--script /tmp/old_fetch.lua]
"""

from __future__ import annotations

import argparse
import base64
import json
import time
import uuid
from pathlib import Path

from redis import Redis

from cli.services import private_redis
from modq.broker.transport import FETCH, FETCH_COUNTER_KEY, HEAD_BYTES, PARKED_KEY


def envelope(size: int) -> bytes:
    """A kombu message of about ``size`` bytes (a base64 body, as kombu's Redis transport)."""
    body = [[], {"content_id": "huge", "content": "x" * (size * 3 // 4)}, {}]
    return json.dumps(
        {
            "body": base64.b64encode(json.dumps(body).encode()).decode(),
            "content-encoding": "utf-8",
            "content-type": "application/json",
            "headers": {"id": "huge-1", "task": "modq.moderate"},
            "properties": {
                "delivery_tag": uuid.uuid4().hex,
                "correlation_id": "huge-1",
                "body_encoding": "base64",
                "delivery_info": {"exchange": "", "routing_key": "normal"},
            },
        }
    ).encode()


def cpu_ms(client: Redis) -> float:
    info = client.info("cpu")
    return 1000 * (info["used_cpu_user_main_thread"] + info["used_cpu_sys_main_thread"])


def measure(size: int, runs: int, script: Path | None, limit: int) -> dict[str, object]:
    item = envelope(size)
    source = script.read_text() if script else FETCH.source
    current = script is None
    keys = ["unacked", "unacked_index", FETCH_COUNTER_KEY if current else PARKED_KEY, "normal"]
    args: list[str | int] = ["1", limit, HEAD_BYTES] if current else ["1"]
    push, fetch = [], []
    with private_redis() as url:
        client = Redis.from_url(url)
        sha = client.script_load(source)
        for _ in range(runs):
            client.delete(*keys)
            before = cpu_ms(client)
            client.lpush("normal", item)
            pushed = cpu_ms(client)
            reply = client.evalsha(sha, len(keys), *keys, time.time(), *args)
            fetch.append(round(cpu_ms(client) - pushed))
            push.append(round(pushed - before))
    returned = sum(len(part) for part in reply if isinstance(part, bytes))
    return {
        "item_bytes": len(item),
        "script": str(script or "modq/broker/fetch.lua"),
        "fetch_cpu_ms": sorted(fetch),
        "lpush_cpu_ms": sorted(push),
        "reply_bytes": returned,
    }


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.fetch_cost", description=__doc__)
    parser.add_argument("--bytes", type=int, default=30_000_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--script", type=Path, help="another fetch script (default: modq's)")
    parser.add_argument("--limit", type=int, default=16_777_216, help="MODQ_MAX_MESSAGE_BYTES")
    arguments = parser.parse_args()
    print(json.dumps(measure(arguments.bytes, arguments.runs, arguments.script, arguments.limit)))


if __name__ == "__main__":
    main()
