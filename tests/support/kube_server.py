"""Run the Kubernetes API emulator as a process: ``python -m tests.support.kube_server --port 0``.

It listens on 127.0.0.1, prints ``READY <port>`` once listening, and stops on SIGTERM/SIGINT.
Point clients at it with a kubeconfig from :func:`write_kubeconfig`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
from pathlib import Path

import aiohttp.web

from snowflake_devtools.processes import ServerProcess, start_server
from tests.support.kube_emulator import SnowflakeKubeEmulator

REPO_ROOT = Path(__file__).resolve().parents[2]
# Open watch streams never finish on their own: do not wait long for them when stopping.
SHUTDOWN_TIMEOUT = 0.25


async def serve(port: int, serve_processors: bool = True) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    # Entering the emulator starts kmock's background task that feeds watch streams.
    async with SnowflakeKubeEmulator(serve_processors=serve_processors) as emulator:
        runner = aiohttp.web.ServerRunner(
            aiohttp.web.Server(emulator), shutdown_timeout=SHUTDOWN_TIMEOUT
        )
        await runner.setup()
        try:
            site = aiohttp.web.TCPSite(runner, "127.0.0.1", port)
            await site.start()
            print(f"READY {runner.addresses[0][1]}", flush=True)
            await stop.wait()
        finally:
            await runner.cleanup()


def start_kube_emulator(log_path: Path, custom_resources: bool = True) -> ServerProcess:
    """Start the emulator process on a free port; its stderr goes to ``log_path``. Without
    ``custom_resources`` it serves no SnowflakeProcessors (no CRD installed)."""
    # `python -m tests.support.kube_server` imports from the repository root, which is on sys.path
    # only when started from there: lend it the root via PYTHONPATH (start_server copies
    # os.environ), whatever directory pytest was started in.
    previous = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), previous]))
    try:
        return start_server(
            "Kubernetes API emulator",
            "tests.support.kube_server",
            ["--port", "0", *([] if custom_resources else ["--without-crd"])],
            log_path,
        )
    finally:
        if previous is None:
            del os.environ["PYTHONPATH"]
        else:
            os.environ["PYTHONPATH"] = previous


def write_kubeconfig(path: Path, port: int, namespace: str = "default") -> Path:
    """A kubeconfig for the emulator: plain http, a dummy token, ``namespace`` as default."""
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emulator", "cluster": {"server": f"http://127.0.0.1:{port}"}}],
        "users": [{"name": "emulator", "user": {"token": "emulator-token"}}],
        "contexts": [
            {
                "name": "emulator",
                "context": {"cluster": "emulator", "user": "emulator", "namespace": namespace},
            }
        ],
        "current-context": "emulator",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(config, indent=2))  # JSON is YAML
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--without-crd", action="store_true", help="serve no SnowflakeProcessors (no CRD)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)  # server-side errors go to stderr (the log)
    asyncio.run(serve(args.port, serve_processors=not args.without_crd))


if __name__ == "__main__":
    main()
