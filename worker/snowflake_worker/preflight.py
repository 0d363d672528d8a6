"""Check the service accepts this worker before any entry is claimed.

With TLS 1.3 a server that rejects the client certificate often just closes the
connection after the handshake, which looks like any dropped connection. Probing first
means a misconfigured certificate (or an unreachable service) stops the Job with one
clear message and leaves every entry untouched, instead of burning attempts.
"""

from __future__ import annotations

import asyncio

import httpx

from .errors import FatalError
from .outcomes import CallResult, classify_exception
from .service_call import call_service

PROBE_ATTEMPTS = 3


async def check_service_accepts_client(
    client: httpx.AsyncClient, url: str, timeout_seconds: float
) -> None:
    """One OPTIONS request: any HTTP answer, even 405, proves the mTLS handshake passed."""
    problem: httpx.HTTPError | None = None
    for attempt in range(PROBE_ATTEMPTS):
        try:
            await call_service(client, "OPTIONS", url, timeout_seconds=timeout_seconds)
            return
        except httpx.HTTPError as exc:
            problem = exc
            if classify_exception(exc) is CallResult.FATAL:
                break
        await asyncio.sleep(0.5 * (attempt + 1))
    assert problem is not None
    detail = f"{type(problem).__name__}: {problem}"
    if (
        isinstance(problem, httpx.ConnectError | httpx.TimeoutException)
        and classify_exception(problem) is not CallResult.FATAL
    ):
        raise FatalError(
            f"the service at {url} is unreachable ({detail}); no entry was claimed. "
            "Check the endpoint URL and network access"
        )
    raise FatalError(
        f"the service at {url} rejected the TLS connection ({detail}); no entry was claimed. "
        "Check that client.pem is signed by a CA the service trusts, that client-key.pem "
        "belongs to it, and that ca-cert.pem is the CA of the service's certificate"
    )
