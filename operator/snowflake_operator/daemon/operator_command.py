"""`snowflake-processor operator`: run the kopf operator like any controller.

With ``--leader-elect`` (what the chart runs) every replica is a candidate for one
coordination.k8s.io Lease and only its holder runs kopf (election/leader_election.py); the others
stand by, answering their probes and scrapes, until the holder stops or goes silent.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from functools import partial
from typing import TYPE_CHECKING

from snowflake_operator.command_arguments import add_log_level_argument
from snowflake_operator.election.leader_election import ElectionTiming
from snowflake_operator.kube.development import add_development_arguments
from snowflake_worker.logs import configure_json_logging
from snowflake_worker.validation_errors import settings_error_message

if TYPE_CHECKING:
    import kopf

DEFAULT_LEASE_NAME = "snowflake-processor-operator"


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be more than 0 seconds")
    return value


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
    timing = ElectionTiming()
    election = parser.add_argument_group(
        "leader election (more than one replica: only the Lease's holder acts)"
    )
    election.add_argument(
        "--leader-elect",
        action="store_true",
        help="act only while holding a coordination.k8s.io Lease (the chart sets it); "
        "without it this process acts alone",
    )
    election.add_argument(
        "--leader-elect-resource-name",
        default=DEFAULT_LEASE_NAME,
        metavar="NAME",
        help=f"the Lease's name ({DEFAULT_LEASE_NAME})",
    )
    election.add_argument(
        "--leader-elect-resource-namespace",
        default=None,
        metavar="NAMESPACE",
        help="the Lease's namespace (default: $POD_NAMESPACE, else the service account's "
        "namespace in a pod, else default)",
    )
    election.add_argument(
        "--leader-elect-lease-duration",
        type=_seconds,
        default=timing.lease_seconds,
        metavar="SECONDS",
        help="a standby takes the Lease after seeing it unrenewed this long "
        f"({timing.lease_seconds:g})",
    )
    election.add_argument(
        "--leader-elect-renew-deadline",
        type=_seconds,
        default=timing.renew_deadline_seconds,
        metavar="SECONDS",
        help="the holder stops acting when it could not renew for this long, less than the "
        f"lease duration ({timing.renew_deadline_seconds:g})",
    )
    election.add_argument(
        "--leader-elect-retry-period",
        type=_seconds,
        default=timing.retry_seconds,
        metavar="SECONDS",
        help=f"how often the holder renews and a standby tries ({timing.retry_seconds:g})",
    )
    # Charts before leader election passed --standalone (one replica, no kopf peering):
    # still accepted, and it means what it meant, the default without --leader-elect.
    parser.add_argument("--standalone", action="store_true", help=argparse.SUPPRESS)
    add_log_level_argument(parser, "INFO")
    add_development_arguments(parser)


def election_timing(args: argparse.Namespace) -> ElectionTiming:
    return ElectionTiming(
        lease_seconds=args.leader_elect_lease_duration,
        renew_deadline_seconds=args.leader_elect_renew_deadline,
        retry_seconds=args.leader_elect_retry_period,
    )


def run_operator(args: argparse.Namespace) -> int:
    import kopf

    from snowflake_operator.spec.operator_settings import OperatorSettings

    try:
        OperatorSettings()  # the handlers read them at startup: say what is wrong first
    except ValueError as exc:
        message = settings_error_message(exc, "SFP_OPERATOR_")
        print(f"snowflake-processor operator: {message}", file=sys.stderr)
        return 2
    problem = cluster_problem()
    if problem is not None:
        print(f"snowflake-processor operator: {problem}", file=sys.stderr)
        return 2
    timing = election_timing(args)
    problem = timing.problem() if args.leader_elect else None
    if problem is not None:
        print(f"snowflake-processor operator: leader election: {problem}", file=sys.stderr)
        return 2
    configure_json_logging(args.log_level)
    if args.development_emulator_login:
        from snowflake_operator.kube.development import allow_emulator_login

        allow_emulator_login()
    if args.log_level.upper() != "DEBUG":
        # kopf logs each handler run at INFO; our own lines say what each poll did.
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    importlib.import_module("snowflake_operator.daemon.handlers")  # registers the handlers
    run_kopf = partial(
        kopf.run,
        settings=kopf_settings(namespaced=bool(args.namespace)),
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        # Replicas are coordinated by the Lease, not by kopf's peering.
        standalone=True,
        # The probes (/healthz, /readyz) are the operator's own: SFP_OPERATOR_HEALTH_PORT.
        liveness_endpoint=None,
    )
    if args.leader_elect:
        from .elected_operator import run_elected

        return run_elected(
            run_kopf,
            timing,
            lease_name=args.leader_elect_resource_name,
            lease_namespace=args.leader_elect_resource_namespace,
        )
    run_kopf()
    logging.getLogger("snowflake_operator").info("operator stopped")
    return 0


def cluster_problem() -> str | None:
    """Why no cluster can be reached as kubectl would (no kubeconfig and not in a pod), or
    None: said at once instead of kopf retrying its login for ever."""
    from snowflake_operator.kube.client_config import (
        cluster_reachable_as_kubectl_would,
        kube_client,
    )
    from snowflake_worker.errors import ConfigError

    if not cluster_reachable_as_kubectl_would():
        return (
            "no cluster to watch: set KUBECONFIG or create ~/.kube/config (as for kubectl), "
            "or run it in a pod"
        )
    try:
        kube_client(None, None)
    except ConfigError as exc:
        return str(exc)
    return None


def kopf_settings(*, namespaced: bool) -> kopf.OperatorSettings:
    """kopf's settings before startup (the startup handler adds the rest). Watching given
    namespaces, the operator has no RBAC to list namespaces or CRDs (docs/security.md):
    kopf's dynamic scanning is off, so it does not retry those lists with error lines at
    every start; it serves the namespaces given and the CRD as found at startup."""
    import kopf

    settings = kopf.OperatorSettings()
    settings.scanning.disabled = namespaced
    return settings
