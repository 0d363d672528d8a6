"""A stand-in for the external HTTPS service the workers call, with mutual TLS.

Run as ``python -m snowflake_devtools.mtls_service --cert SERVER_PEM --key SERVER_KEY
--ca CA_PEM --port 0``; it prints ``READY <port>`` on stdout once it accepts connections
and exits 0 on SIGTERM or SIGINT. Clients without a certificate signed by ``--ca`` fail
the TLS handshake.

``POST``, ``PUT`` or ``PATCH <any path>`` with a JSON object ``{"entry_id", "data",
"processor_id", "timestamp"}`` (the worker's envelope) or any JSON value (the entry's data
alone, ``payload: data``: its id is then the ``Idempotency-Key``), after ``--latency-ms``:

* ``--require-header NAME:VALUE`` (repeatable) missing or different: 401;
* body not JSON, or neither ``entry_id`` nor ``Idempotency-Key``: 400;
* ``data`` is a JSON object (or a string holding one) with ``"poison": true``: 422, always;
* ``data`` asks for a misbehaving answer (see :class:`Misbehaviour`): ``"delay_seconds": s``
  waits ``s`` more before answering; ``"trickle_seconds": s`` answers 200 at once, then
  sends its body one byte every ``s`` seconds (:data:`TRICKLE_BYTES` bytes);
  ``"error_body_bytes": n`` answers 422 with a body of ``n`` bytes; ``"response_bytes": n``
  answers 200 with a body of ``n`` bytes. Bodies are streamed and stop when the client
  leaves; ``streamed_body_bytes`` counts what was sent. ``"retry_after": "v"`` answers
  ``"retry_status"`` (429) with ``Retry-After: v`` to the first ``"fail_first"`` (1) calls
  of the entry; ``"echo": true`` answers 200 with the method and the body received;
  ``"content_type": "t"`` sends its 200 answer (or ``response_bytes``) as Content-Type ``t``;
* with probability ``--timeout-rate``: hold the request for 60 s (or until the client
  disconnects), then 503;
* else with probability ``--transient-rate``: 503 ``{"error": "transient"}``;
* else 200 ``{"ok": true, "entry_id": ...}``, counted as a success for the idempotency key
  (the entry_id when the header is missing).

``GET /_stats`` returns the counters (see :meth:`Stats.snapshot`); ``/_stats?arrivals=1``
adds each call's arrival (seconds since the first call) and key; ``/_stats?successes=1``
adds each key's count of successful calls (which entries were called twice).
``status_counts`` holds the status chosen for each call, recorded when it is chosen: a
simulated timeout counts as 503 even though its client has given up by then.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import socket
import ssl
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from snowflake_devtools.certificates import DemoCertificates
from snowflake_devtools.processes import ServerProcess, start_server

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

STATS_PATH = "/_stats"
METHODS = ("POST", "PUT", "PATCH")
TIMEOUT_HOLD_SECONDS = 60.0
MAX_BODY_BYTES = 1024 * 1024
TRICKLE_BYTES = 30
STREAM_CHUNK_BYTES = 1024 * 1024
MODULE = "snowflake_devtools.mtls_service"
LOOPBACK = "127.0.0.1"


@dataclass
class Stats:
    requests: int = 0
    status_counts: Counter[int] = field(default_factory=Counter)
    successes_by_key: Counter[str] = field(default_factory=Counter)
    missing_idempotency_key: int = 0
    streamed_body_bytes: int = 0  # of trickled and large bodies, until their client left
    methods: Counter[str] = field(default_factory=Counter)
    unauthorized: int = 0
    calls_by_key: Counter[str] = field(default_factory=Counter)
    arrivals: list[tuple[float, str]] = field(default_factory=list)  # (monotonic, key)

    def snapshot(self, arrivals: bool = False, successes: bool = False) -> dict[str, Any]:
        found = {
            "requests": self.requests,
            "successes": sum(n for status, n in self.status_counts.items() if 200 <= status < 300),
            "distinct_successes": len(self.successes_by_key),
            "duplicates": sum(n - 1 for n in self.successes_by_key.values() if n > 1),
            "status_counts": {str(status): n for status, n in sorted(self.status_counts.items())},
            "missing_idempotency_key": self.missing_idempotency_key,
            "streamed_body_bytes": self.streamed_body_bytes,
            "methods": dict(self.methods),
            "unauthorized": self.unauthorized,
        }
        if successes:
            found["successes_by_key"] = dict(self.successes_by_key)
        if arrivals and self.arrivals:
            first = self.arrivals[0][0]
            found["arrivals"] = [[round(t - first, 4), key] for t, key in self.arrivals]
        return found


@dataclass(frozen=True)
class Misbehaviour:
    """What an entry's data asks the service to do wrong (the worker's abuse tests)."""

    delay_seconds: float = 0.0
    trickle_seconds: float | None = None
    error_body_bytes: int | None = None
    response_bytes: int | None = None
    retry_after: str | None = None
    retry_status: int = 429
    fail_first: int = 1
    echo: bool = False
    content_type: str | None = None  # of a 200 answer: a charset the worker must survive

    @classmethod
    def of(cls, data: Any) -> Misbehaviour:
        data = _object(data)
        delay, trickle, size, response = (
            data.get(k)
            for k in ("delay_seconds", "trickle_seconds", "error_body_bytes", "response_bytes")
        )
        retry_after, status, first = (
            data.get(k) for k in ("retry_after", "retry_status", "fail_first")
        )
        return cls(
            delay_seconds=float(delay) if _is_number(delay) else 0.0,
            trickle_seconds=float(trickle) if _is_number(trickle) else None,
            error_body_bytes=int(size) if _is_number(size) else None,
            response_bytes=int(response) if _is_number(response) else None,
            retry_after=str(retry_after) if retry_after is not None else None,
            retry_status=int(status) if _is_number(status) else 429,
            fail_first=int(first) if _is_number(first) else 1,
            echo=data.get("echo") is True,
            content_type=str(data["content_type"]) if "content_type" in data else None,
        )


class MtlsService:
    """Plain ASGI application; one instance holds the counters for the process."""

    def __init__(
        self,
        *,
        latency_ms: float = 50.0,
        transient_rate: float = 0.0,
        timeout_rate: float = 0.0,
        seed: int | None = None,
        timeout_hold_seconds: float = TIMEOUT_HOLD_SECONDS,
        required_headers: dict[str, str] | None = None,
    ) -> None:
        self.latency = latency_ms / 1000.0
        # Header names in lower case, as ASGI gives them.
        self.required_headers = {k.lower(): v for k, v in (required_headers or {}).items()}
        self.transient_rate = transient_rate
        self.timeout_rate = timeout_rate
        self.timeout_hold_seconds = timeout_hold_seconds
        self.random = random.Random(seed)  # noqa: S311 - fault injection, not security
        self.stats = Stats()
        # Set on SIGTERM/SIGINT so held requests answer before hypercorn's graceful timeout.
        self.shutting_down = asyncio.Event()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)
        # websocket and anything else: not accepted (the server closes the connection)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        if scope["path"] == STATS_PATH:
            if method == "GET":
                query = scope.get("query_string", b"")
                snapshot = self.stats.snapshot(b"arrivals=1" in query, b"successes=1" in query)
                await _respond(send, 200, snapshot)
            else:
                await _respond(send, 405, {"error": "method not allowed"})
            return
        if method not in METHODS:
            await _respond(send, 405, {"error": "method not allowed"})
            return

        self.stats.requests += 1
        self.stats.methods[method] += 1
        idempotency_key = _header(scope, b"idempotency-key")
        if idempotency_key is None:
            self.stats.missing_idempotency_key += 1
        body = await _read_body(receive)
        await asyncio.sleep(self.latency)

        if any(_header(scope, k.encode()) != v for k, v in self.required_headers.items()):
            self.stats.unauthorized += 1
            await self._finish(send, 401, {"error": "missing or wrong credentials"})
            return
        received = _parse_any(body)
        envelope = isinstance(received, dict) and "entry_id" in received
        entry_id = received["entry_id"] if envelope else idempotency_key
        if received is _NOT_JSON or entry_id is None:
            await self._finish(send, 400, {"error": "body must be JSON with an entry_id"})
            return
        data = received.get("data") if envelope else received
        key = idempotency_key if idempotency_key is not None else str(entry_id)
        self.stats.calls_by_key[key] += 1
        self.stats.arrivals.append((time.monotonic(), key))
        if _is_poison(data):
            await self._finish(send, 422, {"error": "poison entry rejected"})
            return
        misbehaviour = Misbehaviour.of(data)
        await asyncio.sleep(misbehaviour.delay_seconds)
        retry_after = misbehaviour.retry_after
        if retry_after is not None and self.stats.calls_by_key[key] <= misbehaviour.fail_first:
            await self._finish(
                send, misbehaviour.retry_status, {"error": "slow down"}, retry_after=retry_after
            )
            return
        if misbehaviour.error_body_bytes is not None:
            self.stats.status_counts[422] += 1
            await self._stream(send, receive, 422, misbehaviour.error_body_bytes, 0.0)
            return
        if self.random.random() < self.timeout_rate:
            self.stats.status_counts[503] += 1
            await self._hold(receive)
            await _respond(send, 503, {"error": "timeout"})
            return
        if self.random.random() < self.transient_rate:
            await self._finish(send, 503, {"error": "transient"})
            return
        self.stats.successes_by_key[key] += 1
        if misbehaviour.trickle_seconds is not None:
            self.stats.status_counts[200] += 1
            await self._stream(send, receive, 200, TRICKLE_BYTES, misbehaviour.trickle_seconds)
            return
        if misbehaviour.response_bytes is not None:
            self.stats.status_counts[200] += 1
            await self._stream(
                send, receive, 200, misbehaviour.response_bytes, 0.0, misbehaviour.content_type
            )
            return
        answer: dict[str, Any] = {"ok": True, "entry_id": entry_id}
        if misbehaviour.echo:
            answer.update(method=method, received=received)
        await self._finish(send, 200, answer, content_type=misbehaviour.content_type)

    async def _stream(
        self,
        send: Send,
        receive: Receive,
        status: int,
        size: int,
        pause: float,
        content_type: str | None = None,
    ) -> None:
        """Send ``size`` bytes of body (one byte per ``pause`` seconds when ``pause``),
        stopping as soon as the client disconnects."""
        left = asyncio.ensure_future(_disconnected(receive))
        kind = (content_type or "text/plain").encode("latin-1")
        headers = [(b"content-type", kind), (b"content-length", str(size).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        chunk = b"x" if pause else b"x" * STREAM_CHUNK_BYTES
        sent = 0
        try:
            while sent < size and not left.done():
                piece = chunk[: size - sent]
                more = sent + len(piece) < size
                await send({"type": "http.response.body", "body": piece, "more_body": more})
                sent += len(piece)
                await asyncio.sleep(pause if more else 0)
        finally:
            left.cancel()
            self.stats.streamed_body_bytes += sent

    async def _hold(self, receive: Receive) -> None:
        """Wait out a simulated timeout: until the client leaves, shutdown, or the hold ends."""
        waiters = [
            asyncio.ensure_future(_disconnected(receive)),
            asyncio.ensure_future(self.shutting_down.wait()),
        ]
        try:
            await asyncio.wait(
                waiters, timeout=self.timeout_hold_seconds, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for waiter in waiters:
                waiter.cancel()

    async def _finish(
        self,
        send: Send,
        status: int,
        payload: dict[str, Any],
        retry_after: str | None = None,
        content_type: str | None = None,
    ) -> None:
        self.stats.status_counts[status] += 1
        extra = [] if retry_after is None else [(b"retry-after", retry_after.encode("latin-1"))]
        await _respond(send, status, payload, extra, content_type)


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def _read_body(receive: Receive) -> bytes | None:
    """The request body, or None when it is larger than MAX_BODY_BYTES."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size <= MAX_BODY_BYTES:
            chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks) if size <= MAX_BODY_BYTES else None


