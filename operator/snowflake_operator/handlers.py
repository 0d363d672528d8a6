"""kopf handlers: thin adapters that gather a resource's inputs and run its poll.

Loaded by `snowflake-processor operator` (and by tests through kopf's runner). Every
resource gets a timer that wakes every SFP_OPERATOR_TICK_SECONDS and polls when its
spec.pollIntervalSeconds (or its error backoff) has passed. The poll itself (poll.py)
runs in a thread, so one slow resource never stalls the others.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes import client, config
from pydantic import ValidationError

from snowflake_worker.errors import one_line
from snowflake_worker.validation_errors import spec_location, validation_problems

from . import metrics
from .constants import GROUP, PLURAL, PROCESSOR_LABEL, VERSION
from .job_history import JobRecord, job_record, termination_message
from .kube_edges import kube_poll_edges
from .planning import Condition, merge_conditions
from .poll import PollEdges, PollResult, run_poll
from .processor_ref import ProcessorRef
from .processor_state import ProcessorState
from .settings import OperatorSettings
from .spec import ProcessorSpec

log = logging.getLogger("snowflake_operator")
# Read at import only for the timer's wake-up interval (a decorator argument); everything
# else reads memo.settings, made at startup.
TICK_SECONDS = OperatorSettings().tick_seconds


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # our own events say what happens
    settings.watching.server_timeout = 300
    settings.execution.max_workers = 32
    # With peering (more than one replica), replicas of equal priority all pause: give
    # each its own, so the highest one works and the others stand by.
    settings.peering.priority = random.randint(1, 1_000_000)  # noqa: S311
    memo.api = _kubernetes_api()
    memo.settings = OperatorSettings()  # read when the operator starts, not at import
    metrics.serve(memo.settings.metrics_port)


def _kubernetes_api() -> client.ApiClient:
    """In the cluster: the pod's service account; elsewhere: KUBECONFIG, like kubectl."""
    configuration = client.Configuration()
    try:
        config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
    return client.ApiClient(configuration)


@kopf.index("batch", "v1", "jobs", labels={PROCESSOR_LABEL: kopf.PRESENT})
def processor_jobs(
    *, name: Any, namespace: Any, meta: Any, status: Any, labels: Any, **_: Any
) -> dict[tuple[str, str], JobRecord]:
    """Watch-backed: every Job of every processor, with whether it has finished."""
    return {(namespace, labels[PROCESSOR_LABEL]): job_record(name, meta, status)}


@kopf.index("", "v1", "pods", labels={PROCESSOR_LABEL: kopf.PRESENT})
def worker_summaries(
    *, namespace: Any, labels: Any, status: Any, **_: Any
) -> dict[tuple[str, str], str | None]:
    """Watch-backed: each worker pod's termination message (its JSON summary), by Job."""
    job = labels.get("job-name")
    return {(namespace, job): termination_message(status)} if job else {}


@kopf.timer(GROUP, VERSION, PLURAL, interval=TICK_SECONDS)
async def poll_when_due(
    *,
    name: Any,
    namespace: Any,
    uid: Any,
    body: Any,
    spec: Any,
    status: Any,
    meta: Any,
    patch: Any,
    memo: Any,
    processor_jobs: kopf.Index[tuple[str, str], JobRecord] | None = None,  # kopf injects it
    worker_summaries: kopf.Index[tuple[str, str], str | None] | None = None,
    **_: Any,
) -> None:
    """Wakes every SFP_OPERATOR_TICK_SECONDS; polls when spec.pollIntervalSeconds (or
    the error backoff) has passed."""
    state: ProcessorState = memo.setdefault("state", ProcessorState())
    settings: OperatorSettings = memo.settings
    clock = time.monotonic()
    if not state.due(clock):
        return
    now = datetime.now(UTC)
    previous_conditions = list(status.get("conditions") or [])
    try:
        model = ProcessorSpec.model_validate(dict(spec))
    except ValidationError as exc:
        state.schedule(clock, 30, settings.max_backoff_seconds, failed=True)
        message = one_line(validation_problems(exc, spec_location), limit=500)
        _post(body, state, ("Warning", "InvalidSpec", message), clock, settings)
        condition = Condition("Ready", False, "InvalidSpec", message)
        patch.status["conditions"] = merge_conditions(previous_conditions, [condition], now)
        return
    assert processor_jobs is not None and worker_summaries is not None
    records = list(processor_jobs.get((namespace, name), []))
    summaries = {
        r.name: next((m for m in worker_summaries.get((namespace, r.name), []) if m), None)
        for r in records
        if r.finished and not r.counted
    }
    edges = kube_poll_edges(
        memo.api,
        ProcessorRef(name, namespace, uid),
        state,
        image=model.job.image or settings.worker_image,
        records=records,
        summaries=summaries,
        s3_endpoint_url=settings.s3_endpoint_url,
        idle_gate=state.idle,
    )
    totals = dict(status.get("totals") or {})
    try:
        result = await asyncio.to_thread(run_poll, name, model, edges, now, totals)
    except Exception as exc:  # e.g. the API server refused a Job: report, back off, go on
        message = one_line(f"{type(exc).__name__}: {exc}", limit=500)
        log.warning("poll failed", extra={"processor": f"{namespace}/{name}", "error": message})
        state.schedule(clock, model.poll_interval_seconds, settings.max_backoff_seconds, True)
        _post(body, state, ("Warning", "ReconcileFailed", message), clock, settings)
        condition = Condition("Ready", False, "ReconcileFailed", message)
        patch.status["conditions"] = merge_conditions(previous_conditions, [condition], now)
        return
    state.schedule(clock, model.poll_interval_seconds, settings.max_backoff_seconds, result.failed)
    patch.status.update(result.status)
    patch.status["conditions"] = merge_conditions(previous_conditions, result.conditions, now)
    patch.status["observedGeneration"] = meta.get("generation")
    record_poll_metrics(namespace, name, model, state, records, edges, result)
    for event in result.events:
        _post(body, state, event, clock, settings)


def record_poll_metrics(
    namespace: str,
    name: str,
    spec: ProcessorSpec,
    state: ProcessorState,
    records: list[JobRecord],
    edges: PollEdges,
    result: PollResult,
) -> None:
    check = state.certificates_check
    running = sum(1 for r in records if r.running)
    metrics.record_poll(
        namespace,
        name,
        counts=result.observation.counts,
        recovery=result.observation.recovery,
        running_jobs=running,
        pending_jobs=max(0, edges.jobs.unfinished_count() - running),
        launched=len(result.launched),
        statements=state.new_statements(),
        seconds=result.seconds,
        now=time.time(),
        certificate_expiry=None if check is None else check.not_after.timestamp(),
        suspended=spec.suspend,
        idle=result.observation.idle,
    )


@kopf.on.event(GROUP, VERSION, PLURAL)
def forget_deleted(event: Any, name: Any, namespace: Any, memo: Any, **_: Any) -> None:
    """Jobs and Secrets go with their owner (ownerReferences); drop what we hold. (kopf
    puts a finalizer on resources with timers: delete them while the operator runs.)"""
    if event.get("type") == "DELETED":
        state = memo.get("state")
        if isinstance(state, ProcessorState):
            state.drop_connection()
        metrics.forget(namespace, name)


def _post(
    body: kopf.Body,
    state: ProcessorState,
    event: tuple[str, str, str],
    now: float,
    settings: OperatorSettings,
) -> None:
    kind, reason, message = event
    if kind == "Normal" or state.should_post(reason, message, now, settings.event_repeat_seconds):
        kopf.event(body, type=kind, reason=reason, message=message)
