"""A Snowflake-like table lock in front of the Snowflake emulator (benchmarks and tests only).

Snowflake runs UPDATE, DELETE and MERGE on one standard table one statement at a time,
each holding the table's lock for roughly 0.2-0.5 s, and fails a statement with error
000625 when too many (about 20) already wait for the lock. The emulator answers DML in
milliseconds and runs statements side by side, so a fleet's real ceiling never shows
there. This HTTP proxy sits between the connector and the emulator and puts the lock
back: it reads each query's SQL text (the connector posts JSON with ``sqlText``), and a
statement that changes a table waits for that table's lock and holds it for at least
``hold_seconds``. SELECTs, INSERTs (Snowflake lets them run beside other DML: they write
new micro-partitions) and everything else pass straight through.

Run as ``python -m snowflake_devtools.lock_proxy --upstream-port N --hold-seconds 0.35``;
it prints ``READY <port>`` once it accepts connections. ``GET /_lock/stats`` returns
:meth:`LockStats.snapshot` per table (``held_seconds`` over a wall-clock window is the
lock's utilization).
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import re
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snowflake_devtools.processes import ServerProcess, start_server

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

STATS_PATH = "/_lock/stats"
QUERY_PATH = "/queries/v1/query-request"
DEFAULT_HOLD_SECONDS = 0.35
DEFAULT_MAX_WAITERS = 20  # Snowflake's documented default for one table's lock queue
MODULE = "snowflake_devtools.lock_proxy"

_NAME_PART = r'(?:"(?:[^"]|"")*"|[A-Za-z_][A-Za-z0-9_$]*)'
_DML_TARGET = re.compile(
    rf"^\s*(?:UPDATE|DELETE\s+FROM|MERGE\s+INTO)\s+({_NAME_PART}(?:\s*\.\s*{_NAME_PART})*)",
    re.IGNORECASE,
)
_COMMENT = re.compile(r"^\s*(?:--[^\n]*\n|/\*.*?\*/)", re.DOTALL)


def dml_target(sql_text: str) -> str | None:
    """The table an UPDATE, DELETE or MERGE changes (as one normalised name), else None."""
    text = sql_text
    while (comment := _COMMENT.match(text)) is not None:
        text = text[comment.end() :]
    match = _DML_TARGET.match(text)
    if match is None:
        return None
    parts = re.findall(_NAME_PART, match.group(1))
    return ".".join(p[1:-1].replace('""', '"') if p.startswith('"') else p.upper() for p in parts)


class LockQueueFull(Exception):
    """More statements already wait for the table's lock than Snowflake lets queue."""


@dataclass
class LockStats:
    statements: int = 0
    held_seconds: float = 0.0
    waited_seconds: float = 0.0
    max_waiters: int = 0
    rejected: int = 0  # error 000625

    def snapshot(self) -> dict[str, Any]:
        return {
            "statements": self.statements,
            "held_seconds": round(self.held_seconds, 4),
            "waited_seconds": round(self.waited_seconds, 4),
            "max_waiters": self.max_waiters,
            "rejected": self.rejected,
        }


class TableLock:
    """One table's DML lock: statements run one at a time, each holding it at least
    ``hold_seconds``; a statement arriving with ``max_waiters`` already queued is refused."""

    def __init__(self, hold_seconds: float, max_waiters: int) -> None:
        self.hold_seconds = hold_seconds
        self.max_waiters = max_waiters
        self.stats = LockStats()
        self._lock = asyncio.Lock()
        self._waiters = 0

    @asynccontextmanager
    async def held(self) -> AsyncIterator[None]:
        if self._lock.locked() and self._waiters >= self.max_waiters:
            self.stats.rejected += 1
            raise LockQueueFull
        arrived = time.monotonic()
        self._waiters += 1
        self.stats.max_waiters = max(self.stats.max_waiters, self._waiters)
        try:
            await self._lock.acquire()
        finally:
            self._waiters -= 1
        acquired = time.monotonic()
        self.stats.waited_seconds += acquired - arrived
        try:
            yield
            await asyncio.sleep(max(0.0, acquired + self.hold_seconds - time.monotonic()))
        finally:
            self.stats.statements += 1
            self.stats.held_seconds += time.monotonic() - acquired
            self._lock.release()


def lock_queue_full_answer(table: str) -> dict[str, Any]:
    """The answer Snowflake gives a statement refused by a full lock queue (error 000625),
    in the query-request shape the connector turns into ProgrammingError(errno=625)."""
    return {
        "success": False,
        "code": "000625",
        "message": (
            f"Statement '{uuid.uuid4()}' has locked table '{table}' in transaction and this "
            "lock has been requested by too many statements; the number of waiters for this "
            "lock exceeds the 20 statements limit."
        ),
        "data": {"errorCode": "000625", "sqlState": "57014", "queryId": str(uuid.uuid4())},
    }


