"""Start and stop the local helper servers (Snowflake emulator, mTLS service) as processes."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class ServerStartError(RuntimeError):
    """A local server did not report READY in time."""


@dataclass
class ServerProcess:
    """A child process that printed ``READY <port>`` on its stdout."""

    name: str
    process: subprocess.Popen[str]
    port: int

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()

    def kill(self) -> None:
        """SIGKILL, as a crash would; nothing gets a chance to clean up."""
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        if self.process.stdout:
            self.process.stdout.close()


def start_server(
    name: str, module: str, args: list[str], log_path: Path, timeout: float = 60.0
) -> ServerProcess:
    """Run ``python -m module args`` and wait for its READY line; stderr goes to log_path."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", module, *args],
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # Ctrl-C reaches the parent, which stops us in order
        )
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerStartError(f"{name} exited with code {process.returncode}; see {log_path}")
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            line = process.stdout.readline()
            if line.startswith("READY "):
                return ServerProcess(name, process, int(line.split()[1]))
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    raise ServerStartError(f"{name} did not start within {timeout:.0f} s; see {log_path}")


def start_snowflake_emulator(
    data_dir: Path,
    log_path: Path,
    port: int = 0,
    options: Sequence[str] = (),
    host: str = "127.0.0.1",
) -> ServerProcess:
    """The emulator, behaving as Snowflake where fakesnow differs (snowflake_model.py);
    ``options`` are more of its command-line flags (``--lock-waiters N``,
    ``--lock-hold-ms N``, ``--user-default USER:PARAMETER=VALUE``, ``--fakesnow-only``)."""
    return start_server(
        "Snowflake emulator",
        "snowflake_devtools.snowflake_emulator",
        ["--data", str(data_dir), "--port", str(port), "--host", host, *options],
        log_path,
    )
