"""`modq metrics serve`: the queues' Prometheus metrics over HTTP."""

from __future__ import annotations

import signal
import threading
from typing import Any

import click


@click.group()
def metrics() -> None:
    """Prometheus metrics of the priority queues."""


@metrics.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=9808, show_default=True, type=int, help="Port (0 = any free).")
def serve_cmd(host: str, port: int) -> None:
    """Serve /metrics (queue depth, oldest age, wait histogram, refusals), read from the
    broker's Redis at each scrape. Read-only; bind to a non-loopback --host to let a
    Prometheus on another machine scrape it."""
    from modq.broker.queues import queue_reader
    from modq.errors import ModerationError
    from modq.settings import get_settings
    from tasks.app import app
    from tasks.queue_metrics import make_registry, serve

    try:
        queues = queue_reader(app)
    except ModerationError as exc:
        raise click.ClickException(exc.message) from exc
    server, _ = serve(host, port, make_registry(queues, get_settings()))
    click.echo(f"serving http://{host}:{server.server_port}/metrics", err=True)
    stop = threading.Event()

    def _stop(*_: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    stop.wait()
    server.shutdown()
    server.server_close()
