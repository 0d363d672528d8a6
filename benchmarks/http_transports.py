"""The worker's HTTP client CPU per call, one transport beside the other.

Each transport runs in a fresh process (so imports and other transports' garbage do not
count): ``concurrency`` tasks send ``requests`` mTLS POSTs to the local service (50 ms
latency) through the worker's own ``call_service`` (one time limit per call, bounded
body read), after a warm-up; the process's CPU time (user + system) over the measured
calls divided by their number is the figure. The service runs in its own process.

* ``httpx``: httpx's default transport (httpcore), one client with a pool of
  ``concurrency`` connections;
* ``httpx-pools-4``: the same in clients of 4 connections each (what the worker used
  before time-sized batches: httpcore's cost per request grows with its pool);
* ``httpx-aiohttp``: httpx's client on the ``httpx-aiohttp`` transport (aiohttp's
  connection pool and HTTP parser), one client;
* ``worker``: what the worker uses (snowflake_worker/http_clients.py): the same transport
  with aiohttp's errors mapped by phase, in a client whose ``send`` goes straight to it;
* ``aiohttp``: aiohttp alone, no httpx: the floor, for reference (not an option: httpx
  stays the client interface).

    .venv/bin/python benchmarks/http_transports.py [--requests 4000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TRANSPORTS = ("httpx", "httpx-pools-4", "httpx-aiohttp", "worker", "aiohttp")
LATENCY_MS = 50.0
WARM_UP = 200


def run(requests: int = 4000, concurrency: int = 32) -> dict[str, Any]:
    from snowflake_devtools.certificates import write_demo_certificates
    from snowflake_devtools.mtls_service import start_mtls_service

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="sfp-http-") as tmp:
        root = Path(tmp)
        certs = write_demo_certificates(root / "certs")
        service = start_mtls_service(certs, root / "service.log", latency_ms=LATENCY_MS)
        try:
            for transport in TRANSPORTS:
                results[transport] = measure(
                    transport, service.port, certs.client_dir, requests, concurrency
                )
        finally:
            service.stop()
    return results


def measure(
    transport: str, port: int, client_dir: Path, requests: int, concurrency: int
) -> dict[str, Any]:
    """One transport against the service on ``port``, in a process of its own."""
    command = [
        sys.executable,
        __file__,
        "--child",
        transport,
        "--port",
        str(port),
        "--certs",
        str(client_dir),
        "--requests",
        str(requests),
        "--concurrency",
        str(concurrency),
    ]
    out = subprocess.run(command, check=True, capture_output=True, text=True)
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


async def _child(transport: str, url: str, cert_dir: Path, requests: int, concurrency: int) -> Any:
    from snowflake_worker.tls import client_ssl_context

    context = client_ssl_context(cert_dir)
    payload = {"entry_id": "x", "data": {"n": 1, "text": "x" * 64}, "processor_id": "bench"}
    async with _clients(transport, context, concurrency) as send:
        sent = 0

        async def caller(k: int, count: int) -> None:
            nonlocal sent
            for _ in range(count):
                sent += 1
                status = await send(k, url, payload, {"Idempotency-Key": f"t/{sent}"})
                assert status == 200, status

        async def burst(total: int) -> None:
            share = math.ceil(total / concurrency)
            await asyncio.gather(*(caller(k, share) for k in range(concurrency)))

        await burst(WARM_UP)
        cpu, wall = time.process_time(), time.monotonic()
        await burst(requests)
        cpu, wall = time.process_time() - cpu, time.monotonic() - wall
    measured = math.ceil(requests / concurrency) * concurrency
    return {
        "requests": measured,
        "cpu_ms_per_request": round(cpu * 1000 / measured, 3),
        "requests_per_second": round(measured / wall, 1),
    }


def _clients(transport: str, context: Any, concurrency: int) -> Any:
    import contextlib

    import httpx

    from snowflake_worker.service_call import call_service

    @contextlib.asynccontextmanager
    async def httpx_clients(pools: int, make: Any) -> Any:
        async with contextlib.AsyncExitStack() as stack:
            clients = [await stack.enter_async_context(make()) for _ in range(pools)]

            async def send(k: int, url: str, payload: Any, headers: Any) -> int:
                answer = await call_service(
                    clients[k % pools],
                    "POST",
                    url,
                    json=payload,
                    headers=headers,
                    timeout_seconds=10,
                )
                return answer.status_code

            yield send

    if transport == "httpx":
        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        return httpx_clients(1, lambda: httpx.AsyncClient(verify=context, limits=limits))
    if transport == "httpx-pools-4":
        pools = math.ceil(concurrency / 4)
        size = math.ceil(concurrency / pools)
        limits = httpx.Limits(max_connections=size, max_keepalive_connections=size)
        return httpx_clients(pools, lambda: httpx.AsyncClient(verify=context, limits=limits))
    if transport == "httpx-aiohttp":
        from httpx_aiohttp import AiohttpTransport

        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        return httpx_clients(
            1,
            lambda: httpx.AsyncClient(transport=AiohttpTransport(verify=context, limits=limits)),
        )
    if transport == "worker":
        from snowflake_worker.http_clients import ServiceClient, ServiceTransport

        limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
        return httpx_clients(
            1, lambda: ServiceClient(ServiceTransport(verify=context, limits=limits), 10)
        )
    return _bare_aiohttp(context, concurrency)


def _bare_aiohttp(context: Any, concurrency: int) -> Any:
    import contextlib

    import aiohttp

    @contextlib.asynccontextmanager
    async def session() -> Any:
        connector = aiohttp.TCPConnector(ssl=context, limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as client:

            async def send(k: int, url: str, payload: Any, headers: Any) -> int:
                async with asyncio.timeout(10):
                    async with client.post(url, json=payload, headers=headers) as answer:
                        await answer.content.read(64 * 1024)
                        return answer.status

            yield send

    return session()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--child", choices=TRANSPORTS, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--certs", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        url = f"https://127.0.0.1:{args.port}/process"
        result = asyncio.run(_child(args.child, url, args.certs, args.requests, args.concurrency))
        print(json.dumps(result), flush=True)
        return 0
    results = run(args.requests, args.concurrency)
    for transport, figures in results.items():
        print(
            f"  {transport:<14} {figures['cpu_ms_per_request']:>7} ms CPU per call, "
            f"{figures['requests_per_second']} calls/s"
        )
    print(json.dumps(results), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
