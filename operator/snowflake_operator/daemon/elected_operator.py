"""One operator replica under leader election: stand by until it holds the Lease, then run
kopf while a thread renews the Lease; stop kopf when the Lease is lost.

    standing by   probes and /metrics answer (snowflake_processor_operator_leading 0); no
                  watch, no poll, one Lease read every retry period
    leading       kopf runs: it lists what the indexes need, then each resource's loop polls
    stopping      on SIGTERM kopf's cleanup releases the Lease first (daemon/handlers.py), so a
                  standby takes over at its next try; polls still in flight launch nothing
    lost          the Lease was not renewed within the renew deadline (the API server
                  unreachable, or another replica took it): kopf stops and the process exits
                  1, to be restarted by the kubelet as a standby
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import kopf

from snowflake_operator.daemon import metrics
from snowflake_operator.election.leader_election import (
    Candidate,
    ElectionTiming,
    keep_leading,
    wait_until_leading,
)
from snowflake_operator.election.lease_store import KubeLeaseStore

log = logging.getLogger("snowflake_operator")
SERVICE_ACCOUNT_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
EXIT_LOST = 1
# After losing the Lease kopf is asked to stop; a call hung on an unreachable API server may
# keep it from exiting, so the process exits regardless after this (as client-go's callers
# do at once). Nothing is lost: launches are already fenced off, running Jobs carry on.
LOST_EXIT_SECONDS = 5.0


def replica_identity() -> str:
    """The pod's name (POD_ID, set by the chart) plus a random part: a restarted process is
    a new candidate, never mistaken for the one before it."""
    name = os.environ.get("POD_ID") or socket.gethostname()
    return f"{name}_{uuid.uuid4().hex[:8]}"


def own_namespace() -> str:
    if os.environ.get("POD_NAMESPACE"):
        return os.environ["POD_NAMESPACE"]
    try:
        return SERVICE_ACCOUNT_NAMESPACE.read_text(encoding="utf-8").strip() or "default"
    except OSError:
        return "default"


def run_elected(
    run_kopf: Callable[..., None],
    timing: ElectionTiming,
    *,
    lease_name: str,
    lease_namespace: str | None,
) -> int:
    from .handlers import kubernetes_api, start_services

    memo = kopf.Memo()
    start_services(memo)  # probes and metrics answer while standing by
    namespace = lease_namespace or own_namespace()
    store = KubeLeaseStore(
        kubernetes_api(), namespace, lease_name, request_timeout=timing.retry_seconds * 2
    )
    candidate = Candidate(replica_identity(), store, timing)
    memo.leadership = candidate
    stop = threading.Event()  # SIGTERM while standing by, or the Lease lost while leading
    memo.stop_flag = stop
    lost = threading.Event()
    _stop_on_signals(stop)
    log.info(
        "standing by for the lease",
        extra={"lease": f"{namespace}/{lease_name}", "identity": candidate.identity},
    )
    metrics.LEADING.set(0)
    if not wait_until_leading(candidate, stop):
        log.info("operator stopped while standing by")
        return 0
    # Until kopf installs its own handlers, SIGTERM sets the flag kopf stops on.
    metrics.LEADING.set(1)
    renewing = threading.Event()

    def on_lost() -> None:
        lost.set()
        stop.set()
        timer = threading.Timer(LOST_EXIT_SECONDS, _exit_lost, args=(timing,))
        timer.daemon = True
        timer.start()

    renewer = threading.Thread(
        target=keep_leading, args=(candidate, renewing, on_lost), name="lease", daemon=True
    )
    renewer.start()
    try:
        run_kopf(stop_flag=stop, memo=memo)
    finally:
        renewing.set()
        candidate.step_down()  # done by kopf's cleanup already, unless kopf failed to start
        metrics.LEADING.set(0)
    if lost.is_set():
        _say_lost(timing)
        return EXIT_LOST
    log.info("operator stopped")
    return 0


def _say_lost(timing: ElectionTiming) -> None:
    print(
        "snowflake-processor operator: leader election lost: the lease was not renewed "
        f"within {timing.renew_deadline_seconds:g} s; exiting to stand by again",
        file=sys.stderr,
        flush=True,
    )


def _exit_lost(timing: ElectionTiming) -> None:
    _say_lost(timing)
    os._exit(EXIT_LOST)


def _stop_on_signals(stop: threading.Event) -> None:
    def handle(signum: int, frame: Any) -> None:
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handle)
