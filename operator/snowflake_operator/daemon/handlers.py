"""kopf handlers: thin adapters between kopf and the operator's own code.

Loaded by `snowflake-processor operator` (and by tests through kopf's runner). Every
resource gets a daemon (daemon/processor_loop.py) that sleeps until its next poll is due and
runs it in a thread, so one slow resource never stalls the others; indexes keep the Jobs,
their workers' summaries and the tables resources name, from watches, with no list call
per poll.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import kopf
from kubernetes import client, config

from snowflake_operator.constants import GROUP, KIND, PLURAL, PROCESSOR_LABEL, VERSION
from snowflake_operator.daemon import metrics
from snowflake_operator.kube.api import api_server_problem, post_event
from snowflake_operator.kube.edges import always_leading
from snowflake_operator.kube.processor_ref import ProcessorRef
from snowflake_operator.kube.processor_state import ProcessorState
from snowflake_operator.poll.job_history import JobRecord, job_record, termination_message
from snowflake_operator.spec.admission import Refusal, admit
from snowflake_operator.spec.operator_settings import OperatorSettings
from snowflake_operator.spec.stored_spec import SPEC_UPGRADED, stored_spec_upgrade
from snowflake_operator.spec.table_claims import TableClaim, TableKey, table_key
from snowflake_worker.errors import one_line

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
# How long a resource's first poll waits to see its upgraded spec come back by the watch.
UPGRADE_SEEN_SECONDS = 5.0


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


def _without_finalizer(daemon: Callable[..., Any]) -> None:
    """kopf puts its finalizer on every resource with a daemon (kopf.daemon registers it
    with requires_finalizer=True, no option) so that it can stop the daemon before the
    resource goes. Nothing here needs that: the Jobs and the certificates Secret are
    owned by the resource (garbage-collected), and the DELETED event stops the loop. With
    a finalizer, a resource deleted while no operator runs (an uninstall in the wrong
    order) stays Terminating, and its namespace with it. Registered without one, kopf
    also removes the finalizer an earlier release put on existing resources."""
    spawning = kopf.get_default_registry()._spawning
    handlers = spawning._handlers
    found = [i for i, handler in enumerate(handlers) if handler.fn is daemon]
    if len(found) != 1:  # a kopf that registers daemons differently: fail loudly
        raise RuntimeError(f"kopf's registry holds {len(found)} daemons {daemon.__name__}")
    handlers[found[0]] = dataclasses.replace(handlers[found[0]], requires_finalizer=False)


async def upgrade_stored_spec(
    api: client.ApiClient, body: Any, leading: Callable[[], bool]
) -> None:
    """Write back what an earlier release's stored spec needs (spec/stored_spec.py), with a
    Warning event when values change, and wait to see it: the first poll then uses the
    upgraded history limits and TTL. Nothing here may keep the loop from starting: if the
    write fails (no patch right, the API server away), admission still reads an old size
    as the size it was billed as, and the next start tries again."""
    metadata = body.get("metadata") or {}
    upgrade = stored_spec_upgrade(body.get("spec") or {}, metadata.get("annotations") or {})
    if upgrade is None or not leading():
        return
    key = f"{metadata['namespace']}/{metadata['name']}"
    try:
        await asyncio.to_thread(_patch_processor, api, metadata, upgrade.patch())
    except Exception as exc:  # reported; the resource runs on regardless
        log.warning("stored spec not upgraded", extra={"processor": key, "error": _why(exc)})
        return
    if upgrade.changes:
        log.warning("stored spec upgraded", extra={"processor": key, "changes": upgrade.message()})
        try:
            await asyncio.to_thread(_post_warning, api, metadata, upgrade.message())
        except Exception as exc:  # the log line above says it too
            log.warning("event not posted", extra={"processor": key, "error": _why(exc)})
    for _ in range(int(UPGRADE_SEEN_SECONDS / 0.1)):
        annotations = (body.get("metadata") or {}).get("annotations") or {}
        if stored_spec_upgrade(body.get("spec") or {}, annotations) is None:
            return
        await asyncio.sleep(0.1)


def _why(exc: Exception) -> str:
    return one_line(f"{type(exc).__name__}: {exc}", limit=500)


def _patch_processor(api: client.ApiClient, metadata: Any, patch: dict[str, Any]) -> None:
    client.CustomObjectsApi(api).patch_namespaced_custom_object(
        GROUP, VERSION, metadata["namespace"], PLURAL, metadata["name"], patch
    )


def _post_warning(api: client.ApiClient, metadata: Any, message: str) -> None:
    involved = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "name": metadata["name"],
        "namespace": metadata["namespace"],
        "uid": metadata.get("uid"),
    }
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    post_event(api, involved, ("Warning", SPEC_UPGRADED, message), now)


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
    """Polls the resource whenever it is due, for as long as it exists: until kopf stops
    it (the operator exits) or its deletion is seen (notice_changes)."""
    assert processor_jobs is not None and worker_summaries is not None
    assert processor_tables is not None
    leadership = memo.get("leadership")  # a leader_election.Candidate, or None
    leading = always_leading if leadership is None else leadership.leading
    await upgrade_stored_spec(memo.api, body, leading)
    loop = ProcessorLoop(
        processor=ProcessorRef(name, namespace, uid),
        body=body,
        state=_state(memo),
        operator=Operator(
            memo.api,
            memo.settings,
            memo.health,
            memo.namespace_shares,
            leading=leading,
            identity="" if leadership is None else leadership.identity,
        ),
        indexes=Indexes(processor_jobs, worker_summaries, processor_tables),
    )
    await loop.run(lambda: stopped.is_set() or bool(memo.get("deleted")))


_without_finalizer(poll_processor)


@kopf.on.event(GROUP, VERSION, PLURAL)
async def notice_changes(
    event: Any, name: Any, namespace: Any, meta: Any, memo: Any, **_: Any
) -> None:
    """A changed spec wakes the resource's loop at once. A deleted resource's Jobs and
    Secret go with it (ownerReferences); its loop stops (kopf stops a daemon itself only
    on a deletion its finalizer holds up, and there is none) and what we hold is dropped."""
    state = memo.get("state")
    if event.get("type") == "DELETED":
        memo["deleted"] = True
        if isinstance(state, ProcessorState):
            state.drop_connection()
            state.wake.set()  # out of its sleep, to see it is deleted
        metrics.forget(namespace, name)
    elif isinstance(state, ProcessorState) and meta.get("generation") != state.generation:
        state.wake.set()


def _state(memo: Any) -> ProcessorState:
    state = memo.get("state")
    if not isinstance(state, ProcessorState):
        state = memo["state"] = ProcessorState()
    return state
