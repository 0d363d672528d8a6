"""kopf handlers: thin adapters that gather inputs, call the reconcile core, apply results.

Loaded by `snowflake-processor operator` (and by tests through kopf's runner). Every
resource gets a timer that wakes every SFP_OPERATOR_TICK_SECONDS and polls when its
spec.pollIntervalSeconds (or its error backoff) has passed; blocking Snowflake, S3 and
Kubernetes calls run in a thread so one slow resource never stalls the others.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes import client, config
from pydantic import ValidationError

from snowflake_worker.connection import AuthMode, connect
from snowflake_worker.queue import QueueClient

from . import metrics
from .certificates_flow import ensure_certificates
from .job_index import (
    COUNTED_ANNOTATION,
    JobRecord,
    fold_summaries,
    job_record,
    jobs_beyond_history,
    termination_message,
    unfinished_names,
)
from .jobs import GROUP, PLURAL, PROCESSOR_LABEL, VERSION, ProcessorRef
from .kube import KubeJobBackend, delete_job, mark_job_counted, read_secret, secret_value
from .operator_config import OperatorConfig
from .processor_state import ProcessorState, connection_key
from .reconcile import Condition, merge_conditions
from .spec import ProcessorSpec
from .tick import reconcile_once

log = logging.getLogger("snowflake_operator")
CONFIG = OperatorConfig()


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
    metrics.serve(CONFIG.metrics_port)


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


@dataclass
class TickOutput:
    status: dict[str, Any]
    events: list[tuple[str, str, str]] = field(default_factory=list)


@kopf.timer(GROUP, VERSION, PLURAL, interval=CONFIG.tick_seconds)
async def reconcile(
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
    state: ProcessorState = memo.setdefault("state", ProcessorState())
    clock = time.monotonic()
    if not state.due(clock):
        return
    now = datetime.now(UTC)
    previous_conditions = list(status.get("conditions") or [])
    try:
        model = ProcessorSpec.model_validate(dict(spec))
    except ValidationError as exc:
        state.schedule(clock, 30, CONFIG.max_backoff_seconds, failed=True)
        message = _validation_message(exc)
        _post(body, state, ("Warning", "InvalidSpec", message), clock)
        patch.status["conditions"] = merge_conditions(
            previous_conditions, [_invalid_spec_condition(message)], now
        )
        return
    assert processor_jobs is not None and worker_summaries is not None
    records = list(processor_jobs.get((namespace, name), []))
    summaries = {
        r.name: next((m for m in worker_summaries.get((namespace, r.name), []) if m), None)
        for r in records
        if r.finished and not r.counted
    }
    totals = dict(status.get("totals") or {})
    processor = ProcessorRef(name, namespace, uid)
    try:
        output = await asyncio.to_thread(
            _tick, memo.api, processor, model, state, records, now, summaries, totals
        )
    except Exception as exc:  # e.g. the API server refused a Job: report, back off, go on
        message = f"{type(exc).__name__}: {exc}".splitlines()[0][:500]
        log.warning("poll failed", extra={"processor": f"{namespace}/{name}", "error": message})
        state.schedule(clock, model.poll_interval_seconds, CONFIG.max_backoff_seconds, True)
        _post(body, state, ("Warning", "ReconcileFailed", message), clock)
        condition = Condition("Ready", False, "ReconcileFailed", message)
        patch.status["conditions"] = merge_conditions(previous_conditions, [condition], now)
        return
    failed = output.status.get("_failed", False)
    output.status.pop("_failed", None)
    state.schedule(clock, model.poll_interval_seconds, CONFIG.max_backoff_seconds, failed)
    conditions = output.status.pop("conditions")
    patch.status.update(output.status)
    patch.status["conditions"] = merge_conditions(previous_conditions, conditions, now)
    patch.status["observedGeneration"] = meta.get("generation")
    for event in output.events:
        _post(body, state, event, clock)


def _tick(
    api: client.ApiClient,
    processor: ProcessorRef,
    spec: ProcessorSpec,
    state: ProcessorState,
    records: list[JobRecord],
    now: datetime,
    summaries: dict[str, str | None],
    totals: dict[str, int],
) -> TickOutput:
    """One poll, blocking I/O allowed: certificates, Snowflake, Jobs."""
    started = time.monotonic()
    certificates = ensure_certificates(
        api, processor, spec, state, now, s3_endpoint_url=CONFIG.s3_endpoint_url
    )
    queue, connect_error = (None, None) if spec.suspend else _queue(api, processor, spec, state)
    all_names = {r.name for r in records}
    unfinished = state.unfinished_with_launches(
        unfinished_names(records), all_names, time.monotonic()
    )
    backend = KubeJobBackend(
        api,
        processor,
        image=spec.job.image or CONFIG.worker_image,
        certificates_secret=certificates.secret_name,
        unfinished=unfinished,
    )
    result = reconcile_once(
        processor.name,
        spec,
        queue,
        backend,
        now,
        certificates_ready=certificates.ready,
        certificates_message=certificates.message,
        snowflake_error=connect_error,
        idle_gate=state.idle,
    )
    for job in result.launched:
        state.launched[job] = time.monotonic()
    if result.observation.counts is None and not spec.suspend:
        state.drop_connection()  # reconnect on the next poll
    folded = fold_summaries(records, summaries, now)
    for job in folded.counted_jobs:
        mark_job_counted(api, processor.namespace, job, COUNTED_ANNOTATION)
    counted = {r.name for r in records if r.counted} | set(folded.counted_jobs)
    for job in jobs_beyond_history(
        [r for r in records if r.name in counted],  # never delete a summary not yet counted
        spec.job.successful_jobs_history_limit,
        spec.job.failed_jobs_history_limit,
    ):
        delete_job(api, processor.namespace, job)
    status = dict(result.plan.status)
    status["totals"] = {
        "completed": int(totals.get("completed") or 0) + folded.completed,
        "failed": int(totals.get("failed") or 0) + folded.failed,
    }
    if certificates.status:
        status["certificates"] = certificates.status
    status["conditions"] = result.plan.conditions
    failed = (result.observation.counts is None and not spec.suspend) or not certificates.ready
    status["_failed"] = failed
    check = state.certificates_check
    running = sum(1 for r in records if r.running)
    metrics.record_poll(
        processor.namespace,
        processor.name,
        counts=result.observation.counts,
        recovery=result.observation.recovery,
        running_jobs=running,
        pending_jobs=max(0, len(backend.unfinished) - running),
        launched=len(result.launched),
        statements=state.new_statements(),
        seconds=time.monotonic() - started,
        now=time.time(),
        certificate_expiry=None if check is None else check.not_after.timestamp(),
        suspended=spec.suspend,
        idle=result.observation.idle,
    )
    return TickOutput(status, certificates.events + result.plan.events)


@kopf.on.event(GROUP, VERSION, PLURAL)
def forget_deleted(event: Any, name: Any, namespace: Any, memo: Any, **_: Any) -> None:
    """Jobs and Secrets go with their owner (ownerReferences); drop what we hold. (kopf
    puts a finalizer on resources with timers: delete them while the operator runs.)"""
    if event.get("type") == "DELETED":
        state = memo.get("state")
        if isinstance(state, ProcessorState):
            state.drop_connection()
        metrics.forget(namespace, name)


def _queue(
    api: client.ApiClient, processor: ProcessorRef, spec: ProcessorSpec, state: ProcessorState
) -> tuple[QueueClient | None, str | None]:
    """The operator's own connection, kept between polls and rebuilt when the spec or
    the credentials change. Returns (queue, None) or (None, why not)."""
    try:
        secrets = _snowflake_secrets(api, processor.namespace, spec)
        key = connection_key(spec.snowflake.model_dump(mode="json"), secrets)
        if state.queue is None or state.connection_key != key:
            state.drop_connection()
            state.connection = connect(spec.snowflake.connection_settings(**secrets))
            state.queue = QueueClient(state.connection, spec.snowflake.table_ref)
            state.connection_key = key
        return state.queue, None
    except Exception as exc:
        state.drop_connection()
        return None, (str(exc).strip().splitlines() or [type(exc).__name__])[0][:300]


def _snowflake_secrets(
    api: client.ApiClient, namespace: str, spec: ProcessorSpec
) -> dict[str, str]:
    """Key-pair or password material from Secret references; never logged or reported."""
    auth = spec.snowflake.auth
    wanted = {
        "private_key_pem": auth.private_key_secret if auth.mode is AuthMode.KEY_PAIR else None,
        "private_key_passphrase": (
            auth.private_key_passphrase_secret if auth.mode is AuthMode.KEY_PAIR else None
        ),
        "password": auth.password_secret if auth.mode is AuthMode.PASSWORD else None,
    }
    values: dict[str, str] = {}
    for field_name, ref in wanted.items():
        if ref is None:
            continue
        secret = read_secret(api, namespace, ref.name)
        value = None if secret is None else secret_value(secret, ref.key)
        if value is None:
            raise LookupError(f"Secret {ref.name} has no key {ref.key}")
        values[field_name] = value
    return values


def _post(body: kopf.Body, state: ProcessorState, event: tuple[str, str, str], now: float) -> None:
    kind, reason, message = event
    if kind == "Normal" or state.should_post(reason, message, now, CONFIG.event_repeat_seconds):
        kopf.event(body, type=kind, reason=reason, message=message)


def _validation_message(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        location = ".".join(str(p) for p in error["loc"])
        parts.append(f"spec.{location}: {error['msg'].removeprefix('Value error, ')}")
    return "; ".join(parts)[:500]


def _invalid_spec_condition(message: str) -> Condition:
    return Condition("Ready", False, "InvalidSpec", message)
