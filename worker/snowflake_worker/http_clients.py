"""HTTP clients for the service: several small connection pools instead of one big one.

httpcore's pool rescans every connection for every queued request, so its cost per
request grows with the pool size; with 32 connections in one pool the client spent
about 6.5 ms of CPU per request, with pools of 4 about 1.6 ms (measured with the local
mTLS service, see benchmarks/). Every pool keeps its connections alive and reuses them.
"""

from __future__ import annotations

import math
import ssl
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import httpx

CONNECTIONS_PER_POOL = 4


@asynccontextmanager
async def service_clients(
    concurrency: int, ssl_context: ssl.SSLContext, timeout_seconds: float
) -> AsyncIterator[list[httpx.AsyncClient]]:
    pools = math.ceil(concurrency / CONNECTIONS_PER_POOL)
    size = math.ceil(concurrency / pools)
    limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(verify=ssl_context, limits=limits, timeout=timeout_seconds)
            )
            for _ in range(pools)
        ]
        yield clients
