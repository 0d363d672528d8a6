"""The life of one SnowflakeProcessor in the operator: sleep until its poll is due (or its
spec changes), admit it, poll it, record the outcome.

kopf runs one loop per resource (daemon/handlers.py, a daemon). Nothing wakes while no poll is
due: a hundred idle resources polled every minute cost a hundred polls a minute and no
wake-up in between. Recording writes the status only when it changed or the heartbeat is
due (poll/status_write.py), so an idle poll writes nothing to the API server.

    1. admit     a valid spec, allowed references, the table to itself (spec/admission.py)
    2. poll      poll.run_poll in a thread, with the cluster's edges (kube/edges.py)
    3. record    conditions merged, the status written when due, events posted
    4. schedule  the next poll after spec.pollIntervalSeconds, or later after errors
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes import client

from snowflake_operator.daemon import metrics
from snowflake_operator.kube.api import patch_processor_status
from snowflake_operator.kube.edges import always_leading, kube_poll_edges
from snowflake_operator.kube.processor_ref import ProcessorRef
from snowflake_operator.kube.processor_state import ProcessorState
from snowflake_operator.poll.job_count import job_limit
from snowflake_operator.poll.job_history import JobRecord, best_summary
from snowflake_operator.poll.planning import Condition, merge_conditions
from snowflake_operator.poll.run import PollEdges, PollResult, run_poll
from snowflake_operator.poll.status_write import HEARTBEAT_FIELD, write_due
from snowflake_operator.spec.admission import DUPLICATE_TABLE, Refusal, admit
from snowflake_operator.spec.fields import UNKNOWN_FIELDS, unknown_fields_message
from snowflake_operator.spec.model import ProcessorSpec
from snowflake_operator.spec.operator_settings import OperatorSettings
from snowflake_operator.spec.table_claims import TableClaim, TableKey, table_key
from snowflake_worker.errors import one_line

from .health import Health

log = logging.getLogger("snowflake_operator")
Event = tuple[str, str, str]  # (type, reason, message)
# A refused resource is looked at again after this (doubling while its spec stays
# invalid or not allowed; a spec change wakes it at once).
REFUSED_RECHECK_SECONDS = 30


class NamespaceShares:
    """At most ``limit`` polls of one namespace run at once. A poll holds one of the
    operator's threads for as long as its statements take (a Snowflake host that never
    answers: the login timeout), so resources of one namespace can hold at most this many,
    and the others' polls still find threads."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._slots: dict[str, asyncio.Semaphore] = {}

    def slot(self, namespace: str) -> asyncio.Semaphore:
        if namespace not in self._slots:
            self._slots[namespace] = asyncio.Semaphore(self.limit)
        return self._slots[namespace]


@dataclass(frozen=True)
class Operator:
    """What every resource's loop shares."""

    api: client.ApiClient
    settings: OperatorSettings
    health: Health
    shares: NamespaceShares
    # With leader election (daemon/operator_command.py): whether this replica acts right now, and
    # its identity, recorded on the Jobs it launches. Without: always, and nothing.
    leading: Callable[[], bool] = always_leading
    identity: str = ""


@dataclass(frozen=True)
class Indexes:
    """kopf's watch-backed indexes (live views)."""

    jobs: Mapping[tuple[str, str], Iterable[JobRecord]]  # (namespace, processor) -> Jobs
    summaries: Mapping[tuple[str, str], Iterable[str | None]]  # (namespace, Job) -> summary
    tables: Mapping[TableKey, Iterable[TableClaim]]  # table -> resources naming it


@dataclass
class Outcome:
    """What one poll (or refusal) leaves to record."""

    status: dict[str, Any]
    conditions: list[Condition]
    events: list[Event]
    interval: float
    failed: bool


