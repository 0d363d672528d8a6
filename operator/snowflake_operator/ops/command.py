"""What an ops command is: the shape each command module fills in and the registry lists."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .shared_arguments import add_json_argument, add_target_arguments

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

    def add_arguments(self, parser: argparse.ArgumentParser) -> None:
        """The shared queue and login arguments, this command's own, then --json."""
        parser.formatter_class = argparse.RawDescriptionHelpFormatter
        add_target_arguments(parser)
        self.add_own_arguments(parser)
        add_json_argument(parser)
