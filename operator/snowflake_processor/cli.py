# PYTHON_ARGCOMPLETE_OK (argcomplete's marker: this command completes itself)
"""The `snowflake-processor` command: one entry point, one registry of subcommands.

The same command is the kubectl plugin `kubectl sfp` (the `kubectl-sfp` script on PATH) and
completes itself in bash, zsh and fish through argcomplete (docs/ops-cli.md, "Shell
completion"); `kubectl_complete-sfp` answers kubectl's own completion of `kubectl sfp`.

Imports flow downwards only: this module may import the operator and the worker, never
the development tools. Commands that live elsewhere (``demo`` in the devtools
distribution) register themselves under the entry-point group ``snowflake_processor.commands``
and are found at run time; a missing one is reported with the install hint.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # only for annotations: this module imports the operator lazily
    from snowflake_operator.ops.command import OpsCommand, OpsGroup

PLUGIN_GROUP = "snowflake_processor.commands"
DISTRIBUTION = "snowflake-processor"
PROG = "snowflake-processor"
KUBECTL_PROG = "kubectl sfp"  # what kubectl users type: kubectl finds kubectl-sfp on PATH


@dataclass(frozen=True)
class Command:
    """A subcommand: its help line, how it adds its arguments, and how it runs."""

    name: str
    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace], int]
    add_help: bool = True  # False: the command adds its own -h/--help


# Commands provided by other distributions, with the hint shown when they are missing.
KNOWN_PLUGINS = {
    "demo": (
        "run the whole pipeline on this machine against local emulators",
        "the demo is part of the development tools: run `make demo` in a clone of the "
        "repository (it installs them), or pip install -e devtools",
    ),
}


class _WorkerHelpAction(argparse.Action):
    """`worker --help`: the worker's own help, every SFP_* variable with its default and
    meaning (read from its settings models only when asked for)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from snowflake_worker.__main__ import help_text

        print(help_text(), end="")
        parser.exit()


def _worker_command() -> Command:
    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.description = "Run one Job: claim entries and call the service."
        parser.add_argument(
            "-h", "--help", action=_WorkerHelpAction, help="every SFP_* variable, and exit"
        )

    def run(args: argparse.Namespace) -> int:
        from snowflake_worker.worker import run_worker

        return run_worker()

    return Command(
        "worker",
        "run one Job: claim entries and call the service (config: SFP_* environment)",
        add_arguments,
        run,
        add_help=False,
    )


def _operator_command() -> Command:
    from snowflake_operator.daemon.operator_command import add_operator_arguments, run_operator

    return Command(
        "operator",
        "run the Kubernetes operator (kubeconfig or in-cluster config)",
        add_operator_arguments,
        run_operator,
    )


def _reconcile_once_command() -> Command:
    from snowflake_operator.cronjob.command import (
        add_reconcile_once_arguments,
        run_reconcile_once,
    )

    return Command(
        "reconcile-once",
        "one poll of one processor from a spec file, for clusters without the CRD "
        "(the chart's CronJob mode)",
        add_reconcile_once_arguments,
        run_reconcile_once,
    )


def _ops_commands() -> list[Command]:
    from snowflake_operator.ops.registry import OPS_COMMANDS, OPS_GROUPS

    return [
        *(_ops_command(ops_command) for ops_command in OPS_COMMANDS),
        *(_ops_group(group) for group in OPS_GROUPS),
    ]


def _ops_command(ops_command: OpsCommand) -> Command:
    def run(args: argparse.Namespace) -> int:
        from snowflake_operator.ops.runner import run_command

        return run_command(ops_command, args)

    return Command(ops_command.name, ops_command.help, ops_command.add_arguments, run)


def _ops_group(group: OpsGroup) -> Command:
    """A command with subcommands of its own: `sql render`, `sql apply`."""
    by_name = {command.name: command for command in group.commands}

    def add_arguments(parser: argparse.ArgumentParser) -> None:
        parser.description = group.help
        subparsers = parser.add_subparsers(dest="subcommand", required=True, metavar="SUBCOMMAND")
        for command in group.commands:
            command.add_arguments(subparsers.add_parser(command.name, help=command.help))

    def run(args: argparse.Namespace) -> int:
        from snowflake_operator.ops.runner import run_command

        return run_command(by_name[args.subcommand], args)

    return Command(group.name, group.help, add_arguments, run)


def builtin_commands() -> list[Command]:
    return [_worker_command(), _operator_command(), _reconcile_once_command(), *_ops_commands()]


def plugin_commands() -> list[Command]:
    """Commands other installed distributions register (the demo, from devtools)."""
    commands = []
    for entry in entry_points(group=PLUGIN_GROUP):
        command = entry.load()
        if isinstance(command, Command):
            commands.append(command)
    return commands


class _VersionAction(argparse.Action):
    """--version: the installed distribution's version, looked up only when asked for."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser: argparse.ArgumentParser, *args: Any, **kwargs: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        try:
            installed = version(DISTRIBUTION)
        except PackageNotFoundError:  # run from a source tree that was never installed
            installed = "unknown (not installed)"
        print(f"{parser.prog} {installed}")
        parser.exit()


def kubectl_commands() -> list[Command]:
    """What `kubectl sfp` offers: the ops commands, which work on processors in a cluster.
    Running a worker, the operator or the demo is not kubectl's business."""
    return _ops_commands()


def commands_for(prog: str) -> list[Command]:
    if prog == KUBECTL_PROG:
        return kubectl_commands()
    return [*builtin_commands(), *plugin_commands()]


def build_parser(commands: Sequence[Command], prog: str = PROG) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description="Drain a Snowflake work-queue table with Kubernetes Jobs.",
    )
    parser.add_argument(
        "--version", action=_VersionAction, help="print the installed version and exit"
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    present = {command.name for command in commands}
    for command in commands:
        subparser = subparsers.add_parser(
            command.name, help=command.help, add_help=command.add_help
        )
        command.add_arguments(subparser)
    for name, (help_text, _) in KNOWN_PLUGINS.items():
        if name not in present and prog != KUBECTL_PROG:  # listed in --help, explained when run
            subparsers.add_parser(name, help=f"{help_text} (not installed)", add_help=False)
    return parser


def main(argv: Sequence[str] | None = None, prog: str = PROG) -> int:
    commands = commands_for(prog)
    parser = build_parser(commands, prog)
    if "_ARGCOMPLETE" in os.environ:  # a shell asks for completions: answer, then exit
        from .completion import complete

        complete(parser)
    args, extra = parser.parse_known_args(argv)
    by_name = {command.name: command for command in commands}
    if args.command not in by_name:
        print(f"error: {KNOWN_PLUGINS[args.command][1]}", file=sys.stderr)
        return 2
    if extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return by_name[args.command].run(args)


def kubectl_plugin_main() -> int:
    """`kubectl-sfp`: the same command, named as kubectl users call it."""
    return main(prog=KUBECTL_PROG)


def kubectl_complete_main() -> int:
    """`kubectl_complete-sfp`: what kubectl (1.26+) runs to complete `kubectl sfp ...`."""
    from .completion import complete_for_kubectl

    return complete_for_kubectl(
        build_parser(commands_for(KUBECTL_PROG), KUBECTL_PROG), sys.argv[1:]
    )


if __name__ == "__main__":
    sys.exit(main())
