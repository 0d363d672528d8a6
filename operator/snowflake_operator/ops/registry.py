"""The ops commands: the one list of them, in the order `snowflake-processor --help` shows.

Each command module defines its own ``COMMAND`` (name, help line, arguments, run); adding a
command is a new module and one line here. Nothing imports this module but the CLI, so the
command modules may import every shared module without a cycle.
"""

from __future__ import annotations

from . import enqueue, purge, requeue, sql, status
from .command import OpsCommand, OpsGroup

OPS_COMMANDS: tuple[OpsCommand, ...] = (
    status.COMMAND,
    enqueue.COMMAND,
    requeue.COMMAND,
    purge.COMMAND,
)

# Commands made of subcommands, listed after the others.
OPS_GROUPS: tuple[OpsGroup, ...] = (OpsGroup("sql", sql.GROUP_HELP, (sql.RENDER, sql.APPLY)),)
