"""Run one ops command: configuration first, then input, then Snowflake; errors become
one line on stderr and an exit code (0 ok, 2 bad input or configuration, 1 Snowflake)."""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable
from typing import Any

from snowflake_worker.connection import connect
from snowflake_worker.errors import FatalError
from snowflake_worker.queue import QueueClient

from .config import OpsTarget, load_target
from .output import Output

# What each command needs beyond the service role's SELECT and UPDATE, for the hint.
_PRIVILEGE_HINTS = {
    "enqueue": "enqueue needs INSERT on the table: use a role that has it (--role)",
    "purge": "purge needs DELETE on the table: use an admin role that has it (--role)",
}


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


def _commands() -> dict[str, Callable[[argparse.Namespace, Session], int]]:
    from . import enqueue, purge, requeue, status

    return {
        "status": status.run,
        "enqueue": enqueue.run,
        "requeue": requeue.run,
        "purge": purge.run,
    }


def run(args: argparse.Namespace) -> int:
    from snowflake.connector import errors as sf_errors

    output = Output(json_mode=args.json)
    session: Session | None = None
    try:
        target = load_target(args)
        session = Session(target, output)
        return _commands()[args.command](args, session)
    except FatalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except sf_errors.Error as exc:
        print(f"error: Snowflake: {_one_line(exc)}", file=sys.stderr)
        hint = _PRIVILEGE_HINTS.get(args.command)
        if hint and "privilege" in str(exc).lower():
            print(f"hint: {hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if session is not None:
            session.close()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 500 else text[:497] + "..."
