"""What a running ops command works with: the target, the output, and a connection."""

from __future__ import annotations

import argparse
import contextlib
from typing import Any

from snowflake_worker.connection import connect
from snowflake_worker.queue import QueueClient

from .config import OpsTarget, load_target
from .output import Output


class Session:
    """The command line's target (loaded on first use), the output, and a Snowflake
    connection and queue client opened on first use."""

    def __init__(self, args: argparse.Namespace, output: Output) -> None:
        self.args = args
        self.output = output
        self._target: OpsTarget | None = None
        self._connection: Any = None
        self._queue: QueueClient | None = None

    @property
    def target(self) -> OpsTarget:
        if self._target is None:
            self._target = load_target(self.args)
        return self._target

    @property
    def connection(self) -> Any:
        if self._connection is None:
            self._connection = connect(self.target.settings)
        return self._connection

    @property
    def queue(self) -> QueueClient:
        if self._queue is None:
            self._queue = QueueClient(
                self.connection, self.target.settings.table_ref, retry_attempts=3
            )
        return self._queue

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(Exception):  # the connection may be gone already
                self._connection.close()
            self._connection = None
