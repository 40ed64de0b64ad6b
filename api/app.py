"""``create_app(settings)``: the FastAPI app of the HTTP front, with everything it holds on
``app.state`` (one object per concern, made at start, closed at stop)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from celery import Celery
from fastapi import FastAPI

import modq
from api.auth import KeyAuthenticator
from api.bodylimit import BodyLimitMiddleware
from api.content_type import JsonOnlyMiddleware
from api.fairness import KeySlots
from api.idempotency import Replays
from api.jobs import JobStore
from api.metrics import ApiMetrics, MetricsMiddleware
from api.models import TIMEOUT_S_MAX
from api.openai_compat import router as openai_router
from api.problems import install_problem_handlers, problem_responses
from api.producer import ApiProducer
from api.ratelimit import RateLimiter
from api.readiness import ReadinessProbe
from api.results import ResultWaiter
from api.routes_health import router as health_router
from api.routes_jobs import router as jobs_router
from api.routes_native import router as native_router
from db.api_keys import ApiKeyRepository
from db.session import make_engine
from modq.settings import Settings, get_settings

DESCRIPTION = """modq's moderation API. Every route but /healthz, /readyz and /metrics needs
`Authorization: Bearer <key>` (`modq api-key create`). Errors are RFC 9457 problem details
(`application/problem+json`) with a stable `code`."""


def _client_app(settings: Settings) -> Celery:
    """The client's Celery app, pointed at ``settings``' broker and result store."""
    app = modq.app
    broker = settings.effective_broker_url
    backend = settings.effective_result_backend_url
    if app.conf.broker_url != broker or app.conf.result_backend != backend:
        app = modq.configure(broker_url=broker, result_backend=backend)
    return app


def create_app(settings: Settings | None = None) -> FastAPI:
    """The API app for ``settings`` (default: the environment's ``MODQ_*``)."""
    settings = settings or get_settings()
    metrics = ApiMetrics()
    slots = KeySlots.for_settings(settings, registry=metrics.registry)  # api.fairness

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        celery_app = _client_app(settings)
        engine = make_engine(settings.database_url)
        results_url = settings.effective_result_backend_url
        waiter = ResultWaiter(celery_app.backend, results_url)
        jobs = JobStore(results_url, ttl_s=settings.result_expires_s)
        readiness = ReadinessProbe(
            celery_app,
            settings.effective_broker_url,
            engine,
            cache_s=settings.api_readiness_cache_s,
            heartbeat_url=results_url,
        )
        limiter = RateLimiter(
            settings.redis_url,
            per_min=settings.rate_limit_per_min,
            burst=settings.rate_limit_burst,
        )
        app.state.key_authenticator = KeyAuthenticator(
            ApiKeyRepository(engine), cache_s=settings.api_key_cache_s
        )
        app.state.rate_limiter = limiter
        app.state.readiness = readiness
        app.state.producer = ApiProducer(settings, waiter, jobs, readiness, slots)
        replays = app.state.replays = Replays(
            results_url, answer_ttl_s=settings.result_expires_s, work_deadline_s=TIMEOUT_S_MAX
        )
        try:
            yield
        finally:
            await replays.aclose()
            await waiter.aclose()
            await jobs.aclose()
            await limiter.aclose()
            readiness.close()
            engine.dispose()

    app = FastAPI(
        title="modq",
        summary="Content moderation over HTTP: OpenAI-compatible and native.",
        description=DESCRIPTION,
        version="1",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    install_problem_handlers(app)
    app.include_router(openai_router)
    app.include_router(native_router)
    app.include_router(jobs_router)
    app.include_router(health_router)
    app.add_middleware(JsonOnlyMiddleware)  # 415 at the route's first read of its body
    app.add_middleware(
        BodyLimitMiddleware,
        max_bytes=settings.api_max_body_bytes,
        timeout_s=settings.api_body_timeout_s,
    )
    app.add_middleware(MetricsMiddleware, metrics=metrics)  # outermost: counts the 413s too
    _document_bearer_auth(app)
    return app


PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics"})


def _document_bearer_auth(app: FastAPI) -> None:
    """OpenAPI says what every route but the public ones needs: a bearer API key."""
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
            schemes["apiKey"] = {"type": "http", "scheme": "bearer", "description": DESCRIPTION}
            for path, operations in schema["paths"].items():
                for operation in operations.values():
                    if path not in PUBLIC_PATHS:
                        operation["security"] = [{"apiKey": []}]
                    if "requestBody" in operation:  # api.content_type, api.bodylimit
                        responses = operation.setdefault("responses", {})
                        for status, entry in problem_responses(408, 413, 415).items():
                            responses.setdefault(str(status), _openapi_entry(entry))
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _openapi_entry(entry: dict[str, Any]) -> dict[str, Any]:
    """A ``problem_responses`` entry as it reads in the OpenAPI document."""
    return {"description": entry["description"], "content": entry["content"]}


def app_from_environment() -> FastAPI:
    """uvicorn's factory (``modq api``): the app for the environment's settings."""
    return create_app()
