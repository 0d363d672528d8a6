"""Ops commands: `status`, `enqueue`, `requeue` and `purge` against one queue table.

The queue is named the way the operator names it: a SnowflakeProcessor resource file
(``--resource``), or the same fields as flags. Only ``arguments`` is imported while the
command line is parsed; the commands themselves (rich, PyYAML, the connector) load when
they run.
"""

from __future__ import annotations

import argparse

from .arguments import add_ops_arguments

__all__ = ["OPS_COMMANDS", "add_ops_arguments", "run_ops"]

# Ops commands on one queue table.
OPS_COMMANDS = {
    "status": "entries by status, the oldest pending age, recent dead letters",
    "enqueue": "add entries in bulk from a JSON-lines file (idempotent by id)",
    "requeue": "put dead letters back to pending, by id, by error text or all",
    "purge": "delete completed entries older than a cutoff",
}


def run_ops(args: argparse.Namespace) -> int:
    from .runner import run

    return run(args)
