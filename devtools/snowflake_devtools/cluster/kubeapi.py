"""A minimal Kubernetes API client (stdlib only) for start-up checks and node setup."""

from __future__ import annotations

import http.client
import json
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit


class ApiError(Exception):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"HTTP {status}: {body[:300]}")
        self.status = status


@dataclass(frozen=True)
class KubeApi:
    server: str
    ca: Path
    cert: Path
    key: Path
    timeout: float = 10.0

    def _context(self) -> ssl.SSLContext:
        context = ssl.create_default_context(cafile=str(self.ca))
        context.load_cert_chain(str(self.cert), str(self.key))
        return context

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        content_type: str = "application/json",
    ) -> tuple[int, str]:
        url = urlsplit(self.server)
        conn = http.client.HTTPSConnection(
            url.hostname or "", url.port or 443, timeout=self.timeout, context=self._context()
        )
        try:
            payload = None if body is None else json.dumps(body).encode()
            headers = {"Accept": "application/json"}
            if payload is not None:
                headers["Content-Type"] = content_type
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            return response.status, response.read().decode(errors="replace")
        finally:
            conn.close()

    def get(self, path: str) -> Any:
        status, text = self.request("GET", path)
        if status != 200:
            raise ApiError(status, text)
        return json.loads(text)

    def text(self, path: str) -> str:
        status, text = self.request("GET", path)
        if status != 200:
            raise ApiError(status, text)
        return text


def wait_for(
    what: str,
    check: Callable[[], bool],
    timeout: float,
    alive: Callable[[], str | None] = lambda: None,
    interval: float = 0.5,
) -> None:
    """Poll check() until true. alive() names a crashed component to fail fast on."""
    deadline = time.monotonic() + timeout
    last_error = ""
    while time.monotonic() < deadline:
        dead = alive()
        if dead:
            raise RuntimeError(f"{dead} exited while waiting for {what}")
        try:
            if check():
                return
        except (OSError, ApiError, ValueError, KeyError) as error:
            last_error = f" (last error: {error})"
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}{last_error}")


def node_ready(node: dict[str, Any]) -> bool:
    conditions = node.get("status", {}).get("conditions", [])
    return any(c.get("type") == "Ready" and c.get("status") == "True" for c in conditions)
