"""The operator for real: kopf and the kubernetes client against the Kubernetes emulator,
the Snowflake emulator, moto's S3 server and trustme certificates."""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import kopf
import kopf.testing
import kubernetes_validate
import pytest
import trustme
from kubernetes import client
from moto.server import ThreadedMotoServer

from snowflake_devtools.processes import ServerProcess
from snowflake_operator.certificate_bundle import secret_name
from snowflake_operator.constants import (
    FINGERPRINT_ANNOTATION,
    GROUP,
    PLURAL,
    PROCESSOR_LABEL,
    VERSION,
)
from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue import QueueClient
from tests.support.kube_fixtures import KubeApi

pytestmark = pytest.mark.integration
NAMESPACE = "snowflake-processor"
REGION = "us-east-1"
# Read once, when kopf first imports the handlers: every test in this process shares it.
os.environ.setdefault("SFP_OPERATOR_TICK_SECONDS", "0.3")
os.environ.setdefault("SFP_OPERATOR_MAX_BACKOFF_SECONDS", "2")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


os.environ.setdefault("SFP_OPERATOR_METRICS_PORT", str(_free_port()))


# --- fixtures -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Any:
    for name, value in {
        "SFP_OPERATOR_S3_ENDPOINT_URL": s3_endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    return boto3.client("s3", region_name=REGION, endpoint_url=s3_endpoint)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def bundle(ca: trustme.CA, days: int = 90) -> dict[str, bytes]:
    now = datetime.now(UTC)
    leaf = ca.issue_cert(
        "snowflake-processor-client",
        not_before=now - timedelta(days=1),
        not_after=now + timedelta(days=days),
    )
    return {
        "client.pem": leaf.cert_chain_pems[0].bytes(),
        "client-key.pem": leaf.private_key_pem.bytes(),
        "ca-cert.pem": ca.cert_pem.bytes(),
    }


@pytest.fixture
def bucket(s3: Any, ca: trustme.CA) -> str:
    name = f"certs-{uuid.uuid4().hex[:10]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    for key, data in bundle(ca).items():
        s3.put_object(Bucket=name, Key=f"prod/{key}", Body=data)
    return name


@pytest.fixture
def custom(kube_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_client)


@pytest.fixture
def batch(kube_client: client.ApiClient) -> client.BatchV1Api:
    return client.BatchV1Api(kube_client)


def processor(name: str, table: TableRef, port: int, bucket: str, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SnowflakeProcessor",
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "snowflake": {
                "account": "local",
                "database": table.database,
                "schema": table.schema,
                "table": table.table,
                "auth": {"mode": "emulator"},
                "host": "127.0.0.1",
                "port": port,
            },
            "endpoint": {"url": "https://service.example.com/process"},
            "certificates": {"s3": {"bucket": bucket, "prefix": "prod/", "region": REGION}},
            "job": {
                "image": "registry.example.com/worker:test",
                "entriesPerJob": 100,
                "maxActiveJobs": 4,
                "podLabels": {"snowflake-processor.dev/fargate": "true"},
            },
            "pollIntervalSeconds": 1,
        },
    }
    for key, value in spec.items():
        if isinstance(value, dict):
            body["spec"][key] = {**body["spec"].get(key, {}), **value}
        else:
            body["spec"][key] = value
    return body


@contextmanager
def operator() -> Iterator[kopf.testing.KopfRunner]:
    """The real handlers module, loaded by kopf's own `run` command, in its own thread."""
    args = ["run", "--standalone", "-A", "-m", "snowflake_operator.handlers"]
    with kopf.testing.KopfRunner(args, timeout=120) as runner:
        yield runner
    assert runner.exception is None, runner.output
    assert runner.exit_code == 0, runner.output


def wait_for(check: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}; last: {result!r}")
        time.sleep(0.2)


def jobs_of(batch: client.BatchV1Api, name: str) -> list[Any]:
    selector = f"{PROCESSOR_LABEL}={name}"
    return list(batch.list_namespaced_job(NAMESPACE, label_selector=selector).items)


