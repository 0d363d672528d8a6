"""The worker's last word: its termination message, and SIGTERM while it is starting.

Stdlib only, so `__main__` can install the start-up handler before the heavy imports (the
Snowflake connector takes a second or more to import, longer on a busy node): a Job
stopped in that window still ends with exit 0 and a summary that says nothing was claimed.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

from .constants import TERMINATION_MESSAGE_PATH

NOTHING_CLAIMED = {
    "event": "summary",
    "stop_reason": "sigterm",
    "claimed": 0,
    "completed": 0,
    "failed": 0,
    "released": 0,
    "snowflake_statements": 0,
}


class StoppedBeforeClaiming(Exception):
    """SIGTERM arrived while starting up, before anything was claimed."""


def _stop_before_claiming(signum: int, frame: object) -> None:
    raise StoppedBeforeClaiming


def stop_cleanly_until_claiming() -> None:
    """Until the drain loop installs its own handler, SIGTERM ends the run cleanly:
    nothing has been claimed yet, so nothing needs releasing."""
    signal.signal(signal.SIGTERM, _stop_before_claiming)


def termination_message_path() -> Path:
    return Path(os.environ.get("SFP_TERMINATION_MESSAGE_PATH", TERMINATION_MESSAGE_PATH))


def write_termination_message(path: Path, message: dict[str, Any]) -> None:
    """Kubernetes shows this file in the Pod's status; only written where the file exists."""
    if path.is_file():
        text = json.dumps(message, separators=(",", ":"), default=str)
        path.write_text(text[:4000])  # the kubelet keeps at most 4096 bytes