@dataclass
class ProcessorLoop:
    processor: ProcessorRef
    body: Any  # kopf's live body: spec, metadata and status as last seen
    state: ProcessorState
    operator: Operator
    indexes: Indexes

    @property
    def key(self) -> str:
        return f"{self.processor.namespace}/{self.processor.name}"

    async def run(self, stopped: Callable[[], bool]) -> None:
        health = self.operator.health
        health.due(self.key, time.monotonic())
        try:
            while not stopped():
                await self.poll_once()
                await self.state.sleep_until_due()
        finally:
            health.forget(self.key)

    async def poll_once(self) -> None:
        clock, now = time.monotonic(), datetime.now(UTC)
        self.state.wake.clear()
        metadata = dict(self.body.get("metadata") or {})
        self.state.generation = metadata.get("generation")
        raw_spec = dict(self.body.get("spec") or {})
        admitted = admit(
            raw_spec,
            self.operator.settings.reference_policy(),
            self.claim(metadata),
            self.other_claims(raw_spec, metadata),
        )
        if isinstance(admitted, Refusal):
            outcome = self.refused(admitted)
        else:
            outcome = await self.polled(admitted.spec, now)
            outcome.status["observedGeneration"] = metadata.get("generation")
        outcome.events[:0] = self.unknown_field_events(admitted.unknown_fields)
        if not self.operator.leading():  # lost the Lease meanwhile: the new holder records
            return
        await self.record(outcome, now, clock)

    # -- 1. admit --------------------------------------------------------------------

    def claim(self, metadata: Mapping[str, Any]) -> TableClaim:
        created = str(metadata.get("creationTimestamp") or "")
        return TableClaim(created, self.processor.namespace, self.processor.name)

    def other_claims(
        self, raw_spec: Mapping[str, Any], metadata: Mapping[str, Any]
    ) -> list[TableClaim]:
        key = table_key(raw_spec)
        mine = self.claim(metadata)
        return [] if key is None else [c for c in self.indexes.tables.get(key, []) if c != mine]

    def unknown_field_events(self, unknown: tuple[str, ...]) -> list[Event]:
        """A warning when the fields left out change (a newer CRD's), not at every poll."""
        if unknown == self.state.unknown_fields:
            return []
        self.state.unknown_fields = unknown
        if not unknown:
            return []
        message = unknown_fields_message(list(unknown))
        log.warning("unknown spec fields ignored", extra={"processor": self.key, "fields": unknown})
        return [("Warning", UNKNOWN_FIELDS, message)]

    def refused(self, refusal: Refusal) -> Outcome:
        """Nothing of the resource is used: its Snowflake connection goes too."""
        self.state.drop_connection()
        log.warning(
            "resource refused",
            extra={"processor": self.key, "reason": refusal.reason, "error": refusal.message},
        )
        return Outcome(
            status={},
            conditions=[Condition("Ready", False, refusal.reason, refusal.message)],
            events=[("Warning", refusal.reason, refusal.message)],
            interval=REFUSED_RECHECK_SECONDS,
            failed=refusal.reason != DUPLICATE_TABLE,  # those wait for the other one
        )

    # -- 2. poll ---------------------------------------------------------------------

    async def polled(self, spec: ProcessorSpec, now: datetime) -> Outcome:
        namespace, name = self.processor.namespace, self.processor.name
        records = list(self.indexes.jobs.get((namespace, name), []))
        # Only Jobs with a pod known: a Job without one was evicted or deleted with it.
        summaries = {
            r.name: best_summary(self.indexes.summaries[(namespace, r.name)])
            for r in records
            if r.finished and not r.counted and (namespace, r.name) in self.indexes.summaries
        }
        settings = self.operator.settings
        edges = kube_poll_edges(
            self.operator.api,
            self.processor,
            self.state,
            image=spec.job.image or settings.worker_image,
            records=records,
            summaries=summaries,
            s3_endpoint_url=settings.s3_endpoint_url,
            certificates_recheck_seconds=settings.certificates_recheck_seconds,
            idle_gate=self.state.idle,
            leading=self.operator.leading,
            launcher=self.operator.identity,
        )
        previous = dict(self.last_status())
        try:
            async with self.operator.shares.slot(namespace):
                result = await asyncio.to_thread(run_poll, name, spec, edges, now, previous)
        except Exception as exc:  # e.g. the API server refused a Job: report, back off, go on
            message = one_line(f"{type(exc).__name__}: {exc}", limit=500)
            log.warning("poll failed", extra={"processor": self.key, "error": message})
            return Outcome(
                status={},
                conditions=[Condition("Ready", False, "ReconcileFailed", message)],
                events=[("Warning", "ReconcileFailed", message)],
                interval=spec.poll_interval_seconds,
                failed=True,
            )
        record_poll_metrics(namespace, name, spec, self.state, records, edges, result)
        return Outcome(
            status=dict(result.status),
            conditions=result.conditions,
            events=result.events,
            interval=spec.poll_interval_seconds,
            failed=result.failed,
        )

    # -- 3. record, 4. schedule ------------------------------------------------------

    def last_status(self) -> Mapping[str, Any]:
        """The status as this loop last wrote it, or as the watch last saw it."""
        if self.state.written_status is not None:
            return self.state.written_status
        return dict(self.body.get("status") or {})

    async def record(self, outcome: Outcome, now: datetime, clock: float) -> None:
        state, settings = self.state, self.operator.settings
        previous = list(self.last_status().get("conditions") or [])
        status = {
            **outcome.status,
            "conditions": merge_conditions(previous, outcome.conditions, now),
        }
        recorded = True
        since = clock - state.status_written
        if write_due(state.written_status, status, since, settings.status_heartbeat_seconds):
            status[HEARTBEAT_FIELD] = now.isoformat().replace("+00:00", "Z")
            recorded = await self.write_status(status, clock)
        for event in outcome.events:
            self.post(event, clock)
        failed = outcome.failed or not recorded
        state.schedule(clock, outcome.interval, settings.max_backoff_seconds, failed)
        if recorded:  # the poll is done: the next one is due then
            self.operator.health.due(self.key, state.next_poll)

    async def write_status(self, status: dict[str, Any], clock: float) -> bool:
        try:
            await asyncio.to_thread(
                patch_processor_status, self.operator.api, self.processor, status
            )
        except Exception as exc:  # the API server unreachable: try again, later
            log.warning("status not written", extra={"processor": self.key, "error": one_line(exc)})
            return False
        self.state.written_status = {**(self.state.written_status or {}), **status}
        self.state.status_written = clock
        return True

    def post(self, event: Event, clock: float) -> None:
        """Normal events every time; a warning again only when it changed or after
        SFP_OPERATOR_EVENT_REPEAT_SECONDS."""
        kind, reason, message = event
        repeat = self.operator.settings.event_repeat_seconds
        if kind == "Normal" or self.state.should_post(reason, message, clock, repeat):
            kopf.event(self.body, type=kind, reason=reason, message=message)


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
        job_limit=job_limit(spec),
        reports=result.job_reports,
    )
