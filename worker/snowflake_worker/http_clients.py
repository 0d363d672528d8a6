"""The HTTP client for the service: httpx's interface on aiohttp's connection pool.

httpx stays the client every call goes through (service_call.py); its transport is
httpx-aiohttp's, which hands each request to an aiohttp connection pool and parser. With
the local mTLS service, 32 calls in flight and 50 ms latency, httpx's own transport
(httpcore) cost 3.7-4.1 ms of client CPU per call in one pool of 32 (httpcore rescans
every connection for every queued request) and 0.94 ms in pools of 4; on aiohttp's pool
it costs 0.50-0.56 ms in one pool (``benchmarks/http_transports.py``, run by ``make
bench``).
"""

from __future__ import annotations

import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import httpx
from httpx_aiohttp import AiohttpTransport


def httpx_error(exc: aiohttp.ClientError) -> httpx.TransportError:
    """The httpx error for an aiohttp one, by when it happened. httpx-aiohttp's own map
    makes a connection the server dropped after the handshake a ConnectTimeout; but that
    is how a TLS 1.3 server refuses a client certificate (preflight.py tells the two
    apart), so a broken connection is a ReadError here and only a failed connect a
    ConnectError."""
    text = f"{type(exc).__name__}: {exc}"
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return httpx.ConnectTimeout(text)
    if isinstance(exc, aiohttp.ClientConnectorError):  # refused, DNS, TLS handshake
        return httpx.ConnectError(text)
    if isinstance(exc, aiohttp.ServerTimeoutError):
        return httpx.ReadTimeout(text)
    if isinstance(exc, aiohttp.ClientConnectionError | aiohttp.ClientPayloadError):
        return httpx.ReadError(text)
    return httpx.TransportError(text)


def _aiohttp_cause(exc: BaseException) -> aiohttp.ClientError | None:
    """The aiohttp error behind ``exc`` (itself, or what httpx-aiohttp mapped it from)."""
    for candidate in (exc, exc.__cause__):
        if isinstance(candidate, aiohttp.ClientError):
            return candidate
    return None


class ServiceTransport(AiohttpTransport):
    """httpx-aiohttp's transport with every aiohttp error mapped by :func:`httpx_error`,
    while connecting and while the body is read."""

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        # httpx encoded every header as ASCII (it refuses anything else). Said so, it does
        # not work the encoding out again on each of the dozens of lookups aiohttp makes
        # (two thirds of the client's CPU per call otherwise).
        request.headers.encoding = "ascii"
        try:
            response = await super().handle_async_request(request)
        except (aiohttp.ClientError, httpx.TransportError) as exc:
            cause = _aiohttp_cause(exc)
            if cause is None:
                raise
            raise httpx_error(cause) from cause
        assert isinstance(response.stream, httpx.AsyncByteStream)
        response.stream = _MappedBody(response.stream)
        return response


class _MappedBody(httpx.AsyncByteStream):
    def __init__(self, body: httpx.AsyncByteStream) -> None:
        self._body = body

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._body:
                yield chunk
        except (aiohttp.ClientError, httpx.TransportError) as exc:
            cause = _aiohttp_cause(exc)
            if cause is None:
                raise
            raise httpx_error(cause) from cause

    async def aclose(self) -> None:
        await self._body.aclose()


class ServiceClient(httpx.AsyncClient):
    """httpx's client whose ``send`` hands the request straight to its transport.

    ``AsyncClient.send`` runs the auth flow, redirect handling, event hooks, cookie
    persistence and a log call around every request; the worker uses none of them (it
    follows no redirect, keeps no cookie and authenticates with its certificate), and
    they cost about 0.1 ms of CPU per call, a fifth of what a call costs the worker. The
    request is sent as built (service_call.py builds it), with the client's timeouts.
    """

    def __init__(self, transport: ServiceTransport, timeout_seconds: float) -> None:
        super().__init__(transport=transport, timeout=timeout_seconds)
        self._service_transport = transport

    async def send(
        self,
        request: httpx.Request,
        *,
        stream: bool = False,
        auth: Any = httpx.USE_CLIENT_DEFAULT,
        follow_redirects: Any = httpx.USE_CLIENT_DEFAULT,
    ) -> httpx.Response:
        if auth is not httpx.USE_CLIENT_DEFAULT or follow_redirects not in (
            httpx.USE_CLIENT_DEFAULT,
            False,
        ):
            raise ValueError("the service client sends no credentials and follows no redirect")
        if self.is_closed:
            raise RuntimeError("Cannot send a request, as the client has been closed.")
        request.extensions.setdefault("timeout", self.timeout.as_dict())
        response = await self._service_transport.handle_async_request(request)
        response.request = request
        if not stream:
            try:
                await response.aread()
            except BaseException:
                await response.aclose()
                raise
        return response


@asynccontextmanager
async def service_clients(
    concurrency: int, ssl_context: ssl.SSLContext, timeout_seconds: float
) -> AsyncIterator[list[httpx.AsyncClient]]:
    """One client whose pool keeps up to ``concurrency`` connections alive (a list, so
    callers pick ``clients[k % len(clients)]`` whatever the number of pools)."""
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    transport = ServiceTransport(verify=ssl_context, limits=limits)
    async with ServiceClient(transport, timeout_seconds) as client:
        yield [client]
