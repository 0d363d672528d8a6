"""Run one ops command: configuration first, then input, then Snowflake; errors become
one line on stderr and an exit code (0 ok, 2 bad input or configuration, 1 Snowflake)."""

from __future__ import annotations

import argparse
import sys

from snowflake_worker.errors import FatalError

from .command import OpsCommand
from .output import Output
from .session import LoginFailed, Session
from .shared_arguments import names_no_table, output_format


def run_command(command: OpsCommand, args: argparse.Namespace) -> int:
    from snowflake.connector import errors as sf_errors

    session = Session(args, output=Output(format=output_format(args)))
    try:
        if command.untargeted is not None and names_no_table(args):
            return command.untargeted(args, session.output)
        if command.logs_in:
            session.target  # noqa: B018 (configuration errors first, before any input)
        return command.run(args, session)
    except FatalError as exc:
        print(f"error: {exc}", file=sys.stderr)
        if isinstance(exc, LoginFailed):
            print(f"hint: {exc.hint}", file=sys.stderr)
        return exc.exit_code
    except sf_errors.Error as exc:
        print(f"error: Snowflake: {_one_line(exc)}", file=sys.stderr)
        hint = command.privilege_hint
        if hint and "privilege" in str(exc).lower():
            print(f"hint: {hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        session.close()


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 500 else text[:497] + "..."
