"""The `snowflake-processor` command: one entry point, one registry of subcommands.

Imports flow downwards only: this module may import the operator and the worker, never
the development tools. Commands that live elsewhere (``demo`` in the devtools
distribution) register themselves under the entry-point group ``snowflake_processor.commands``
and are found at run time; a missing one is reported with the install hint.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # only for annotations: this module imports the operator lazily
    from snowflake_operator.ops.command import OpsCommand

PLUGIN_GROUP = "snowflake_processor.commands"


@dataclass(frozen=True)
class Command:
    """A subcommand: its help line, how it adds its arguments, and how it runs."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]


# Commands provided by other distributions, with the hint shown when they are missing.
KNOWN_PLUGINS = {
    "demo": (
        "run the whole pipeline on this machine against local emulators",
        "the demo is part of the development tools: run `make demo` in a clone of the "
        "repository (it installs them), or pip install -e devtools",
    ),
}


def _worker_command() -> Command:
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.description = "Run one Job: claim entries and call the service."

    def run(args: argparse.Namespace) -> int:
        from snowflake_worker.worker import run_worker

        return run_worker()

    return Command(
        "worker",
        "run one Job: claim entries and call the service (config: SFP_* environment)",
        add_arguments,
        run,
    )


def _operator_command() -> Command:
    from snowflake_operator.operator_command import add_operator_arguments, run_operator

    return Command(
        "operator",
        "run the Kubernetes operator (kubeconfig or in-cluster config)",
        add_operator_arguments,
        run_operator,
    )


def _ops_commands() -> list[Command]:
    from snowflake_operator.ops.registry import OPS_COMMANDS

    return [_ops_command(ops_command) for ops_command in OPS_COMMANDS]


def _ops_command(ops_command: OpsCommand) -> Command:
    def run(args: argparse.Namespace) -> int:
        from snowflake_operator.ops.runner import run_command

        return run_command(ops_command, args)

    return Command(ops_command.name, ops_command.help, ops_command.add_arguments, run)


def builtin_commands() -> list[Command]:
    return [_worker_command(), _operator_command(), *_ops_commands()]


def plugin_commands() -> list[Command]:
    """Commands other installed distributions register (the demo, from devtools)."""
    commands = []
    for entry in entry_points(group=PLUGIN_GROUP):
        command = entry.load()
        if isinstance(command, Command):
            commands.append(command)
    return commands


def build_parser(commands: Sequence[Command]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snowflake-processor",
        description="Drain a Snowflake work-queue table with Kubernetes Jobs.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    present = {command.name for command in commands}
    for command in commands:
        command.add_arguments(subparsers.add_parser(command.name, help=command.help))
    for name, (help_text, _) in KNOWN_PLUGINS.items():
        if name not in present:  # listed in --help, explained when run
            subparsers.add_parser(name, help=f"{help_text} (not installed)", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    commands = [*builtin_commands(), *plugin_commands()]
    parser = build_parser(commands)
    args, extra = parser.parse_known_args(argv)
    by_name = {command.name: command for command in commands}
    if args.command not in by_name:
        print(f"error: {KNOWN_PLUGINS[args.command][1]}", file=sys.stderr)
        return 2
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return by_name[args.command].run(args)


if __name__ == "__main__":
    sys.exit(main())
