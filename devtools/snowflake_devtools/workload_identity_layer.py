"""The emulator's check of workload identity logins, as an ASGI layer in front of the rest
(the model of Snowflake's semantics, then fakesnow): workload_identity.py decides, this
moves the requests.

- ``/session/v1/login-request`` with AUTHENTICATOR WORKLOAD_IDENTITY: refused as Snowflake
  refuses a login (390100), or passed on as a login of the identity's user (LOGIN_NAME set,
  so the user's ``--user-default``s apply; the attestation dropped). Other logins pass.
- ``/queries/v1/query-request`` of a user statement (CREATE/ALTER/DROP USER with a
  workload identity, GRANT ROLE ... TO USER): answered from the registry, its status text
  run as a SELECT on the client's session so the answer has fakesnow's result shape.
- ``GET /model/workload-identity``: the registered users, logins per user and refusals.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from typing import Any

from .snowflake_model import read_body
from .workload_identity import AUTHENTICATOR, Refused, WorkloadIdentities, login_refusal

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

LOGIN = "/session/v1/login-request"
QUERY = "/queries/v1/query-request"
STATS = "/model/workload-identity"


class WorkloadIdentityLayer:
    def __init__(self, app: ASGIApp, identities: WorkloadIdentities) -> None:
        self.app = app
        self.identities = identities

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path not in (LOGIN, QUERY, STATS):
            await self.app(scope, receive, send)
            return
        if path == STATS:
            await _send(send, self.identities.stats())
            return
        raw = await read_body(receive)
        compressed = any(
            k.lower() == b"content-encoding" and v.lower() == b"gzip"
            for k, v in scope.get("headers", [])
        )
        body = json.loads((gzip.decompress(raw) if compressed else raw) or b"{}")
        changed = await (self._login(body) if path == LOGIN else self._query(body))
        if isinstance(changed, Answered):
            await _send(send, changed.payload)
            return
        if changed is not None:
            raw = json.dumps(changed).encode()
            raw = gzip.compress(raw) if compressed else raw
        await self.app(_with_length(scope, len(raw)), _replay(raw), send)

    async def _login(self, body: dict[str, Any]) -> dict[str, Any] | Answered | None:
        data = body.get("data") or {}
        if data.get("AUTHENTICATOR") != AUTHENTICATOR:
            return None
        try:
            user = await self.identities.login(data)
        except Refused as exc:
            return Answered(login_refusal(exc.reason))
        data = {k: v for k, v in data.items() if k not in ("TOKEN", "AUTHENTICATOR", "PROVIDER")}
        return {**body, "data": {**data, "LOGIN_NAME": user}}

    async def _query(self, body: dict[str, Any]) -> dict[str, Any] | Answered | None:
        answer = self.identities.statement(str(body.get("sqlText", "")))
        if answer is None:
            return None
        if answer.error is not None:
            code, state, message = answer.error
            return Answered(
                {
                    "data": {"errorCode": code, "sqlState": state},
                    "code": code,
                    "message": message,
                    "success": False,
                }
            )
        status = str(answer.status).replace("'", "''")
        return {"sqlText": f"SELECT '{status}' AS \"status\""}


class Answered:
    """An answer the layer gives itself (HTTP 200, JSON), without the app behind it."""

    def __init__(self, payload: Mapping[str, Any]) -> None:
        self.payload = payload


def _with_length(scope: Scope, length: int) -> Scope:
    headers = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-length"]
    headers.append((b"content-length", str(length).encode()))
    return {**scope, "headers": headers}


def _replay(raw: bytes) -> Receive:
    sent = False

    async def receive() -> Message:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": raw, "more_body": False}

    return receive


async def _send(send: Send, payload: Mapping[str, Any]) -> None:
    body = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