def status_of(custom: client.CustomObjectsApi, name: str) -> dict[str, Any]:
    obj = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, name)
    return dict(obj.get("status") or {})


def condition(status: dict[str, Any], kind: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == kind), {})


def fill(queue: QueueClient, count: int) -> None:
    queue.enqueue((f"e{i:05d}", {"n": i}) for i in range(count))


def finish(batch: client.BatchV1Api, job: Any, succeeded: bool = True) -> None:
    """Kubernetes' Job controller is not emulated: report the outcome ourselves."""
    kind = "Complete" if succeeded else "Failed"
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    status = {
        "conditions": [{"type": kind, "status": "True", "lastTransitionTime": now}],
        "succeeded" if succeeded else "failed": 1,
    }
    batch.patch_namespaced_job_status(job.metadata.name, NAMESPACE, {"status": status})


# --- tests ----------------------------------------------------------------------------


def test_backlog_gets_exactly_the_expected_jobs(
    kube_api: KubeApi,
    custom: client.CustomObjectsApi,
    batch: client.BatchV1Api,
    kube_client: client.ApiClient,
    queue: QueueClient,
    queue_table: TableRef,
    snowflake_server: ServerProcess,
    bucket: str,
) -> None:
    fill(queue, 250)
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        NAMESPACE,
        PLURAL,
        processor("orders", queue_table, snowflake_server.port, bucket),
    )
    with operator():
        jobs = wait_for(lambda: len(jobs_of(batch, "orders")) == 3 and jobs_of(batch, "orders"))
        status = wait_for(
            lambda: (
                status_of(custom, "orders").get("backlog") == 250 and status_of(custom, "orders")
            )
        )
        time.sleep(2.5)  # more polls: nothing more may launch
        assert len(jobs_of(batch, "orders")) == 3
    owner = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, "orders")
    for job in jobs:
        manifest = kube_client.sanitize_for_serialization(job)
        for key in ("status",):
            manifest.pop(key, None)
        manifest["metadata"] = {
            k: v
            for k, v in manifest["metadata"].items()
            if k in ("name", "namespace", "labels", "ownerReferences")
        }
        kubernetes_validate.validate(manifest, "1.31.0", strict=True)
        (ref,) = job.metadata.owner_references
        assert (ref.kind, ref.name, ref.uid) == (
            "SnowflakeProcessor",
            "orders",
            owner["metadata"]["uid"],
        )
        container = job.spec.template.spec.containers[0]
        env = {e.name: e.value for e in container.env}
        assert env["SFP_SNOWFLAKE_TABLE"] == queue_table.table
        assert env["SFP_MAX_ENTRIES"] == "100"
        assert container.image == "registry.example.com/worker:test"
        assert job.spec.template.metadata.labels["snowflake-processor.dev/fargate"] == "true"
    secret = client.CoreV1Api(kube_client).read_namespaced_secret(secret_name("orders"), NAMESPACE)
    assert secret.metadata.owner_references[0].uid == owner["metadata"]["uid"]
    assert (
        condition(status, "Ready")["status"],
        condition(status, "CertificatesSynced")["status"],
    ) == ("True", "True")
    assert status["activeJobs"] == 3
    # `kubectl get sfp` printer columns: Backlog, Active, Failed, Ready
    printed = [
        status["backlog"],
        status["activeJobs"],
        status["failed"],
        condition(status, "Ready")["status"],
    ]
    assert printed == [250, 3, 0, "True"]


