"""Run fakesnow in server mode as its own process, with its data in a DuckDB folder.

Started as ``python -m snowflake_devtools.snowflake_emulator --data DIR``; it prints
``READY <port>`` on stdout once it accepts connections. Data survives a restart or a
kill -9 because every session shares one on-disk instance. The model of Snowflake's
semantics (snowflake_model.py) stands in front of fakesnow: unenforced primary keys,
enforced VARCHAR lengths, table locks, user defaults; ``--fakesnow-only`` leaves it out.
In front of both, workload identity logins are checked against the STS emulator
``--sts-endpoint`` names (workload_identity.py), and refused without one.
"""

from __future__ import annotations

import argparse
import json
import logging
import socket
import sys
import urllib.request
from pathlib import Path
from typing import Any

from .snowflake_model import ModelOptions, SnowflakeModel
from .table_locks import SNOWFLAKE_WAITERS_LIMIT
from .workload_identity import WorkloadIdentities
from .workload_identity_layer import WorkloadIdentityLayer

LOOPBACK = "127.0.0.1"


def fetch_model_stats(port: int, host: str = LOOPBACK) -> dict[str, Any]:
    """``GET /model/stats`` of an emulator: its model's lock figures per table and refusals."""
    with urllib.request.urlopen(f"http://{host}:{port}/model/stats", timeout=10) as answer:
        stats: dict[str, Any] = json.loads(answer.read())
    return stats


def free_port(host: str = LOOPBACK) -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def serve(
    data_dir: Path,
    port: int,
    model: ModelOptions | None = None,
    host: str = LOOPBACK,
    identities: WorkloadIdentities | None = None,
) -> None:
    import importlib

    import uvicorn
    from fakesnow import instance

    # Importing the submodule rebinds the attribute fakesnow.server (a function): go by name.
    fakesnow_server: Any = importlib.import_module("fakesnow.server")

    data_dir.mkdir(parents=True, exist_ok=True)
    # Internal knob, not public API: all sessions share one persistent instance.
    fakesnow_server.shared_fs = instance.FakeSnow(db_path=str(data_dir))
    app = fakesnow_server.app
    if model is not None:
        app = SnowflakeModel(app, fakesnow_server.sessions, model)
    app = WorkloadIdentityLayer(app, identities or WorkloadIdentities())
    config = uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    logging.getLogger("fakesnow.server").setLevel(logging.WARNING)

    original_startup = server.startup

    async def startup(*args: object, **kwargs: object) -> None:
        await original_startup(*args, **kwargs)  # type: ignore[arg-type]
        print(f"READY {port}", flush=True)

    server.startup = startup  # type: ignore[method-assign]
    server.run()


def user_default(text: str) -> tuple[str, str, bool | int | str]:
    """USER:PARAMETER=VALUE, as after ALTER USER USER SET PARAMETER = VALUE. true/false and
    whole numbers become JSON booleans and numbers, as a client sends them at login
    (fakesnow reads any non-empty string as true)."""
    user, _, assignment = text.partition(":")
    name, _, value = assignment.partition("=")
    if not (user and name and value):
        raise argparse.ArgumentTypeError(f"expected USER:PARAMETER=VALUE, got {text!r}")
    value = value.strip()
    typed: bool | int | str = value
    if value.lower() in {"true", "false"}:
        typed = value.lower() == "true"
    elif value.isdigit():
        typed = int(value)
    return user, name.strip().upper(), typed


def model_options(args: argparse.Namespace) -> ModelOptions | None:
    if args.fakesnow_only:
        return None
    defaults: dict[str, dict[str, bool | int | str]] = {}
    for user, name, value in args.user_default:
        defaults.setdefault(user, {})[name] = value
    return ModelOptions(
        enforce_varchar_lengths=not args.no_length_checks,
        lock_waiters_limit=None if args.no_table_locks else args.lock_waiters,
        lock_hold_seconds=args.lock_hold_ms / 1000,
        in_progress_seconds=args.in_progress_seconds,
        arrival_snapshot_updates=args.arrival_snapshot_updates,
        user_defaults=defaults,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Local Snowflake emulator (fakesnow server)")
    parser.add_argument("--data", type=Path, required=True, help="folder for the DuckDB files")
    parser.add_argument("--port", type=int, default=0, help="TCP port (0 picks a free one)")
    parser.add_argument(
        "--fakesnow-only",
        action="store_true",
        help="without the model of Snowflake's semantics (snowflake_model.py): fakesnow as is",
    )
    parser.add_argument(
        "--no-table-locks",
        action="store_true",
        help="let UPDATE/DELETE/MERGE run side by side, as fakesnow does",
    )
    parser.add_argument(
        "--no-length-checks",
        action="store_true",
        help="store strings longer than their VARCHAR(n), as fakesnow does",
    )
    parser.add_argument(
        "--lock-waiters",
        type=int,
        default=SNOWFLAKE_WAITERS_LIMIT,
        help="statements that may wait for one table's lock before 000625 (20, as Snowflake)",
    )
    parser.add_argument(
        "--lock-hold-ms",
        type=float,
        default=0.0,
        help="the least time each UPDATE/DELETE/MERGE holds its table's lock, its own "
        "execution included (0; Snowflake: about 200-500)",
    )
    parser.add_argument(
        "--in-progress-seconds",
        type=float,
        default=45.0,
        help="how long a statement's request is held before the answer is \"query in "
        "progress\" and the client polls for the result (45, about Snowflake's)",
    )
    parser.add_argument(
        "--arrival-snapshot-updates",
        action="store_true",
        help="an UPDATE that waits for its table's lock chooses its rows from the data "
        "committed when it arrived (the unsafe reading of READ COMMITTED); default: from "
        "the data once it holds the lock",
    )
    parser.add_argument(
        "--user-default",
        type=user_default,
        action="append",
        default=[],
        metavar="USER:PARAMETER=VALUE",
        help="a user's default session parameter, e.g. nocommit:AUTOCOMMIT=false (repeatable)",
    )
    parser.add_argument(
        "--sts-endpoint",
        metavar="URL",
        help="the STS emulator (moto's server) a workload identity login's attestation is "
        "sent to, as Snowflake sends it to AWS; without it every such login is refused",
    )
    parser.add_argument(
        "--sts-host",
        action="append",
        default=[],
        metavar="HOST[:PORT]",
        help="another host an attestation may be signed for: the same STS as clients reach "
        "it, when that is not the --sts-endpoint's address (repeatable)",
    )
    # Pods of the local test cluster reach this machine on the cluster's bridge address
    # only; never bind 0.0.0.0.
    parser.add_argument("--host", default=LOOPBACK, help="address to listen on (127.0.0.1)")
    args = parser.parse_args(argv)
    identities = WorkloadIdentities(args.sts_endpoint, frozenset(args.sts_host))
    serve(args.data, args.port or free_port(args.host), model_options(args), args.host, identities)
    return 0


if __name__ == "__main__":
    sys.exit(main())
