"""The operator's one development switch: whether resources may log in with auth.mode
emulator. Set per process by a command-line flag that no chart value can pass."""

from __future__ import annotations

import argparse

# Logging in with auth.mode emulator sends plain HTTP to any host:port a resource names,
# and the answer (refused, timed out, not Snowflake) shows in its status: a port scanner
# for whoever may create resources. Only a process started with the development flag
# (--development-emulator-login; no chart value sets it) does it.
_EMULATOR_LOGIN = {"allowed": False}
EMULATOR_LOGIN_REFUSED = (
    "auth.mode emulator is for local development and tests only: this operator was not "
    "started with --development-emulator-login, so no connection was attempted"
)


def allow_emulator_login(allowed: bool = True) -> None:
    """What the development flag sets, for this process."""
    _EMULATOR_LOGIN["allowed"] = allowed


def emulator_login_allowed() -> bool:
    return _EMULATOR_LOGIN["allowed"]


def add_development_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--development-emulator-login",
        action="store_true",
        help="let resources with auth.mode emulator log in (plain HTTP to the host and port "
        "they name): for make demo, tests and a laptop only; no chart value sets it",
    )