def test_cap_holds_with_jobs_running_or_pending_and_a_restart_launches_nothing_twice(
    kube_api: KubeApi,
    custom: client.CustomObjectsApi,
    batch: client.BatchV1Api,
    queue: QueueClient,
    queue_table: TableRef,
    snowflake_server: ServerProcess,
    bucket: str,
) -> None:
    fill(queue, 1000)
    label = {PROCESSOR_LABEL: "orders"}
    for name, status in (("running-0", {"active": 1}), ("pending-0", None)):
        batch.create_namespaced_job(
            NAMESPACE,
            {
                "metadata": {"name": name, "labels": label},
                "spec": {
                    "template": {
                        "spec": {
                            "restartPolicy": "Never",
                            "containers": [{"name": "w", "image": "x"}],
                        }
                    }
                },
            },
        )
        if status:
            batch.patch_namespaced_job_status(name, NAMESPACE, {"status": status})
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        NAMESPACE,
        PLURAL,
        processor("orders", queue_table, snowflake_server.port, bucket),
    )
    with operator():
        wait_for(lambda: len(jobs_of(batch, "orders")) == 4, what="the cap of 4")
        time.sleep(2)
    assert len(jobs_of(batch, "orders")) == 4  # 2 existing + 2 launched: maxActiveJobs 4
    kube_api.reset_requests()
    with operator():  # a restart: the index is rebuilt from the watch, nothing relaunched
        wait_for(lambda: kube_api.count(method="PATCH", resource=PLURAL) >= 3, what="polls")
    assert len(jobs_of(batch, "orders")) == 4
    assert kube_api.count(method="POST", resource="jobs") == 0


def test_suspend_stops_launches_and_resumes(
    kube_api: KubeApi,
    custom: client.CustomObjectsApi,
    batch: client.BatchV1Api,
    queue: QueueClient,
    queue_table: TableRef,
    snowflake_server: ServerProcess,
    bucket: str,
) -> None:
    fill(queue, 150)
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        NAMESPACE,
        PLURAL,
        processor("paused", queue_table, snowflake_server.port, bucket, suspend=True),
    )
    with operator():
        wait_for(
            lambda: condition(status_of(custom, "paused"), "Suspended").get("status") == "True"
        )
        time.sleep(2)
        assert jobs_of(batch, "paused") == []
        assert condition(status_of(custom, "paused"), "Ready")["reason"] == "Suspended"
        custom.patch_namespaced_custom_object(
            GROUP, VERSION, NAMESPACE, PLURAL, "paused", {"spec": {"suspend": False}}
        )
        wait_for(lambda: len(jobs_of(batch, "paused")) == 2, what="Jobs after resuming")
        wait_for(
            lambda: condition(status_of(custom, "paused"), "Suspended").get("status") == "False"
        )


def test_certificates_synced_once_rotated_on_change_and_block_launches_when_broken(
    kube_api: KubeApi,
    custom: client.CustomObjectsApi,
    batch: client.BatchV1Api,
    kube_client: client.ApiClient,
    queue: QueueClient,
    queue_table: TableRef,
    snowflake_server: ServerProcess,
    bucket: str,
    s3: Any,
    ca: trustme.CA,
) -> None:
    core = client.CoreV1Api(kube_client)
    name = secret_name("certs")
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        NAMESPACE,
        PLURAL,
        processor("certs", queue_table, snowflake_server.port, bucket),
    )
    with operator():
        first = wait_for(lambda: _secret(core, name), what="the Secret")
        wait_for(lambda: condition(status_of(custom, "certs"), "Ready").get("status") == "True")
        time.sleep(2)  # several polls with unchanged objects
        assert core.read_namespaced_secret(name, NAMESPACE).metadata.resource_version == (
            first.metadata.resource_version
        )
        assert kube_api.count(method="POST", resource="secrets") == 1
        # rotate: new objects in S3
        for key, data in bundle(ca, days=30).items():
            s3.put_object(Bucket=bucket, Key=f"prod/{key}", Body=data)
        rotated = wait_for(
            lambda: (
                (s := _secret(core, name))
                and s.metadata.annotations[FINGERPRINT_ANNOTATION]
                != first.metadata.annotations[FINGERPRINT_ANNOTATION]
                and s
            )
        )
        assert rotated.data["client.pem"] != first.data["client.pem"]
        wait_for(lambda: _events(core, "CertificatesRotated"), what="a rotation event")
        # break it: a file goes missing, then launches stop
        s3.delete_object(Bucket=bucket, Key="prod/ca-cert.pem")
        blocked = wait_for(
            lambda: (
                condition(status_of(custom, "certs"), "CertificatesSynced").get("status") == "False"
                and status_of(custom, "certs")
            )
        )
        assert "ca-cert.pem" in condition(blocked, "CertificatesSynced")["message"]
        fill(queue, 300)
        time.sleep(2)
        assert jobs_of(batch, "certs") == []
        assert any("ca-cert.pem" in e.message for e in _events(core, "CertificatesInvalid"))
        # mend it: launches resume
        s3.put_object(Bucket=bucket, Key="prod/ca-cert.pem", Body=ca.cert_pem.bytes())
        wait_for(lambda: len(jobs_of(batch, "certs")) == 3, what="Jobs after the fix")


