"""`snowflake-processor operator`: run the kopf operator like any controller."""

from __future__ import annotations

import argparse
import importlib
import logging

from snowflake_worker.logs import configure_json_logging


def add_operator_arguments(parser: argparse.ArgumentParser) -> None:
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "--namespace",
        action="append",
        default=[],
        help="watch this namespace (repeatable); the default is the whole cluster",
    )
    scope.add_argument(
        "--all-namespaces", action="store_true", help="watch the whole cluster (the default)"
    )
    parser.add_argument(
        "--standalone",
        action="store_true",
        help="no peering: run as the only replica without the peering resource",
    )
    parser.add_argument(
        "--peering", default=None, help="kopf peering name, for more than one replica"
    )
    parser.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        help="liveness endpoint for the kubelet's probe (http://0.0.0.0:8080/healthz)",
    )
    parser.add_argument("--log-level", default="INFO", help="INFO, DEBUG, WARNING (INFO)")


def run_operator(args: argparse.Namespace) -> int:
    import kopf

    configure_json_logging(args.log_level)
    if args.log_level.upper() != "DEBUG":
        # kopf logs every timer run at INFO ("Timer 'reconcile' succeeded"): every few
        # seconds per resource. Our own lines say what each poll did.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    importlib.import_module("snowflake_operator.handlers")  # registers the handlers
    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=args.standalone or args.peering is None,
        peering_name=args.peering,
        liveness_endpoint=args.liveness or None,
    )
    logging.getLogger("snowflake_operator").info("operator stopped")
    return 0
