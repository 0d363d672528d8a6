"""The operator's world in the integration tests: the real handlers run by kopf against the
Kubernetes emulator, a queue in the Snowflake emulator, and certificates in moto's S3.

A test gets an :class:`OperatorWorld`, creates SnowflakeProcessor resources with
:meth:`OperatorWorld.create` (each a :class:`Processor` handle to read back), runs the
operator with :meth:`OperatorWorld.run` and reads what it did: status, conditions, Jobs,
Secrets, Events, metrics."""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import kopf
import kopf.testing
import pytest
import trustme
from kubernetes import client
from prometheus_client.parser import text_string_to_metric_families

from snowflake_devtools.processes import ServerProcess
from snowflake_operator.constants import GROUP, PLURAL, PROCESSOR_LABEL, VERSION
from snowflake_operator.kube.development import allow_emulator_login
from snowflake_operator.poll.certificate_bundle import secret_name
from snowflake_operator.queue_schema import SchemaTarget, ensure_queue_table
from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue import QueueClient, dead_lettered
from snowflake_worker.queue import completed as done
from tests.support.cert_bundles import Bundle, make_bundle
from tests.support.kube_fixtures import KubeApi
from tests.support.kube_manifests import job_manifest
from tests.support.polling import wait_for
from tests.support.ports import free_port
from tests.support.s3 import PREFIX, REGION, s3_environment, upload
from tests.support.snowflake import location
from tests.support.specs import merged

NAMESPACE = "snowflake-processor"
LABELS = ("namespace", "processor")  # on every series of the operator
WORKER_IMAGE = "registry.example.com/worker:test"


# Settings every operator run in this process shares (see :func:`operator_settings`).
OPERATOR_DEFAULTS = {
    "SFP_OPERATOR_MAX_BACKOFF_SECONDS": "2",
    "SFP_OPERATOR_WORKER_IMAGE": WORKER_IMAGE,
    "SFP_OPERATOR_HEALTH_PORT": "0",
    "SFP_OPERATOR_CERTIFICATES_RECHECK_SECONDS": "0.5",
}
# The count of the poll-duration histogram: one per poll that ran (refused resources are
# not polled: the refusal is logged instead, as "resource refused").
POLLS = "snowflake_processor_reconcile_duration_seconds_count"


@pytest.fixture(scope="session")
def operator_settings() -> Iterator[dict[str, str]]:
    """Settings every operator run in this session shares, set once before the first run
    (the operator reads them when it starts) and taken back at the end of the session.

    The metrics endpoint, once started, stays on its port for the whole process. The other
    settings a test may change (monkeypatch.setenv) before its run. Resources name
    WORKER_IMAGE, the operator's default image, which the image allow-list always admits.
    Probes are off unless a test gives them a port; certificates are looked at again every
    half second (not every few minutes). A variable already set in the environment wins."""
    wanted = {**OPERATOR_DEFAULTS, "SFP_OPERATOR_METRICS_PORT": str(free_port())}
    # The tests' Snowflake is the emulator: as `operator --development-emulator-login`.
    allow_emulator_login()
    with pytest.MonkeyPatch.context() as patch:
        for name, value in wanted.items():
            if name not in os.environ:
                patch.setenv(name, value)
        yield {name: os.environ[name] for name in wanted}
    allow_emulator_login(False)


def scrape(port: int | str, processor: str) -> dict[str, float]:
    """The samples labelled with ``processor`` on the /metrics endpoint at ``port``, by name
    (``name[value]`` for the samples that have one more label: a statement's kind, a status
    class, a bucket's bound)."""
    url = f"http://127.0.0.1:{port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    found = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.labels.get("processor") == processor:
                extra = [v for k, v in sample.labels.items() if k not in LABELS]
                found[sample.name + (f"[{extra[0]}]" if extra else "")] = sample.value
    return found


def processor_manifest(
    name: str, table: TableRef, snowflake_port: int, bucket: str, **spec: Any
) -> dict[str, Any]:
    """A SnowflakeProcessor for the emulators: small Jobs, a one-second poll. Keyword
    arguments replace spec fields; a dict is merged into the field's dict."""
    base: dict[str, Any] = {
        "snowflake": {
            "account": "local",
            "database": table.database,
            "schema": table.schema,
            "table": table.table,
            "auth": {"mode": "emulator"},
            "host": "127.0.0.1",
            "port": snowflake_port,
        },
        "endpoint": {"url": "https://service.example.com/process"},
        "certificates": {"s3": {"bucket": bucket, "prefix": PREFIX, "region": REGION}},
        "job": {
            "image": WORKER_IMAGE,
            "entriesPerJob": 100,
            "maxActiveJobs": 4,
            "podLabels": {"snowflake-processor.dev/fargate": "true"},
        },
        "pollIntervalSeconds": 1,
    }
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SnowflakeProcessor",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": merged(base, **spec),
    }


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    """The condition of type ``kind`` in a status, or {} while there is none."""
    return next((c for c in status.get("conditions", []) if c["type"] == kind), {})