def test_broken_key_blocks_launches(
    kube_api: KubeApi,
    custom: client.CustomObjectsApi,
    batch: client.BatchV1Api,
    queue: QueueClient,
    queue_table: TableRef,
    snowflake_server: ServerProcess,
    bucket: str,
    s3: Any,
    ca: trustme.CA,
) -> None:
    s3.put_object(Bucket=bucket, Key="prod/client-key.pem", Body=bundle(ca)["client-key.pem"])
    fill(queue, 100)
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        NAMESPACE,
        PLURAL,
        processor("mismatch", queue_table, snowflake_server.port, bucket),
    )
    with operator():
        status = wait_for(
            lambda: (
                condition(status_of(custom, "mismatch"), "CertificatesSynced").get("status")
                == "False"
                and status_of(custom, "mismatch")
            )
        )
        time.sleep(1.5)
    assert "client-key.pem" in condition(status, "CertificatesSynced")["message"]
    assert jobs_of(batch, "mismatch") == []


def test_snowflake_unreachable_sets_the_condition_and_recovers(
    kube_api: KubeApi,
    custom: client.CustomObjectsApi,
    batch: client.BatchV1Api,
    queue: QueueClient,
    queue_table: TableRef,
    snowflake_server: ServerProcess,
    bucket: str,
) -> None:
    fill(queue, 100)
    body = processor("flaky", queue_table, _closed_port(), bucket)
    custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
    with operator():
        down = wait_for(
            lambda: (
                condition(status_of(custom, "flaky"), "SnowflakeReachable").get("status") == "False"
                and status_of(custom, "flaky")
            ),
            timeout=60,
        )
        assert condition(down, "Ready")["status"] == "False"
        assert jobs_of(batch, "flaky") == []
        custom.patch_namespaced_custom_object(
            GROUP,
            VERSION,
            NAMESPACE,
            PLURAL,
            "flaky",
            {"spec": {"snowflake": {"port": snowflake_server.port}}},
        )
        wait_for(
            lambda: (
                condition(status_of(custom, "flaky"), "SnowflakeReachable").get("status") == "True"
            ),
            timeout=60,
        )
        wait_for(lambda: len(jobs_of(batch, "flaky")) == 1)


