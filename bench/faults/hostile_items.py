"""Fault scenario: raw items that used to stop every worker (issue 20), one row per family.

Each family is made from a real message of modq's producer and pushed raw onto ``normal``
with a ring on its doorbell (a raw writer who knows modq's keys), beside good jobs, against one
worker: ``bench.faults.poison.run_shapes`` counts what happened to both.

- **deep items**: an item nested 5,000 deep (``[[[…]]]``); a valid envelope whose body nests
  5,000 deep; one whose headers nest 985 deep. ``RecursionError`` escaped the transport and
  the dead-letter path, and ended the worker (and every restart).
- **Lua-only items**: envelopes with a bare 0x10 byte, and with ``nan``, which Redis's cjson
  read and Python refuses: parked, but left in ``unacked`` for good (the sweep then failed
  every 10 s, and a worker started past the visibility timeout exited 1).
- **huge item**: a 30 MB envelope (``MODQ_MAX_MESSAGE_BYTES`` 1 MiB for the row's worker),
  which ``fetch.lua`` decoded inside Redis (2.2 s of a blocked server); now refused undecoded.
  ``slowest fetch`` in the row's notes is the longest fetch script in Redis's SLOWLOG.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.faults import FaultRow
from bench.faults.poison import EMBED, MARKER, Shapes, identified, run_shapes

DEPTH = 5_000
HEADER_DEPTH = 985
HUGE_BYTES = 30_000_000
HUGE_LIMIT_BYTES = 1_048_576


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _with_raw(template: dict[str, Any], place: str, value: bytes) -> tuple[str, bytes]:
    """A message of its own with ``value`` (raw bytes) as its header ``place``."""
    task_id, message = identified(template)
    message["headers"][place] = "HOSTILE-VALUE"
    return task_id, json.dumps(message).encode().replace(b'"HOSTILE-VALUE"', value)


def deep_shapes(template: dict[str, Any]) -> Shapes:
    task_id, message = identified(template)
    message["body"] = base64.b64encode(nested(DEPTH)).decode()
    return {
        "an item nested 5,000 deep": (None, nested(DEPTH)),
        "a body nested 5,000 deep": (task_id, json.dumps(message).encode()),
        "headers nested 985 deep": _with_raw(template, "deep", nested(HEADER_DEPTH)),
    }


def lua_only_shapes(template: dict[str, Any]) -> Shapes:
    return {
        "a bare 0x10": _with_raw(template, "note", b'"a\x10b"'),
        "nan": _with_raw(template, "score", b"nan"),
    }


def huge_item(template: dict[str, Any], size: int) -> tuple[str, bytes]:
    """A valid message of about ``size`` bytes (its content is most of it)."""
    task_id, message = identified(template)
    content = MARKER + "x" * (size * 3 // 4)  # base64 makes the item ``size`` bytes
    kwargs = {"content_id": "huge", "content": content}
    message["body"] = base64.b64encode(json.dumps([[], kwargs, EMBED]).encode()).decode()
    return task_id, json.dumps(message).encode()


def huge_shapes(template: dict[str, Any]) -> Shapes:
    return {"a 30 MB item": huge_item(template, HUGE_BYTES)}


FAMILIES: dict[str, tuple[Callable[[dict[str, Any]], Shapes], dict[str, str]]] = {
    "deep items": (deep_shapes, {}),
    "Lua-only items": (lua_only_shapes, {}),
    "huge item": (huge_shapes, {"MODQ_MAX_MESSAGE_BYTES": str(HUGE_LIMIT_BYTES)}),
}


def run(workdir: Path, *, quick: bool) -> list[FaultRow]:
    """One row per family: each item once beside 3 good jobs (quick), or 3 rounds beside 20."""
    rounds, good_per_shape = (1, 3) if quick else (3, 20)
    rows = []
    for index, (name, (shapes, env)) in enumerate(FAMILIES.items()):
        folder = workdir / str(index)
        folder.mkdir()
        rows.append(
            run_shapes(
                folder,
                name=name,
                shapes=shapes,
                rounds=rounds,
                good_per_shape=good_per_shape,
                env=env,
                ring=True,
            )
        )
    return rows


if __name__ == "__main__":
    import argparse
    import tempfile

    parser = argparse.ArgumentParser(prog="python -m bench.faults.hostile_items")
    parser.add_argument("--quick", action="store_true")
    arguments = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="modq-fault-hostile-") as folder:
        rows = run(Path(folder), quick=arguments.quick)
        print(json.dumps([row.as_dict() for row in rows]))