@contextmanager
def operator(*extra: str, clean_exit: bool = True) -> Iterator[kopf.testing.KopfRunner]:
    """The real handlers module, loaded by kopf's own `run` command (with ``extra``
    arguments), in its own thread; it must stop cleanly unless ``clean_exit`` is False."""
    args = ["run", "--standalone", "-A", *extra, "-m", "snowflake_operator.daemon.handlers"]
    with kopf.testing.KopfRunner(args, timeout=120) as runner:
        yield runner
    if clean_exit:
        assert runner.exception is None, runner.output
        assert runner.exit_code == 0, runner.output


@dataclass(frozen=True)
class Processor:
    """A SnowflakeProcessor resource in the emulator, read back on each call."""

    world: OperatorWorld
    name: str

    def resource(self) -> dict[str, Any]:
        custom = self.world.custom
        return dict(
            custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, self.name)
        )

    def status(self) -> dict[str, Any]:
        return dict(self.resource().get("status") or {})

    def condition(self, kind: str) -> dict[str, Any]:
        return condition(self.status(), kind)

    def wait_for_condition(self, kind: str, timeout: float = 30, **fields: str) -> dict[str, Any]:
        """Wait until the condition ``kind`` has ``fields`` (status="False", reason=...)
        and return it."""

        def matching() -> dict[str, Any]:
            found = self.condition(kind)
            return found if all(found.get(k) == v for k, v in fields.items()) else {}

        return wait_for(matching, timeout, what=f"{self.name}: {kind} with {fields}")

    def jobs(self) -> list[Any]:
        """Its Jobs, by the processor label the operator puts on them."""
        selector = f"{PROCESSOR_LABEL}={self.name}"
        return list(self.world.batch.list_namespaced_job(NAMESPACE, label_selector=selector).items)

    def patch_spec(self, spec: dict[str, Any]) -> None:
        self.world.custom.patch_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, self.name, {"spec": spec}
        )

    @property
    def secret_name(self) -> str:
        """The name of the Secret its certificates are synced to."""
        return secret_name(self.name)


