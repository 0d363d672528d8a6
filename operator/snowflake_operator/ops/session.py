"""What a running ops command works with: the target, the output, and a queue client."""

from __future__ import annotations

import contextlib
from typing import Any

from snowflake_worker.connection import connect
from snowflake_worker.queue import QueueClient

from .config import OpsTarget
from .output import Output


class Session:
    """The target, the output, and a queue client connected on first use."""

    def __init__(self, target: OpsTarget, output: Output) -> None:
        self.target = target
        self.output = output
        self._connection: Any = None
        self._queue: QueueClient | None = None

    @property
    def queue(self) -> QueueClient:
        if self._queue is None:
            self._connection = connect(self.target.settings)
            self._queue = QueueClient(
                self._connection, self.target.settings.table_ref, retry_attempts=3
            )
        return self._queue

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # the connection may be gone already
                self._connection.close()
            self._connection = None