def worker_pod(api: client.ApiClient, job: Any, summary: dict[str, Any]) -> None:
    """The pod the Job controller would have made, ended with the worker's summary."""
    core = client.CoreV1Api(api)
    name = f"{job.metadata.name}-pod"
    labels = dict(job.spec.template.metadata.labels)
    core.create_namespaced_pod(
        NAMESPACE,
        {
            "metadata": {"name": name, "labels": labels},
            "spec": {"containers": [{"name": "worker", "image": "x"}]},
        },
    )
    terminated = {"exitCode": 0, "message": json.dumps(summary)}
    core.patch_namespaced_pod_status(
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


def test_two_resources_do_not_interfere_and_history_is_trimmed(
    kube_api: KubeApi,
    kube_client: client.ApiClient,
    custom: client.CustomObjectsApi,
    batch: client.BatchV1Api,
    snowflake_connect: Callable[..., Any],
    queue: QueueClient,
    queue_table: TableRef,
    snowflake_server: ServerProcess,
    bucket: str,
) -> None:
    from snowflake_operator.queue_schema import SchemaTarget, ensure_queue_table

    other_table = TableRef(queue_table.database, queue_table.schema, "OTHER_QUEUE")
    connection = snowflake_connect(database=queue_table.database)
    ensure_queue_table(connection, SchemaTarget(table=other_table))
    fill(queue, 200)
    QueueClient(connection, other_table).enqueue((f"o{i}", {"n": i}) for i in range(50))
    for name, table in (("alpha", queue_table), ("beta", other_table)):
        custom.create_namespaced_custom_object(
            GROUP,
            VERSION,
            NAMESPACE,
            PLURAL,
            processor(
                name, table, snowflake_server.port, bucket, job={"successfulJobsHistoryLimit": 0}
            ),
        )
    with operator():
        wait_for(lambda: len(jobs_of(batch, "alpha")) == 2 and len(jobs_of(batch, "beta")) == 1)
        assert status_of(custom, "alpha").get("backlog") == 200
        assert status_of(custom, "beta").get("backlog") == 50
        (first,) = jobs_of(batch, "beta")
        summary = {"event": "summary", "claimed": 50, "completed": 47, "failed": 3}
        worker_pod(kube_client, first, summary)
        finish(batch, first)
        totals = wait_for(lambda: status_of(custom, "beta").get("totals", {}).get("completed"))
        assert status_of(custom, "beta")["totals"] == {"completed": 47, "failed": 3}
        assert totals == 47
        # history limit 0: the finished Job is deleted; the backlog (no real worker ran)
        # then gets a fresh Job, while alpha's Jobs are untouched
        wait_for(
            lambda: first.metadata.name not in {j.metadata.name for j in jobs_of(batch, "beta")},
            what="the finished Job deleted",
        )
        wait_for(lambda: len(jobs_of(batch, "beta")) == 1, what="a new Job for beta")
        time.sleep(1)
        assert len(jobs_of(batch, "alpha")) == 2


def test_no_list_call_per_tick(
    kube_api: KubeApi,
    custom: client.CustomObjectsApi,
    batch: client.BatchV1Api,
    queue: QueueClient,
    queue_table: TableRef,
    snowflake_server: ServerProcess,
    bucket: str,
) -> None:
    fill(queue, 100)  # one Job's worth; the Job is unfinished: nothing more to launch
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        NAMESPACE,
        PLURAL,
        processor("quiet", queue_table, snowflake_server.port, bucket),
    )
    with operator():
        wait_for(lambda: len(jobs_of(batch, "quiet")) == 1)
        time.sleep(1.5)
        kube_api.reset_requests()
        wait_for(lambda: kube_api.count(method="PATCH", resource=PLURAL) >= 4, what="4 polls")
        requests = kube_api.requests()
    polls = [r for r in requests if r["method"] == "PATCH" and r["resource"] == PLURAL]
    others = [r for r in requests if r not in polls and r["action"] != "watch"]
    assert others == [], others  # no list, no get, no create: only the status patch
    assert all(r.get("subresource") == "status" for r in polls)


def _secret(core: client.CoreV1Api, name: str) -> Any:
    try:
        return core.read_namespaced_secret(name, NAMESPACE)
    except client.exceptions.ApiException:
        return None


def _events(core: client.CoreV1Api, reason: str) -> list[Any]:
    return [e for e in core.list_namespaced_event(NAMESPACE).items if e.reason == reason]


