"""``/healthz`` (the process answers), ``/readyz`` (it can serve) and ``/metrics``; none needs
an API key: probes and Prometheus scrapers carry none, and none of them shows content. Each
answers HEAD too (the same status and headers, no body), as load balancers probe with it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel

from api.problems import problem, problem_responses

router = APIRouter(tags=["operations"])
TEXT_FORMAT = CONTENT_TYPE_LATEST.split(";")[0]


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    status: str
    checks: dict[str, str]
    workers_ready: int


@router.head("/healthz", include_in_schema=False)
@router.get("/healthz", response_model=Health)
async def healthz() -> Health:
    """200 while the process serves HTTP (a liveness probe: it checks nothing else)."""
    return Health(status="ok")


@router.head("/readyz", include_in_schema=False)
@router.get("/readyz", response_model=Ready, responses=problem_responses(503))
async def readyz(request: Request) -> Any:
    """200 when the broker and the database answer and at least one worker has a model
    loaded; else 503 (with Retry-After) naming each failed check. Cached for
    ``MODQ_API_READINESS_CACHE_S``."""
    readiness = await request.app.state.readiness.current()
    if readiness.ok:
        return Ready(**readiness.to_dict())
    failed = ", ".join(f"{k}: {v}" for k, v in readiness.checks.items() if v != "ok")
    return problem(
        503,
        "not_ready",
        f"not ready ({failed})",
        instance=request.url.path,
        headers={"Retry-After": str(request.app.state.settings.api_retry_after_s)},
        checks=readiness.checks,
        workers_ready=readiness.workers_ready,
    )


@router.head("/metrics", include_in_schema=False)
@router.get(
    "/metrics",
    response_class=Response,
    responses={
        200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {"schema": {"type": "string"}}}}
    },
)
async def metrics(request: Request) -> Response:
    """Prometheus text format: requests by route and status, latency by route."""
    body = generate_latest(request.app.state.metrics.registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
