"""`snowflake-processor reconcile-once`: its arguments (the run itself, cronjob/reconcile_once.py,
loads the Kubernetes client only when the command runs)."""

from __future__ import annotations

import argparse
from pathlib import Path

from snowflake_operator.command_arguments import add_log_level_argument
from snowflake_operator.kube.development import add_development_arguments


def add_reconcile_once_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "One poll of one processor, as the operator polls a SnowflakeProcessor, for clusters "
        "without the CRD: the chart's mode cronjob runs it every minute. Status in the "
        "ConfigMap NAME-status; exit 0 when the poll ran, 1 when it failed, 2 on bad input."
    )
    parser.add_argument(
        "name",
        metavar="NAME",
        help="the processor: its Jobs are labelled with it, its status is the ConfigMap "
        "NAME-status",
    )
    parser.add_argument(
        "--spec",
        type=Path,
        required=True,
        metavar="FILE",
        help="its spec as YAML: the fields of a SnowflakeProcessor's spec, or a whole resource",
    )
    parser.add_argument(
        "-n",
        "--namespace",
        default=None,
        help="namespace (default: the pod's own, or the kubeconfig context's)",
    )
    parser.add_argument(
        "--owner-configmap",
        default=None,
        metavar="CONFIGMAP",
        help="the ConfigMap that owns the processor's Jobs and certificates Secret "
        "(deleting it deletes them; default NAME-spec)",
    )
    parser.add_argument("--context", default=None, help="kubeconfig context")
    parser.add_argument("--kubeconfig", type=Path, default=None, help="kubeconfig file")
    add_log_level_argument(parser, "WARNING")
    add_development_arguments(parser)


def run_reconcile_once(args: argparse.Namespace) -> int:
    from snowflake_operator.kube.development import allow_emulator_login

    from .reconcile_once import reconcile_once

    allow_emulator_login(args.development_emulator_login)
    return reconcile_once(args)