async def _disconnected(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _respond(
    send: Send,
    status: int,
    payload: dict[str, Any],
    extra_headers: list[tuple[bytes, bytes]] | None = None,
    content_type: str | None = None,
) -> None:
    body = json.dumps(payload).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", (content_type or "application/json").encode("latin-1")),
                (b"content-length", str(len(body)).encode()),
                *(extra_headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


_NOT_JSON: Any = object()


def _parse_any(body: bytes | None) -> Any:
    """The body as JSON, or _NOT_JSON."""
    if body is None:
        return _NOT_JSON
    try:
        return json.loads(body)
    except ValueError:
        return _NOT_JSON


def _object(data: Any) -> dict[str, Any]:
    """The entry's data as a JSON object (parsed once if it is a string), else empty."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return {}
    return data if isinstance(data, dict) else {}


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and value >= 0


def _is_poison(data: Any) -> bool:
    return _object(data).get("poison") is True


def _listening_socket(port: int, host: str) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind((host, port))
    sock.set_inheritable(False)
    return sock


async def serve(
    app: MtlsService, cert: Path, key: Path, ca: Path, port: int, host: str = LOOPBACK
) -> None:
    """Serve ``app`` until SIGTERM/SIGINT; print ``READY <port>`` once accepting."""
    from hypercorn.asyncio import serve as hypercorn_serve
    from hypercorn.config import Config

    # Bind here (port 0 picks a free one, with no race) and hand the socket to hypercorn.
    sock = _listening_socket(port, host)
    bound_port = int(sock.getsockname()[1])

    config = Config()
    config.bind = [f"fd://{sock.detach()}"]
    config.certfile = str(cert)
    config.keyfile = str(key)
    config.ca_certs = str(ca)
    config.verify_mode = ssl.CERT_REQUIRED
    config.alpn_protocols = ["http/1.1"]
    config.accesslog = None
    config.errorlog = "-"  # stderr: the log file start_server opened
    config.loglevel = "WARNING"
    config.backlog = 1024
    config.include_date_header = False
    config.include_server_header = False
    config.keep_alive_timeout = 30.0
    config.keep_alive_max_requests = 1_000_000
    config.graceful_timeout = 2.0
    config.ssl_handshake_timeout = 10.0

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()

    def on_signal() -> None:
        app.shutting_down.set()
        stop.set()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, on_signal)

    async def shutdown_trigger() -> None:
        # hypercorn awaits this only after its listeners are up.
        print(f"READY {bound_port}", flush=True)
        await stop.wait()

    # hypercorn types ASGI messages as TypedDicts; this app speaks plain dicts, which is ASGI.
    asgi_app: Any = app
    await hypercorn_serve(asgi_app, config, shutdown_trigger=shutdown_trigger, mode="asgi")


def _header_pair(text: str) -> tuple[str, str]:
    name, sep, value = text.partition(":")
    if not sep or not name.strip():
        raise SystemExit(f"--require-header {text!r}: give NAME:VALUE")
    return name.strip(), value.strip()


def _rate(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} is not between 0 and 1")
    return value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local mTLS service that the workers call")
    parser.add_argument("--cert", type=Path, required=True, help="server certificate (PEM)")
    parser.add_argument("--key", type=Path, required=True, help="server private key (PEM)")
    parser.add_argument("--ca", type=Path, required=True, help="CA that signs client certs")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0 picks a free one)")
    parser.add_argument("--latency-ms", type=float, default=50.0, help="delay per request")
    parser.add_argument("--transient-rate", type=_rate, default=0.0, help="share of 503s")
    parser.add_argument("--timeout-rate", type=_rate, default=0.0, help="share held for 60 s")
    parser.add_argument("--seed", type=int, default=None, help="seed for the fault injection")
    parser.add_argument(
        "--require-header",
        action="append",
        default=[],
        metavar="NAME:VALUE",
        help="answer 401 unless the request has this header (repeatable)",
    )
    # Pods of the local test cluster reach this machine on the cluster's bridge address
    # only (its certificate must name it); never bind 0.0.0.0.
    parser.add_argument("--host", default=LOOPBACK, help="address to listen on (127.0.0.1)")
    args = parser.parse_args(argv)
    app = MtlsService(
        latency_ms=args.latency_ms,
        transient_rate=args.transient_rate,
        timeout_rate=args.timeout_rate,
        seed=args.seed,
        required_headers=dict(_header_pair(text) for text in args.require_header),
    )
    asyncio.run(serve(app, args.cert, args.key, args.ca, args.port, args.host))
    return 0


def start_mtls_service(
    certs: DemoCertificates,
    log_path: Path,
    *,
    latency_ms: float = 50,
    transient_rate: float = 0.0,
    timeout_rate: float = 0.0,
    seed: int | None = None,
    host: str = LOOPBACK,
    required_headers: dict[str, str] | None = None,
) -> ServerProcess:
    """Start the service as a child process serving ``certs.server_cert`` on ``host``."""
    args = [
        "--cert",
        str(certs.server_cert),
        "--key",
        str(certs.server_key),
        "--ca",
        str(certs.ca_cert),
        "--port",
        "0",
        "--latency-ms",
        str(latency_ms),
        "--transient-rate",
        str(transient_rate),
        "--timeout-rate",
        str(timeout_rate),
        "--host",
        host,
    ]
    if seed is not None:
        args += ["--seed", str(seed)]
    for name, value in (required_headers or {}).items():
        args += ["--require-header", f"{name}:{value}"]
    return start_server("mTLS service", MODULE, args, log_path)


def client_ssl_context(certs: DemoCertificates) -> ssl.SSLContext:
    """An SSLContext that trusts the demo CA and presents the demo client certificate."""
    context = ssl.create_default_context(cafile=str(certs.ca_cert))
    context.load_cert_chain(str(certs.client_cert), str(certs.client_key))
    return context


def fetch_stats(
    port: int,
    certs: DemoCertificates,
    host: str = LOOPBACK,
    *,
    arrivals: bool = False,
    successes: bool = False,
) -> dict[str, Any]:
    """GET /_stats from a service on host:port, authenticating with the demo client
    (``arrivals``: with each call's arrival time and key; ``successes``: with each key's
    count of successful calls)."""
    import httpx

    asked = [name for name, wanted in (("arrivals", arrivals), ("successes", successes)) if wanted]
    query = "?" + "&".join(f"{name}=1" for name in asked) if asked else ""
    response = httpx.get(
        f"https://{host}:{port}{STATS_PATH}{query}", verify=client_ssl_context(certs), timeout=10.0
    )
    response.raise_for_status()
    stats: dict[str, Any] = response.json()
    return stats


if __name__ == "__main__":
    sys.exit(main())