class OperatorWorld:
    """Everything the operator talks to, ready for one test, and ways to look at it."""

    def __init__(
        self,
        *,
        kube: KubeApi,
        api: client.ApiClient,
        queue: QueueClient,
        snowflake_port: int,
        snowflake_connect: Callable[..., Any],
        s3: Any,
        bucket: str,
        ca: trustme.CA,
    ) -> None:
        self.kube = kube  # the emulator's request log
        self.api = api
        self.custom = client.CustomObjectsApi(api)
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)
        self.queue = queue
        self.snowflake_port = snowflake_port
        self._connect = snowflake_connect
        self.s3 = s3
        self.bucket = bucket
        self.ca = ca

    @property
    def table(self) -> TableRef:
        return self.queue.table

    # --- resources ----------------------------------------------------------------------

    def manifest(self, name: str, *, table: TableRef | None = None, **spec: Any) -> dict[str, Any]:
        """:func:`processor_manifest` for this world's queue (or ``table``), emulator and
        bucket."""
        return processor_manifest(
            name, table or self.table, self.snowflake_port, self.bucket, **spec
        )

    def create(self, name: str, *, table: TableRef | None = None, **spec: Any) -> Processor:
        """Create a SnowflakeProcessor (see :meth:`manifest`) and return its handle."""
        body = self.manifest(name, table=table, **spec)
        self.custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
        return Processor(self, name)

    def delete(self, name: str) -> None:
        """Delete a SnowflakeProcessor (the operator removes its finalizer)."""
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)

    def run(
        self, *extra: str, clean_exit: bool = True
    ) -> AbstractContextManager[kopf.testing.KopfRunner]:
        """Run the operator for the length of a ``with`` block (see :func:`operator`)."""
        return operator(*extra, clean_exit=clean_exit)

    # --- Snowflake ----------------------------------------------------------------------

    def new_queue(self, table_name: str) -> QueueClient:
        """Another queue table beside this world's, created empty."""
        table = TableRef(self.table.database, self.table.schema, table_name)
        connection = self._connect(**location(table))
        ensure_queue_table(connection, SchemaTarget(table=table))
        return QueueClient(connection, table)

    # --- S3 -----------------------------------------------------------------------------

    def put_certificates(self, files: Bundle) -> None:
        """Upload certificate files (all of a bundle or some) where the processors look."""
        upload(self.s3, self.bucket, files)

    def delete_certificate(self, file: str) -> None:
        self.s3.delete_object(Bucket=self.bucket, Key=PREFIX + file)

    # --- what the operator did ----------------------------------------------------------

    def secret(self, name: str) -> Any:
        """The Secret, or None while there is none."""
        try:
            return self.core.read_namespaced_secret(name, NAMESPACE)
        except client.exceptions.ApiException:
            return None

    def events(self, reason: str | None = None) -> list[Any]:
        """The namespace's Events, only those with ``reason`` if given."""
        events = self.core.list_namespaced_event(NAMESPACE).items
        return [e for e in events if reason is None or e.reason == reason]

    def metrics(self, processor: str) -> dict[str, float]:
        """The operator's /metrics samples labelled with ``processor`` (see :func:`scrape`)."""
        return scrape(os.environ["SFP_OPERATOR_METRICS_PORT"], processor)

    def polls(self, processor: str) -> int:
        """How many polls of ``processor`` the operators run in this process completed
        (every poll that ran, whether it launched, found an error or was suspended)."""
        return int(self.metrics(processor).get(POLLS, 0))

    def wait_for_polls(self, processor: str, more: int = 2, timeout: float = 30) -> int:
        """Wait until ``more`` polls of ``processor`` completed after this call, and return
        the count. The first may have begun before the call; the others began after it, so
        with ``more`` >= 2 at least one whole poll saw the world as it was at the call. A
        check that nothing happened, made after this, cannot pass for want of a poll."""
        start = self.polls(processor)
        return wait_for(
            lambda: (count := self.polls(processor)) >= start + more and count,
            timeout,
            what=f"{more} more polls of {processor} (from {start})",
        )

    # --- what Kubernetes would do (its controllers are not emulated) -------------------

    def add_job(self, name: str, processor: str, status: dict[str, Any] | None = None) -> None:
        """A Job of ``processor`` that the operator did not launch (say, before a restart),
        with ``status`` if given."""
        self.batch.create_namespaced_job(
            NAMESPACE, job_manifest(name, labels={PROCESSOR_LABEL: processor})
        )
        if status:
            self.batch.patch_namespaced_job_status(name, NAMESPACE, {"status": status})

    def finish(self, job: Any, succeeded: bool = True) -> None:
        """Report a Job's outcome, as the Job controller would."""
        kind = "Complete" if succeeded else "Failed"
        now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        status = {
            "conditions": [{"type": kind, "status": "True", "lastTransitionTime": now}],
            "succeeded" if succeeded else "failed": 1,
        }
        self.batch.patch_namespaced_job_status(job.metadata.name, NAMESPACE, {"status": status})

    def settle_as(
        self, job: Any, completed: int, failed: int, queue: QueueClient | None = None
    ) -> None:
        """What a worker of ``job`` would leave in the table: ``completed`` entries completed
        and ``failed`` dead-lettered, claimed under the Job's name (the operator's totals
        count these rows)."""
        queue = queue or self.queue
        batch = queue.claim(completed + failed, max_attempts=3, processor_id=job.metadata.name)
        assert len(batch) == completed + failed, "fill the queue first"
        outcomes = [done(e) for e in batch[:completed]]
        outcomes += [dead_lettered(e, "HTTP 422: rejected") for e in batch[completed:]]
        assert queue.write_back(outcomes) == completed + failed

    def worker_pod(self, job: Any, summary: dict[str, Any]) -> None:
        """The pod the Job controller would have made, ended with the worker's summary."""
        name = f"{job.metadata.name}-pod"
        labels = dict(job.spec.template.metadata.labels)
        self.core.create_namespaced_pod(
            NAMESPACE,
            {
                "metadata": {"name": name, "labels": labels},
                "spec": {"containers": [{"name": "worker", "image": "x"}]},
            },
        )
        terminated = {"exitCode": 0, "message": json.dumps(summary)}
        self.core.patch_namespaced_pod_status(
            name,
            NAMESPACE,
            {
                "status": {
                    "containerStatuses": [
                        {
                            "name": "worker",
                            "state": {"terminated": terminated},
                            "ready": False,
                            "restartCount": 0,
                            "image": "x",
                            "imageID": "",
                        }
                    ]
                }
            },
        )


@pytest.fixture
def world(
    kube_api: KubeApi,
    kube_client: client.ApiClient,
    snowflake_server: ServerProcess,
    snowflake_connect: Callable[..., Any],
    queue: QueueClient,
    s3_endpoint: str,
    s3: Any,
    bucket: str,
    ca: trustme.CA,
    monkeypatch: pytest.MonkeyPatch,
    operator_settings: dict[str, str],
) -> OperatorWorld:
    """A fresh Kubernetes emulator, an empty queue, and a valid certificate bundle in a
    fresh bucket that the operator (run in this process, with :func:`operator_settings`)
    reaches through its environment. (Shared through ``pytest_plugins`` in tests/conftest.py;
    the Snowflake, S3 and CA fixtures it needs are the integration tests'.)"""
    for name, value in s3_environment(s3_endpoint).items():
        monkeypatch.setenv(name, value)
    upload(s3, bucket, make_bundle(ca))
    return OperatorWorld(
        kube=kube_api,
        api=kube_client,
        queue=queue,
        snowflake_port=snowflake_server.port,
        snowflake_connect=snowflake_connect,
        s3=s3,
        bucket=bucket,
        ca=ca,
    )
