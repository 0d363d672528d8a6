"""The Job manifest and the Job index: pure functions, checked against Kubernetes' schema."""

from __future__ import annotations

from typing import Any

import kubernetes_validate
import pytest

from snowflake_operator.constants import CERT_MOUNT_PATH, PROCESSOR_LABEL
from snowflake_operator.job_history import JobRecord, job_record, jobs_beyond_history
from snowflake_operator.job_manifest import build_job
from snowflake_operator.processor_ref import ProcessorRef
from snowflake_operator.spec import ProcessorSpec
from tests.support.specs import processor_spec

KUBERNETES_VERSION = "1.31.0"
PROCESSOR = ProcessorRef("orders", "snowflake-processor", "0b9d3f1e-6a55-4d4e-9e4a-2c1f0d7a8b11")


SPEC: dict[str, Any] = {
    "snowflake": {
        "account": "acme-prod",
        "database": "OPS",
        "schema": "QUEUE",
        "table": "WORK",
    },
    "endpoint": {"url": "https://api.example.com/process"},
    "certificates": {"s3": {"bucket": "acme-certs", "prefix": "prod/"}},
    "job": {"podLabels": {"snowflake-processor.dev/fargate": "true"}},
}


def _spec(**changes: Any) -> ProcessorSpec:
    return processor_spec(SPEC, **changes)


def _job(spec: ProcessorSpec | None = None) -> dict[str, Any]:
    return build_job(
        "orders-1a2b-0",
        PROCESSOR,
        spec or _spec(),
        image="registry.example.com/snowflake-processor-worker:0.1.0",
        certificates_secret="orders-certificates",
    )


def _container(job: dict[str, Any]) -> dict[str, Any]:
    return dict(job["spec"]["template"]["spec"]["containers"][0])


@pytest.mark.parametrize(
    "auth",
    [
        {"mode": "workload_identity"},
        {"mode": "key_pair", "privateKeySecret": {"name": "sf-key", "key": "rsa_key.p8"}},
        {"mode": "password", "passwordSecret": {"name": "sf-login", "key": "password"}},
    ],
)
def test_every_job_passes_kubernetes_validate_strict(auth: dict[str, Any]) -> None:
    user = {} if auth["mode"] == "workload_identity" else {"user": "SVC_PROCESSOR"}
    job = _job(_spec(snowflake={"auth": auth, **user}))
    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)


def test_job_is_owned_labelled_and_never_retried_by_kubernetes() -> None:
    job = _job()
    (owner,) = job["metadata"]["ownerReferences"]
    assert owner["kind"] == "SnowflakeProcessor" and owner["uid"] == PROCESSOR.uid
    assert owner["controller"] is True
    assert job["metadata"]["labels"][PROCESSOR_LABEL] == "orders"
    assert job["metadata"]["namespace"] == "snowflake-processor"
    assert job["spec"]["backoffLimit"] == 0
    assert job["spec"]["ttlSecondsAfterFinished"] == 3600
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    assert pod_labels["snowflake-processor.dev/fargate"] == "true"  # Fargate profile selector
    assert pod_labels[PROCESSOR_LABEL] == "orders"


def test_deadline_stays_below_the_lease() -> None:
    spec = _spec(queue={"leaseSeconds": 1200})
    job = _job(spec)
    assert job["spec"]["activeDeadlineSeconds"] == 800 < 1200
    env = {e["name"]: e.get("value") for e in _container(job)["env"]}
    assert int(env["SFP_DEADLINE_SECONDS"]) + int(env["SFP_GRACE_SECONDS"]) <= 800


