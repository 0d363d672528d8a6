"""kopf handlers: thin adapters between kopf and the operator's own code.

Loaded by `snowflake-processor operator` (and by tests through kopf's runner). Every
resource gets a daemon (daemon/processor_loop.py) that sleeps until its next poll is due and
runs it in a thread, so one slow resource never stalls the others; indexes keep the Jobs,
their workers' summaries and the tables resources name, from watches, with no list call
per poll.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import kopf
from kubernetes import client, config

from snowflake_operator.constants import GROUP, PLURAL, PROCESSOR_LABEL, VERSION
from snowflake_operator.daemon import metrics
from snowflake_operator.kube.api import api_server_problem
from snowflake_operator.kube.edges import always_leading
from snowflake_operator.kube.processor_ref import ProcessorRef
from snowflake_operator.kube.processor_state import ProcessorState
from snowflake_operator.poll.job_history import JobRecord, job_record, termination_message
from snowflake_operator.spec.admission import Refusal, admit
from snowflake_operator.spec.operator_settings import OperatorSettings
from snowflake_operator.spec.table_claims import TableClaim, TableKey, table_key

from .health import Health
from .health_server import serve_health
from .processor_loop import Indexes, NamespaceShares, Operator, ProcessorLoop

log = logging.getLogger("snowflake_operator")
# After a resource is deleted or the operator stops, its loop is cancelled at once (a
# poll running in a thread finishes on its own).
STOP_SECONDS = 1.0
POLL_THREADS = 32
# A namespace's resources run at most this many polls at once (processor_loop's
# NamespaceShares): one namespace can never hold every poll thread.
POLLS_PER_NAMESPACE = POLL_THREADS // 4


@kopf.on.startup()
async def configure(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    # Polls and status writes run in threads (asyncio.to_thread): enough of them that a few
    # resources stuck on a slow Snowflake cannot hold up the others (the default is 6 on
    # 2 cores).
    asyncio.get_running_loop().set_default_executor(
        ThreadPoolExecutor(POLL_THREADS, thread_name_prefix="poll")
    )
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING  # our own events say what happens
    settings.watching.server_timeout = 300
    settings.execution.max_workers = 32
    start_services(memo)


def start_services(memo: kopf.Memo) -> None:
    """The API client, settings, probes and metrics endpoint, unless already there: with
    leader election (daemon/operator_command.py) they start before kopf, so that a replica
    standing by answers its probes and is scraped too."""
    if memo.get("api") is None:
        memo.api = kubernetes_api()
    if memo.get("settings") is None:
        memo.settings = OperatorSettings()  # read at startup, not import
    if memo.get("namespace_shares") is None:
        # In the operator's own memo: kopf gives each resource a shallow copy of it, so
        # every resource's loop sees this one object.
        memo.namespace_shares = NamespaceShares(POLLS_PER_NAMESPACE)
    if memo.get("health") is None:
        memo.health = Health(
            liveness_seconds=memo.settings.liveness_seconds,
            api_check=lambda: api_server_problem(memo.api),
        )
        memo.health_server = None
        if memo.settings.health_port:
            memo.health_server = serve_health(memo.health, memo.settings.health_port)
    metrics.serve(memo.settings.metrics_port)


@kopf.on.cleanup()
async def stop(memo: kopf.Memo, **_: Any) -> None:
    """First give up the lease (a standby takes over while polls in flight finish here,
    launching nothing more), then stop the probes."""
    leadership = memo.get("leadership")
    if leadership is not None:
        await asyncio.to_thread(leadership.step_down)
    stop_flag = memo.get("stop_flag")
    if stop_flag is not None:
        # kopf waits for a threading.Event stop flag in an executor thread: release that
        # thread, or asyncio.run would wait for it forever when a signal stopped kopf.
        stop_flag.set()
    if memo.get("health_server") is not None:
        memo.health_server.shutdown()
        memo.health_server.server_close()


def kubernetes_api() -> client.ApiClient:
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


@kopf.index(GROUP, VERSION, PLURAL)
def processor_tables(
    *, name: Any, namespace: Any, meta: Any, spec: Any, memo: Any, **_: Any
) -> dict[TableKey, TableClaim]:
    """Watch-backed: which resources name which table (one table, one resource). Only a
    resource that is admitted on its own (a valid spec, references the allow-lists admit)
    holds its table: a refused one, created first, must not keep the table from others."""
    key = table_key(spec)
    if key is None:
        return {}
    claim = TableClaim(str(meta.get("creationTimestamp") or ""), namespace, name)
    if memo.get("settings") is None:  # before startup: read them as startup will
        memo.settings = OperatorSettings()
    alone = admit(dict(spec or {}), memo.settings.reference_policy(), claim, [])
    return {} if isinstance(alone, Refusal) else {key: claim}


@kopf.daemon(GROUP, VERSION, PLURAL, cancellation_timeout=STOP_SECONDS)
async def poll_processor(
    *,
    name: Any,
    namespace: Any,
    uid: Any,
    body: Any,
    memo: Any,
    stopped: kopf.DaemonStopped,
    processor_jobs: kopf.Index[tuple[str, str], JobRecord] | None = None,  # kopf injects
    worker_summaries: kopf.Index[tuple[str, str], str | None] | None = None,  # the indexes
    processor_tables: kopf.Index[TableKey, TableClaim] | None = None,
    **_: Any,
) -> None:
    """Polls the resource whenever it is due, for as long as it exists."""
    assert processor_jobs is not None and worker_summaries is not None
    assert processor_tables is not None
    leadership = memo.get("leadership")  # a leader_election.Candidate, or None
    loop = ProcessorLoop(
        processor=ProcessorRef(name, namespace, uid),
        body=body,
        state=_state(memo),
        operator=Operator(
            memo.api,
            memo.settings,
            memo.health,
            memo.namespace_shares,
            leading=always_leading if leadership is None else leadership.leading,
            identity="" if leadership is None else leadership.identity,
        ),
        indexes=Indexes(processor_jobs, worker_summaries, processor_tables),
    )
    await loop.run(stopped.is_set)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def notice_changes(
    event: Any, name: Any, namespace: Any, meta: Any, memo: Any, **_: Any
) -> None:
    """A changed spec wakes the resource's loop at once. A deleted resource's Jobs and
    Secret go with it (ownerReferences); drop what we hold. (kopf puts a finalizer on
    resources with daemons: delete them while the operator runs.)"""
    state = memo.get("state")
    if event.get("type") == "DELETED":
        if isinstance(state, ProcessorState):
            state.drop_connection()
        metrics.forget(namespace, name)
    elif isinstance(state, ProcessorState) and meta.get("generation") != state.generation:
        state.wake.set()


def _state(memo: Any) -> ProcessorState:
    state = memo.get("state")
    if not isinstance(state, ProcessorState):
        state = memo["state"] = ProcessorState()
    return state
