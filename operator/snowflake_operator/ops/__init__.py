"""Ops commands: `status`, `enqueue`, `requeue` and `purge` against one queue table.

The queue is named the way the operator names it: a SnowflakeProcessor resource file
(``--resource``), or the same fields as flags. Only ``arguments`` is imported while the
command line is parsed; the commands themselves (rich, PyYAML, the connector) load when
they run.
"""

from __future__ import annotations

import argparse

from .arguments import add_ops_arguments

__all__ = ["add_ops_arguments", "run_ops"]


def run_ops(args: argparse.Namespace) -> int:
    from .runner import run

    return run(args)
