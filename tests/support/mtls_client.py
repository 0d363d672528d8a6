"""A client of the local mTLS service, as the worker talks to it."""

from __future__ import annotations

import ssl
from pathlib import Path
from typing import Any

import httpx


def entry_body(entry_id: str, data: Any = None) -> dict[str, Any]:
    """The JSON body the worker posts for one entry."""
    return {
        "entry_id": entry_id,
        "data": {"value": 1} if data is None else data,
        "processor_id": "test-processor",
        "timestamp": "2024-01-01T00:00:00Z",
    }


def post_entry(
    port: int,
    context: ssl.SSLContext,
    body: dict[str, Any] | bytes,
    key: str | None = "key-1",
    timeout: float = 10.0,
) -> httpx.Response:
    """POST /v1/process with ``key`` as the Idempotency-Key (none when None); ``body`` as
    JSON, or as the raw bytes given."""
    headers = {} if key is None else {"Idempotency-Key": key}
    url = f"https://127.0.0.1:{port}/v1/process"
    if isinstance(body, bytes):
        headers["Content-Type"] = "application/json"
        return httpx.post(url, content=body, headers=headers, verify=context, timeout=timeout)
    return httpx.post(url, json=body, headers=headers, verify=context, timeout=timeout)


def context_for(client_dir: Path) -> ssl.SSLContext:
    """The TLS context from a client folder (client.pem, client-key.pem, ca-cert.pem)."""
    context = ssl.create_default_context(cafile=str(client_dir / "ca-cert.pem"))
    context.load_cert_chain(str(client_dir / "client.pem"), str(client_dir / "client-key.pem"))
    return context
