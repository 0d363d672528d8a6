"""How the worker's HTTP transport reports aiohttp's errors to the rest of the worker."""

from __future__ import annotations

import aiohttp
import httpx
import pytest
from aiohttp.client_reqrep import ConnectionKey

from snowflake_worker.http_clients import httpx_error
from snowflake_worker.outcomes import CallResult, classify_exception

KEY = ConnectionKey("service.example", 443, True, True, None, None, None)


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        # The server dropped the connection after the TLS handshake: how a TLS 1.3 server
        # refuses a client certificate. Not a connect timeout (httpx-aiohttp's own map).
        (aiohttp.ServerDisconnectedError(), httpx.ReadError),
        (aiohttp.ClientOSError(104, "Connection reset by peer"), httpx.ReadError),
        (aiohttp.ClientPayloadError("Response payload is not completed"), httpx.ReadError),
        (
            aiohttp.ClientConnectorError(KEY, ConnectionRefusedError(111, "refused")),
            httpx.ConnectError,
        ),
        (aiohttp.ConnectionTimeoutError("Connection timeout"), httpx.ConnectTimeout),
        (aiohttp.SocketTimeoutError("Timeout on reading data"), httpx.ReadTimeout),
        (aiohttp.InvalidURL("ftp://service.example"), httpx.TransportError),
    ],
)
def test_aiohttp_errors_become_the_httpx_error_of_their_phase(
    error: aiohttp.ClientError, expected: type[httpx.TransportError]
) -> None:
    mapped = httpx_error(error)
    assert type(mapped) is expected
    assert type(error).__name__ in str(mapped)


def test_a_tls_rejection_stays_fatal_through_the_mapping() -> None:
    rejected = aiohttp.ClientOSError(1, "[SSL: TLSV13_ALERT_CERTIFICATE_REQUIRED] alert")
    try:
        raise httpx_error(rejected) from rejected
    except httpx.HTTPError as exc:
        assert classify_exception(exc) is CallResult.FATAL