def _closed_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_snowflake_password_never_leaves_its_secret(
    kube_api: KubeApi,
    custom: client.CustomObjectsApi,
    batch: client.BatchV1Api,
    kube_client: client.ApiClient,
    queue: QueueClient,
    queue_table: TableRef,
    snowflake_server: ServerProcess,
    bucket: str,
) -> None:
    password = "Pa55-never-log-" + uuid.uuid4().hex
    core = client.CoreV1Api(kube_client)
    core.create_namespaced_secret(
        NAMESPACE, {"metadata": {"name": "sf-login"}, "stringData": {"password": password}}
    )
    fill(queue, 100)
    body = processor("legacy", queue_table, snowflake_server.port, bucket)
    body["spec"]["snowflake"]["user"] = "LEGACY_USER"
    body["spec"]["snowflake"]["auth"] = {
        "mode": "password",
        "passwordSecret": {"name": "sf-login", "key": "password"},
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
    with operator() as runner:
        # The operator reads the Secret and logs in with it; the emulator only speaks plain
        # HTTP, which password mode does not, so the login fails: a path that reports errors.
        wait_for(
            lambda: (
                condition(status_of(custom, "legacy"), "SnowflakeReachable").get("status")
                == "False"
            ),
            what="the login attempt reported",
        )
        time.sleep(1)
    assert kube_api.count(method="GET", resource="secrets", name="sf-login") >= 1
    everything = [
        str(status_of(custom, "legacy")),
        str([e.message for e in core.list_namespaced_event(NAMESPACE).items]),
        runner.output,
    ]
    assert not [text for text in everything if password in text]


def test_metrics_are_exposed_per_resource(
    kube_api: KubeApi,
    custom: client.CustomObjectsApi,
    batch: client.BatchV1Api,
    queue: QueueClient,
    queue_table: TableRef,
    snowflake_server: ServerProcess,
    bucket: str,
) -> None:
    import urllib.request

    from prometheus_client.parser import text_string_to_metric_families

    fill(queue, 230)
    batch_of = queue.claim(5, max_attempts=5, processor_id="someone")
    from snowflake_worker.queue import dead_lettered

    queue.write_back([dead_lettered(e, "HTTP 422: no") for e in batch_of[:2]])
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        NAMESPACE,
        PLURAL,
        processor("measured", queue_table, snowflake_server.port, bucket),
    )
    url = f"http://127.0.0.1:{os.environ['SFP_OPERATOR_METRICS_PORT']}/metrics"

    def samples() -> dict[str, float]:
        with urllib.request.urlopen(url, timeout=5) as response:
            text = response.read().decode()
        found = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.labels.get("processor") == "measured":
                    kind = sample.labels.get("kind")
                    found[sample.name + (f"[{kind}]" if kind else "")] = sample.value
        return found

    with operator():
        wait_for(lambda: len(jobs_of(batch, "measured")) == 3)
        values = wait_for(
            lambda: (
                (v := samples()).get("snowflake_processor_active_jobs", -1)
                + v.get("snowflake_processor_pending_jobs", -1)
                == 3
                and v
            ),
            what="metrics after the launch",
        )
    assert values["snowflake_processor_backlog"] == 225
    assert values["snowflake_processor_processing"] == 3
    assert values["snowflake_processor_dead_letters"] == 2
    assert values["snowflake_processor_jobs_launched_total"] == 3
    assert values["snowflake_processor_pending_jobs"] == 3  # no pod runs: no Job controller
    assert values["snowflake_processor_snowflake_statements_total[counts]"] >= 1
    assert values["snowflake_processor_reconcile_duration_seconds_count"] >= 1
    assert values["snowflake_processor_certificate_expiry_timestamp_seconds"] > time.time()
    assert (
        abs(values["snowflake_processor_last_successful_poll_timestamp_seconds"] - time.time()) < 60
    )


def test_a_bad_spec_is_reported_and_other_resources_keep_working(
    kube_api: KubeApi,
    custom: client.CustomObjectsApi,
    batch: client.BatchV1Api,
    kube_client: client.ApiClient,
    queue: QueueClient,
    queue_table: TableRef,
    snowflake_server: ServerProcess,
    bucket: str,
) -> None:
    """What a cluster without CEL (or an older CRD) would let through reaches the operator."""
    fill(queue, 100)
    bad = processor("broken", queue_table, snowflake_server.port, bucket)
    bad["spec"]["endpoint"]["url"] = "http://plain.example.com/"
    custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, bad)
    custom.create_namespaced_custom_object(
        GROUP,
        VERSION,
        NAMESPACE,
        PLURAL,
        processor("healthy", queue_table, snowflake_server.port, bucket),
    )
    with operator():
        ready = wait_for(lambda: condition(status_of(custom, "broken"), "Ready"), what="Ready")
        wait_for(lambda: len(jobs_of(batch, "healthy")) == 1, what="the healthy one's Job")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "spec.endpoint.url" in ready["message"] and "https" in ready["message"]
    assert jobs_of(batch, "broken") == []
    events = client.CoreV1Api(kube_client).list_namespaced_event(NAMESPACE).items
    assert any(e.reason == "InvalidSpec" and "endpoint" in e.message for e in events)
