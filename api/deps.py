"""The dependencies every authenticated route shares: the caller (API key, then its rate)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.auth import Principal, authenticate
from api.producer import ApiProducer


async def caller(
    request: Request, principal: Annotated[Principal, Depends(authenticate)]
) -> Principal:
    """The authenticated caller, charged one request against its key's own rate (the key's
    ``--rate-per-min``, else the server's; 429 past it)."""
    await request.app.state.rate_limiter.admit(principal)
    return principal


def producer(request: Request) -> ApiProducer:
    producer: ApiProducer = request.app.state.producer
    return producer


Caller = Annotated[Principal, Depends(caller)]
Producer = Annotated[ApiProducer, Depends(producer)]
