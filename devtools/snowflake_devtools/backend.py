"""Run each Job as a worker process on this machine, with the environment a Job would get.

The only differences from a Kubernetes Job: the certificate folder and the termination
message file are local paths, and PATH/HOME are passed so the interpreter starts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from snowflake_operator.kube.worker_environment import worker_environment
from snowflake_operator.spec.model import ProcessorSpec


@dataclass
class LocalJob:
    name: str
    process: subprocess.Popen[bytes]
    directory: Path
    started: float = field(default_factory=time.monotonic)

    @property
    def termination_message(self) -> Path:
        return self.directory / "termination-log"

    def summary(self) -> dict[str, Any] | None:
        try:
            text = self.termination_message.read_text()
            return json.loads(text) if text else None
        except (OSError, json.JSONDecodeError):
            return None


class LocalJobBackend:
    def __init__(self, root: Path, cert_dir: Path) -> None:
        self.root = root
        self.cert_dir = cert_dir
        self.jobs: dict[str, LocalJob] = {}
        root.mkdir(parents=True, exist_ok=True)

    # -- JobBackend -------------------------------------------------------------------

    def unfinished_count(self) -> int:
        return sum(1 for job in self.jobs.values() if job.process.poll() is None)

    def launch(self, name: str, spec: ProcessorSpec, certificates_secret: str = "") -> bool:
        """certificates_secret is for Kubernetes; local Jobs read ``cert_dir``."""
        if name in self.jobs:
            return False
        directory = self.root / name
        directory.mkdir(parents=True, exist_ok=True)
        termination = directory / "termination-log"
        termination.write_text("")  # the kubelet creates it empty, too
        env = {
            # Launched now, like a Job created now: the deadline is absolute, as in a pod.
            **worker_environment(spec, name, launched_at=datetime.now(UTC)),
            "SFP_CERT_DIR": str(self.cert_dir),
            "SFP_TERMINATION_MESSAGE_PATH": str(termination),
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(directory),
            "PYTHONUNBUFFERED": "1",
        }
        with open(directory / "worker.log", "wb") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "snowflake_worker"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C in the demo reaches workers only through us
            )
        self.jobs[name] = LocalJob(name, process, directory)
        return True

    # -- local extras -----------------------------------------------------------------

    def running(self) -> list[LocalJob]:
        return [job for job in self.jobs.values() if job.process.poll() is None]

    def summaries(self) -> list[dict[str, Any]]:
        return [s for job in self.jobs.values() if (s := job.summary()) is not None]

    def exit_codes(self) -> dict[str, int | None]:
        return {name: job.process.poll() for name, job in self.jobs.items()}

    def stop_all(self, grace_seconds: float = 30.0) -> None:
        """SIGTERM every running worker (as Kubernetes would), then SIGKILL stragglers."""
        for job in self.running():
            job.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + grace_seconds
        for job in self.jobs.values():
            try:
                job.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                job.process.kill()
                job.process.wait()
