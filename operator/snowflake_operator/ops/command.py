"""What an ops command is: the shape each command module fills in and the registry lists."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .output import Output
from .shared_arguments import add_output_arguments, add_target_arguments

if TYPE_CHECKING:  # only for the annotation: the session pulls in the Snowflake connector
    from .session import Session


@dataclass(frozen=True)
class OpsCommand:
    """One ops command: its name, its help line, its own arguments and how it runs."""

    name: str
    help: str  # its line in `snowflake-processor --help`
    add_own_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, Session], int]
    # Said after a Snowflake error about privileges: what this command needs beyond the
    # service role's SELECT and UPDATE.
    privilege_hint: str | None = None
    # False: the command only needs to know where the table is (`sql render`): no login
    # arguments, and no Snowflake settings loaded before it runs.
    logs_in: bool = True
    # What the command does when the command line names no queue table at all (no NAME,
    # no --resource, no table flags): `status` then lists the processors, as kubectl get
    # does. None: that is an error.
    untargeted: Callable[[argparse.Namespace, Output], int] | None = None

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The shared queue and login arguments, this command's own, then -o."""
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        add_target_arguments(parser, login=self.logs_in)
        self.add_own_arguments(parser)
        add_output_arguments(parser)


@dataclass(frozen=True)
class OpsGroup:
    """A command made of subcommands: `snowflake-processor sql render|apply`."""

    name: str
    help: str
    commands: tuple[OpsCommand, ...]
