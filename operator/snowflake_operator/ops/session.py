"""What a running ops command works with: the target, the output, and a connection."""

from __future__ import annotations

import argparse
import contextlib
import os
from collections.abc import Mapping
from typing import Any

from snowflake_worker.connection import connect
from snowflake_worker.errors import FatalError
from snowflake_worker.queue import QueueClient
from snowflake_worker.snowflake_settings import AuthMode

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
            try:
                self._connection = connect(self.target.settings)
            except FatalError as exc:
                hint = login_hint(self.target.settings.auth, os.environ)
                if hint is None:
                    raise
                raise LoginFailed(str(exc), hint) from None
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


class LoginFailed(FatalError):
    """A failed login, with what to try instead (printed as its own ``hint:`` line)."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.hint = hint


WORKLOAD_IDENTITY_HINT = (
    "workload_identity logs in as the IAM role Snowflake maps to the processor's pods "
    "(IRSA), so it works only in those pods; from a laptop log in with --auth key_pair "
    "--snowflake-user USER --private-key-file KEY.p8 (or --auth password with "
    "SFP_SNOWFLAKE_PASSWORD)"
)


def login_hint(auth: AuthMode, environ: Mapping[str, str]) -> str | None:
    """What to try after a failed login: workload identity outside a pod that has an IRSA
    token (AWS_WEB_IDENTITY_TOKEN_FILE) cannot work, whatever AWS credentials the laptop
    holds, since Snowflake maps the pods' role, not the person's."""
    if auth is AuthMode.WORKLOAD_IDENTITY and not environ.get("AWS_WEB_IDENTITY_TOKEN_FILE"):
        return WORKLOAD_IDENTITY_HINT
    return None