def test_pod_is_locked_down() -> None:
    job = _job()
    pod = job["spec"]["template"]["spec"]
    container = _container(job)
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] > 0
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["restartPolicy"] == "Never"
    security = container["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    resources = container["resources"]
    assert resources["requests"] == resources["limits"] == {"cpu": "0.5", "memory": "1Gi"}
    (certificates,) = [v for v in pod["volumes"] if v["name"] == "certificates"]
    assert certificates["secret"] == {"secretName": "orders-certificates", "defaultMode": 0o400}
    mount = next(m for m in container["volumeMounts"] if m["name"] == "certificates")
    assert mount == {"name": "certificates", "mountPath": CERT_MOUNT_PATH, "readOnly": True}


def test_secrets_reach_the_pod_only_by_reference() -> None:
    spec = _spec(
        snowflake={
            "user": "SVC",
            "auth": {
                "mode": "key_pair",
                "privateKeySecret": {"name": "sf-key", "key": "rsa_key.p8"},
                "privateKeyPassphraseSecret": {"name": "sf-key", "key": "passphrase"},
            },
        }
    )
    container = _container(_job(spec))
    env = {e["name"]: e for e in container["env"]}
    assert env["SFP_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"]["valueFrom"]["secretKeyRef"] == {
        "name": "sf-key",
        "key": "passphrase",
    }
    assert "value" not in env["SFP_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"]
    assert env["SFP_SNOWFLAKE_PRIVATE_KEY_FILE"]["value"].endswith("/rsa_key.p8")
    assert any(m["name"] == "snowflake-key" and m["readOnly"] for m in container["volumeMounts"])


def _record(name: str, *, done: str | None, ok: bool = True, created: str = "") -> JobRecord:
    status: dict[str, Any] = {}
    if done:
        kind = "Complete" if ok else "Failed"
        status = {
            "conditions": [{"type": kind, "status": "True", "lastTransitionTime": done}],
            "succeeded" if ok else "failed": 1,
        }
        if ok:
            status["completionTime"] = done
    return job_record(name, {"creationTimestamp": created or "2026-11-25T10:00:00Z"}, status)


def test_pending_and_running_jobs_are_unfinished() -> None:
    assert job_record("a", {}, None).finished is False  # pod still Pending: no status yet
    assert job_record("b", {}, {"active": 1}).finished is False
    assert job_record("c", {}, {"failed": 1}).finished is True
    assert job_record("d", {}, {"succeeded": 1}).succeeded is True


def test_history_keeps_the_newest_of_each_kind() -> None:
    records = [
        _record("ok-1", done="2026-11-25T10:01:00Z"),
        _record("ok-2", done="2026-11-25T10:02:00Z"),
        _record("ok-3", done="2026-11-25T10:03:00Z"),
        _record("bad-1", done="2026-11-25T10:01:30Z", ok=False),
        _record("bad-2", done="2026-11-25T10:02:30Z", ok=False),
        _record("running", done=None),
    ]
    assert jobs_beyond_history(records, successful_limit=1, failed_limit=1) == [
        "ok-1",
        "ok-2",
        "bad-1",
    ]
    assert jobs_beyond_history(records, successful_limit=5, failed_limit=5) == []
    assert "running" not in jobs_beyond_history(records, 0, 0)


def test_fold_summaries_counts_each_finished_job_once() -> None:
    from datetime import UTC, datetime

    from snowflake_operator.constants import COUNTED_ANNOTATION
    from snowflake_operator.job_history import fold_summaries

    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    recent = "2026-11-25T11:59:00Z"
    old = "2026-11-25T10:00:00Z"
    done = _record("done", done=recent)
    counted = job_record(
        "counted",
        {"annotations": {COUNTED_ANNOTATION: "true"}},
        {"succeeded": 1, "completionTime": recent},
    )
    waiting = _record("waiting", done=recent)  # finished a minute ago, pod not seen yet
    gone = _record("gone", done=old)  # finished long ago, pod gone: counted as zero
    garbled = _record("garbled", done=recent)
    running = _record("running", done=None)
    summaries = {
        "done": '{"event": "summary", "completed": 40, "failed": 2}',
        "counted": '{"event": "summary", "completed": 999, "failed": 999}',
        "garbled": "not json",
        "running": '{"completed": 5}',
    }
    totals = fold_summaries([done, counted, waiting, gone, garbled, running], summaries, now)
    assert (totals.completed, totals.failed) == (40, 2)
    assert set(totals.counted_jobs) == {"done", "gone", "garbled"}
