"""`modq api`: the HTTP front (FastAPI) under uvicorn."""

from __future__ import annotations

import click

H11_MAX_HEADER_BYTES = 16_384  # a header still incomplete after this many bytes: 400
KEEP_ALIVE_S = 5  # an idle kept-alive connection is closed after this long


@click.command("api")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=int, help="Port to bind.")
@click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="uvicorn worker processes (each waits on results for many requests at once).",
)
@click.option("--log-level", default="warning", show_default=True)
def api(host: str, port: int, workers: int, log_level: str) -> None:
    """Serve the moderation API: POST /v1/moderations (OpenAI-compatible), /v1/moderate,
    /v1/jobs, /v1/moderate/batch, /v1/reviews; /healthz, /readyz, /metrics. It enqueues on
    the workers' queues and loads no model. Keys: `modq api-key create`."""
    import uvicorn

    uvicorn.run(
        "api.app:app_from_environment",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level=log_level,
        proxy_headers=False,
        # h11 with a bound on the header's time (MODQ_API_HEADER_TIMEOUT_S) and size, and
        # problem+json for what it cannot parse; the body's bound is api.bodylimit
        http="api.http_protocol:TimedH11Protocol",
        h11_max_incomplete_event_size=H11_MAX_HEADER_BYTES,
        timeout_keep_alive=KEEP_ALIVE_S,
    )
