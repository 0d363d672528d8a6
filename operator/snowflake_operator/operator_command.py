"""`snowflake-processor operator`: run the kopf operator like any controller."""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from typing import TYPE_CHECKING

from snowflake_worker.logs import configure_json_logging
from snowflake_worker.validation_errors import settings_error_message

if TYPE_CHECKING:
    import kopf


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
    parser.add_argument("--log-level", default="INFO", help="INFO, DEBUG, WARNING (INFO)")


def run_operator(args: argparse.Namespace) -> int:
    import kopf

    from .settings import OperatorSettings

    try:
        OperatorSettings()  # the handlers read them at startup: say what is wrong first
    except ValueError as exc:
        message = settings_error_message(exc, "SFP_OPERATOR_")
        print(f"snowflake-processor operator: {message}", file=sys.stderr)
        return 2
    configure_json_logging(args.log_level)
    if args.log_level.upper() != "DEBUG":
        # kopf logs each handler run at INFO; our own lines say what each poll did.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    importlib.import_module("snowflake_operator.handlers")  # registers the handlers
    kopf.run(
        settings=kopf_settings(namespaced=bool(args.namespace)),
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=args.standalone or args.peering is None,
        peering_name=args.peering,
        # The probes (/healthz, /readyz) are the operator's own: SFP_OPERATOR_HEALTH_PORT.
        liveness_endpoint=None,
    )
    logging.getLogger("snowflake_operator").info("operator stopped")
    return 0


def kopf_settings(*, namespaced: bool) -> kopf.OperatorSettings:
    """kopf's settings before startup (the startup handler adds the rest). Watching given
    namespaces, the operator has no RBAC to list namespaces or CRDs (docs/security.md):
    kopf's dynamic scanning is off, so it does not retry those lists with error lines at
    every start; it serves the namespaces given and the CRD as found at startup."""
    import kopf

    settings = kopf.OperatorSettings()
    settings.scanning.disabled = namespaced
    return settings
