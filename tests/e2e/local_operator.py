"""`snowflake-processor operator` as a process on this machine, against the real API server
(the admin kubeconfig), watching one namespace: the operator's code without its image.

kopf puts a finalizer on every resource it runs a daemon for: the resources are deleted
while the operator still runs, or they (and their namespace) could never go away."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from tests.e2e.commands import Commands

BIN = Path(sys.executable).parent  # the venv's: snowflake-processor, kubectl-sfp


@contextmanager
def local_operator(
    kubeconfig: Path,
    namespace: str,
    log_path: Path,
    *,
    allowed_secrets: Sequence[str] = (),
    allowed_env: Sequence[str] | None = None,
    worker_image: str | None = None,
) -> Iterator[None]:
    env = {
        **os.environ,
        "KUBECONFIG": str(kubeconfig),
        "SFP_OPERATOR_ALLOWED_SECRETS": json.dumps(list(allowed_secrets)),
        "SFP_OPERATOR_METRICS_PORT": "0",
        "SFP_OPERATOR_HEALTH_PORT": "0",
    }
    if allowed_env is not None:
        env["SFP_OPERATOR_ALLOWED_ENV"] = json.dumps(list(allowed_env))
    if worker_image is not None:
        env["SFP_OPERATOR_WORKER_IMAGE"] = worker_image
    commands = Commands(kubeconfig)
    with log_path.open("w") as log:
        operator = subprocess.Popen(
            [str(BIN / "snowflake-processor"), "operator", "--namespace", namespace,
             "--development-emulator-login"],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            yield
            commands.kubectl("delete", "sfp", "--all", "-n", namespace, "--timeout=60s")
        finally:
            operator.send_signal(signal.SIGINT)
            try:
                operator.wait(timeout=30)
            except subprocess.TimeoutExpired:
                operator.kill()
                operator.wait()
            print(f"\n--- local operator log (tail) ---\n{log_path.read_text()[-3000:]}")
