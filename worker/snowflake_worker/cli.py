"""The `snowflake-processor` command: one entry point, subcommands loaded on demand.

The worker image installs only the `worker` extra, so subcommands that need the
operator's packages import them lazily and say which extra is missing.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from importlib.util import find_spec

# Ops commands on one queue table (the operator's code: rich, PyYAML).
OPS_COMMANDS = {
    "status": "entries by status, the oldest pending age, recent dead letters",
    "enqueue": "add entries in bulk from a JSON-lines file (idempotent by id)",
    "requeue": "put dead letters back to pending, by id, by error text or all",
    "purge": "delete completed entries older than a cutoff",
}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="snowflake-processor",
        description="Drain a Snowflake work-queue table with Kubernetes Jobs.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parser(
        "worker",
        help="run one Job: claim entries and call the service (config: SFP_* environment)",
    )
    demo = commands.add_parser(
        "demo", help="run the whole pipeline on this machine against local emulators"
    )
    demo_available = _add_demo_arguments(demo)
    operator = commands.add_parser(
        "operator", help="run the Kubernetes operator (kubeconfig or in-cluster config)"
    )
    operator_available = _add_operator_arguments(operator)
    ops_available = True
    for name, help_text in OPS_COMMANDS.items():
        ops_available = _add_ops_arguments(name, commands.add_parser(name, help=help_text))

    args, extra = parser.parse_known_args(argv)
    if args.command in OPS_COMMANDS:
        if not ops_available:
            return _missing_extra("operator")
        if extra:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        from snowflake_operator.ops import run_ops

        return run_ops(args)
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "worker":
        from .worker import run_worker

        return run_worker()
    if args.command == "operator":
        if not operator_available:
            return _missing_extra("operator")
        from snowflake_operator.main import run_operator

        return run_operator(args)
    if not demo_available:
        return _missing_extra("dev")
    from snowflake_operator.local.demo import run_demo

    return run_demo(args)


def _missing_extra(extra: str) -> int:
    print(
        f"error: this command needs the {extra} extra: pip install 'snowflake-processor[{extra}]'",
        file=sys.stderr,
    )
    return 2


def _add_operator_arguments(parser: argparse.ArgumentParser) -> bool:
    try:
        import kopf  # noqa: F401  (the worker image has no operator packages)

        from snowflake_operator.main import add_operator_arguments
    except ImportError:
        return False
    add_operator_arguments(parser)
    return True


def _add_ops_arguments(name: str, parser: argparse.ArgumentParser) -> bool:
    """The ops commands live with the operator's code; the worker image does not have it."""
    if find_spec("rich") is None or find_spec("yaml") is None:  # found, not imported
        return False
    try:
        from snowflake_operator.ops import add_ops_arguments
    except ImportError:
        return False
    add_ops_arguments(name, parser)
    return True


def _add_demo_arguments(parser: argparse.ArgumentParser) -> bool:
    """The demo lives with the operator's code; the worker image does not have it."""
    try:
        from snowflake_operator.local.demo import add_demo_arguments
    except ImportError:
        return False
    add_demo_arguments(parser)
    return True


if __name__ == "__main__":
    sys.exit(main())