class LockProxy:
    """ASGI application forwarding everything to the emulator, DML under its table's lock."""

    def __init__(
        self,
        upstream: str,
        *,
        hold_seconds: float = DEFAULT_HOLD_SECONDS,
        max_waiters: int = DEFAULT_MAX_WAITERS,
    ) -> None:
        import httpx

        self.hold_seconds = hold_seconds
        self.max_waiters = max_waiters
        self.locks: dict[str, TableLock] = {}
        limits = httpx.Limits(max_connections=None, max_keepalive_connections=64)
        self._upstream = httpx.AsyncClient(base_url=upstream, limits=limits, timeout=600.0)

    def lock_for(self, table: str) -> TableLock:
        if table not in self.locks:
            self.locks[table] = TableLock(self.hold_seconds, self.max_waiters)
        return self.locks[table]

    def snapshot(self) -> dict[str, Any]:
        return {
            "hold_seconds": self.hold_seconds,
            "tables": {name: lock.stats.snapshot() for name, lock in self.locks.items()},
        }

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await _lifespan(receive, send)
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["path"] == STATS_PATH:
            await _send(send, 200, [(b"content-type", b"application/json")], self._stats_body())
            return
        body = await _read_body(receive)
        table = dml_target(_sql_text(scope, body)) if scope["path"] == QUERY_PATH else None
        if table is None:
            await self._forward(scope, body, send)
            return
        try:
            async with self.lock_for(table).held():
                status, headers, answer = await self._exchange(scope, body)
        except LockQueueFull:
            refused = json.dumps(lock_queue_full_answer(table)).encode()
            await _send(send, 200, [(b"content-type", b"application/json")], refused)
            return
        await _send(send, status, headers, answer)

    def _stats_body(self) -> bytes:
        return json.dumps(self.snapshot()).encode()

    async def _forward(self, scope: Scope, body: bytes, send: Send) -> None:
        await _send(send, *await self._exchange(scope, body))

    async def _exchange(
        self, scope: Scope, body: bytes
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """The emulator's answer, byte for byte (its encoding kept)."""
        query = scope.get("query_string", b"").decode("latin-1")
        url = scope["path"] + (f"?{query}" if query else "")
        skip = {b"host", b"content-length", b"connection"}
        headers = [(k, v) for k, v in scope["headers"] if k.lower() not in skip]
        request = self._upstream.build_request(scope["method"], url, headers=headers, content=body)
        response = await self._upstream.send(request, stream=True)
        try:
            raw = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
        drop = {b"content-length", b"transfer-encoding", b"connection"}
        kept = [(k, v) for k, v in response.headers.raw if k.lower() not in drop]
        return response.status_code, kept, raw


def _sql_text(scope: Scope, body: bytes) -> str:
    encoding = dict(scope["headers"]).get(b"content-encoding", b"")
    try:
        text = gzip.decompress(body) if encoding == b"gzip" else body
        sql = json.loads(text).get("sqlText", "")
    except (OSError, ValueError, AttributeError):
        return ""
    return sql if isinstance(sql, str) else ""


async def _read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    headers = [*headers, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def serve(upstream_port: int, port: int, hold_seconds: float, max_waiters: int) -> None:
    import uvicorn

    from snowflake_devtools.snowflake_emulator import free_port

    port = port or free_port()
    proxy = LockProxy(
        f"http://127.0.0.1:{upstream_port}", hold_seconds=hold_seconds, max_waiters=max_waiters
    )
    config = uvicorn.Config(
        proxy, host="127.0.0.1", port=port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    original_startup = server.startup

    async def startup(*args: object, **kwargs: object) -> None:
        await original_startup(*args, **kwargs)  # type: ignore[arg-type]
        print(f"READY {port}", flush=True)

    server.startup = startup  # type: ignore[method-assign]
    server.run()


def start_lock_proxy(
    upstream_port: int,
    log_path: Path,
    *,
    hold_seconds: float = DEFAULT_HOLD_SECONDS,
    max_waiters: int = DEFAULT_MAX_WAITERS,
) -> ServerProcess:
    """Start the proxy as a child process in front of the emulator on ``upstream_port``."""
    args = [
        "--upstream-port",
        str(upstream_port),
        "--hold-seconds",
        str(hold_seconds),
        "--max-waiters",
        str(max_waiters),
    ]
    return start_server("Snowflake lock proxy", MODULE, args, log_path)


def fetch_lock_stats(port: int) -> dict[str, Any]:
    """GET /_lock/stats from a proxy on 127.0.0.1:port."""
    import httpx

    response = httpx.get(f"http://127.0.0.1:{port}{STATS_PATH}", timeout=10.0)
    response.raise_for_status()
    stats: dict[str, Any] = response.json()
    return stats


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Snowflake-like table lock before the emulator")
    parser.add_argument("--upstream-port", type=int, required=True, help="the emulator's port")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0 picks a free one)")
    parser.add_argument("--hold-seconds", type=float, default=DEFAULT_HOLD_SECONDS)
    parser.add_argument("--max-waiters", type=int, default=DEFAULT_MAX_WAITERS)
    args = parser.parse_args(argv)
    serve(args.upstream_port, args.port, args.hold_seconds, args.max_waiters)
    return 0


if __name__ == "__main__":
    sys.exit(main())
