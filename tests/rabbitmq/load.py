"""Driving load at modq on RabbitMQ for the fault tests: paced producers that count what
callers saw."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from typing import Any

from modq import moderate


@dataclass
class Load:
    """Jobs sent by one producer thread, ``pause_s`` apart; ``errors`` are what callers saw."""

    prefix: str
    jobs: int
    pause_s: float = 0.01
    accepted: list[tuple[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    done: threading.Event = field(default_factory=threading.Event)

    def start(self) -> threading.Thread:
        thread = threading.Thread(target=self._send, daemon=True)
        thread.start()
        return thread

    def _send(self) -> None:
        try:
            for i in range(self.jobs):
                content_id = f"{self.prefix}-{i}"
                try:
                    job = moderate.delay(
                        content_id=content_id, content=f"text {i}", priority="normal"
                    )
                except Exception as exc:  # counted: a caller error
                    self.errors.append(f"{type(exc).__name__}: {exc}"[:200])
                else:
                    self.accepted.append((content_id, job))
                time.sleep(self.pause_s)
        finally:
            self.done.set()
