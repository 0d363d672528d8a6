"""Run fakesnow in server mode as its own process, with its data in a DuckDB folder.

Started as ``python -m snowflake_devtools.snowflake_emulator --data DIR``; it prints
``READY <port>`` on stdout once it accepts connections. Data survives a restart or a
kill -9 because every session shares one on-disk instance.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def serve(data_dir: Path, port: int, host: str = LOOPBACK) -> None:
    import importlib

    import uvicorn
    from fakesnow import instance

    # Importing the submodule rebinds the attribute fakesnow.server (a function): go by name.
    fakesnow_server: Any = importlib.import_module("fakesnow.server")

    data_dir.mkdir(parents=True, exist_ok=True)
    # Internal knob, not public API: all sessions share one persistent instance.
    fakesnow_server.shared_fs = instance.FakeSnow(db_path=str(data_dir))
    config = uvicorn.Config(
        fakesnow_server.app, host=host, port=port, log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    logging.getLogger("fakesnow.server").setLevel(logging.WARNING)

    original_startup = server.startup

    async def startup(*args: object, **kwargs: object) -> None:
        await original_startup(*args, **kwargs)  # type: ignore[arg-type]
        print(f"READY {port}", flush=True)

    server.startup = startup  # type: ignore[method-assign]
    server.run()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local Snowflake emulator (fakesnow server)")
    parser.add_argument("--data", type=Path, required=True, help="folder for the DuckDB files")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0 picks a free one)")
    # Pods of the local test cluster reach this machine on the cluster's bridge address
    # only; never bind 0.0.0.0.
    parser.add_argument("--host", default=LOOPBACK, help="address to listen on (127.0.0.1)")
    args = parser.parse_args(argv)
    serve(args.data, args.port or free_port(args.host), args.host)
    return 0


if __name__ == "__main__":
    sys.exit(main())
