"""The Job manifest (kube/job_manifest.py) and the Jobs' history (poll/job_history.py):
pure functions, the manifests checked against Kubernetes' schema."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import kubernetes_validate
import pytest

from snowflake_operator.constants import CERT_MOUNT_PATH, FARGATE_PROFILE_LABEL, PROCESSOR_LABEL
from snowflake_operator.kube.job_manifest import build_job
from snowflake_operator.kube.processor_ref import ProcessorRef
from snowflake_operator.poll.job_history import JobRecord, job_record, jobs_beyond_history
from snowflake_operator.spec.model import ProcessorSpec
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
}
LAUNCHED_AT = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)


def _spec(**changes: Any) -> ProcessorSpec:
    return processor_spec(SPEC, **changes)


def _job(spec: ProcessorSpec | None = None) -> dict[str, Any]:
    return build_job(
        "orders-1a2b-0",
        PROCESSOR,
        spec or _spec(),
        image="registry.example.com/snowflake-processor-worker:0.1.0",
        certificates_secret="orders-certificates",
        launched_at=LAUNCHED_AT,
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
    # A safety net only: the operator deletes a Job once its summary is counted.
    assert job["spec"]["ttlSecondsAfterFinished"] == 300
    pod_labels = job["spec"]["template"]["metadata"]["labels"]
    assert pod_labels[PROCESSOR_LABEL] == "orders"


@pytest.mark.parametrize(
    "pod_labels",
    [{}, {"team": "data"}, {FARGATE_PROFILE_LABEL: "false"}, {FARGATE_PROFILE_LABEL: ""}],
    ids=["none", "unrelated", "false", "empty"],
)
def test_every_pod_carries_the_worker_fargate_profile_label(pod_labels: dict[str, str]) -> None:
    """Whatever spec.job.podLabels says (default: nothing), the pod has the label the
    worker Fargate profile selects; without it the pod stays Pending on Fargate."""
    job = _job(_spec(job={"podLabels": pod_labels}))
    labels = job["spec"]["template"]["metadata"]["labels"]
    assert labels[FARGATE_PROFILE_LABEL] == "true"
    assert (
        labels.items()
        >= {k: v for k, v in pod_labels.items() if k != FARGATE_PROFILE_LABEL}.items()
    )


def test_deadline_stays_below_the_lease() -> None:
    spec = _spec(queue={"leaseSeconds": 1200})
    job = _job(spec)
    assert job["spec"]["activeDeadlineSeconds"] == 800 < 1200
    env = {e["name"]: e.get("value") for e in _container(job)["env"]}
    assert int(env["SFP_DEADLINE_SECONDS"]) + int(env["SFP_GRACE_SECONDS"]) <= 800


def test_worker_deadline_is_absolute_from_the_jobs_start() -> None:
    """Kubernetes counts activeDeadlineSeconds from the Job's start, pod scheduling and
    image pull included: the worker gets the time to stop claiming, counted from the
    Job's creation, so that it stops, gives calls in flight their grace and writes back
    before Kubernetes kills it, however late its pod started."""
    job = _job(_spec(queue={"leaseSeconds": 1200}, job={"graceSeconds": 30}))
    env = {e["name"]: e.get("value") for e in _container(job)["env"]}
    deadline_at = datetime.fromisoformat(env["SFP_DEADLINE_AT"])
    killed_at = LAUNCHED_AT + timedelta(seconds=job["spec"]["activeDeadlineSeconds"])
    assert deadline_at + timedelta(seconds=30) < killed_at
    assert killed_at - deadline_at == timedelta(seconds=30 + 15)  # grace + write-back margin
    assert env["SFP_DEADLINE_AT"].endswith("Z")


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
    # 768Mi + the 256Mi Fargate adds is 0.5 vCPU / 1 GB exactly: nothing billed unused.
    assert resources["requests"] == resources["limits"] == {"cpu": "0.5", "memory": "768Mi"}
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


# -- spec.job's pod template fields --------------------------------------------------

ON_NODES: dict[str, Any] = {
    "compute": "nodes",
    "cpu": "1500m",
    "memory": "3Gi",
    "podLabels": {"team": "data"},
    "podAnnotations": {"karpenter.sh/do-not-disrupt": "true"},
    "env": [
        {"name": "HTTPS_PROXY", "value": "http://proxy.internal:3128"},
        {"name": "SSL_CERT_FILE", "value": "/mnt/proxy-ca/ca.pem"},
        {"name": "NODE", "valueFrom": {"fieldRef": {"fieldPath": "spec.nodeName"}}},
    ],
    "nodeSelector": {"karpenter.sh/capacity-type": "on-demand"},
    "tolerations": [{"key": "dedicated", "operator": "Equal", "value": "queue",
                     "effect": "NoSchedule"}],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {
                "nodeSelectorTerms": [
                    {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In",
                                           "values": ["amd64"]}]}
                ]
            }
        }
    },
    "priorityClassName": "batch-low",
    "volumes": [{"name": "proxy-ca", "configMap": {"name": "proxy-ca"}}],
    "volumeMounts": [{"name": "proxy-ca", "mountPath": "/mnt/proxy-ca", "readOnly": True}],
}  # fmt: skip


def test_pod_template_fields_reach_the_pod_beside_the_operators_own() -> None:
    job = _job(_spec(job=ON_NODES))
    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)
    template = job["spec"]["template"]
    pod, container = template["spec"], _container(job)
    assert template["metadata"]["annotations"] == {"karpenter.sh/do-not-disrupt": "true"}
    assert template["metadata"]["labels"]["team"] == "data"
    assert pod["nodeSelector"] == {"karpenter.sh/capacity-type": "on-demand"}
    assert pod["tolerations"] == ON_NODES["tolerations"]
    assert pod["affinity"] == ON_NODES["affinity"]
    assert pod["priorityClassName"] == "batch-low"
    assert container["resources"]["limits"] == {"cpu": "1500m", "memory": "3Gi"}
    env = [e["name"] for e in container["env"]]
    assert env[-3:] == ["HTTPS_PROXY", "SSL_CERT_FILE", "NODE"]
    assert "SFP_ENDPOINT_URL" in env and "HOME" in env
    assert [v["name"] for v in pod["volumes"]] == ["certificates", "tmp", "proxy-ca"]
    assert container["volumeMounts"][-1] == {
        "name": "proxy-ca",
        "mountPath": "/mnt/proxy-ca",
        "readOnly": True,
    }
    # The security template is the operator's, whatever the resource adds.
    assert pod["securityContext"] == _job()["spec"]["template"]["spec"]["securityContext"]
    assert container["securityContext"] == _container(_job())["securityContext"]


# Every typed field of affinity, tolerations and each volume type, as a pod spec spells it.
_SELECTOR = {
    "matchLabels": {"app": "cache"},
    "matchExpressions": [
        {"key": "tier", "operator": "In", "values": ["a", "b"]},
        {"key": "canary", "operator": "DoesNotExist"},
    ],
}
_DOWNWARD_ITEMS = [
    {
        "path": "labels",
        "fieldRef": {"fieldPath": "metadata.labels", "apiVersion": "v1"},
        "mode": 0o440,
    },
    {
        "path": "memory",
        "resourceFieldRef": {
            "containerName": "worker",
            "resource": "limits.memory",
            "divisor": "1Mi",
        },
    },
]
TYPED: dict[str, Any] = {
    "tolerations": [
        {"key": "dedicated", "operator": "Equal", "value": "queue", "effect": "NoSchedule"},
        {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute",
         "tolerationSeconds": 60},
        {"operator": "Exists"},
    ],
    "affinity": {
        "nodeAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": [
                {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In",
                                       "values": ["amd64", "arm64"]}],
                 "matchFields": [{"key": "metadata.name", "operator": "NotIn",
                                  "values": ["node-a"]}]},
            ]},
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 50, "preference": {"matchExpressions": [
                    {"key": "karpenter.sh/capacity-type", "operator": "In",
                     "values": ["on-demand"]}]}},
            ],
        },
        "podAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {"labelSelector": _SELECTOR, "namespaces": ["cache"],
                 "topologyKey": "topology.kubernetes.io/zone", "matchLabelKeys": ["version"]},
            ],
        },
        "podAntiAffinity": {
            "preferredDuringSchedulingIgnoredDuringExecution": [
                {"weight": 100, "podAffinityTerm": {
                    "labelSelector": {"matchLabels": {"snowflake-processor.dev/processor": "x"}},
                    "namespaceSelector": {},
                    "topologyKey": "kubernetes.io/hostname",
                    "mismatchLabelKeys": ["team"]}},
            ],
        },
    },
    "volumes": [
        {"name": "config", "configMap": {"name": "proxy-ca", "defaultMode": 0o444,
                                         "optional": True,
                                         "items": [{"key": "ca.pem", "path": "ca.pem",
                                                    "mode": 0o400}]}},
        {"name": "keys", "secret": {"secretName": "api-token", "items": [
            {"key": "token", "path": "token"}]}},
        {"name": "scratch", "emptyDir": {"medium": "Memory", "sizeLimit": "256Mi"}},
        {"name": "plain", "emptyDir": {}},
        {"name": "podinfo", "downwardAPI": {"defaultMode": 0o444, "items": _DOWNWARD_ITEMS}},
        {"name": "data", "persistentVolumeClaim": {"claimName": "shared-data",
                                                   "readOnly": True}},
        {"name": "bundle", "projected": {"defaultMode": 0o440, "sources": [
            {"configMap": {"name": "settings", "items": [{"key": "a", "path": "a.json"}]}},
            {"secret": {"name": "api-token", "optional": False}},
            {"downwardAPI": {"items": _DOWNWARD_ITEMS[:1]}},
        ]}},
        {"name": "vault", "csi": {"driver": "secrets-store.csi.k8s.io", "readOnly": True,
                                  "fsType": "ext4",
                                  "volumeAttributes": {"secretProviderClass": "queue"},
                                  "nodePublishSecretRef": {"name": "aws-creds"}}},
        {"name": "cache", "ephemeral": {"volumeClaimTemplate": {
            "metadata": {"labels": {"team": "data"},
                         "annotations": {"example.com/purpose": "cache"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "gp3",
                     "volumeMode": "Filesystem",
                     "resources": {"requests": {"storage": "10Gi"},
                                   "limits": {"storage": "20Gi"}},
                     "selector": _SELECTOR,
                     "dataSource": {"kind": "PersistentVolumeClaim", "name": "warm-cache"},
                     "dataSourceRef": {"apiGroup": "snapshot.storage.k8s.io",
                                       "kind": "VolumeSnapshot", "name": "nightly"}},
        }}},
    ],
    "volumeMounts": [{"name": "data", "mountPath": "/mnt/data", "readOnly": True,
                      "subPath": "queue"}],
}  # fmt: skip


def test_typed_affinity_tolerations_and_volumes_reach_the_pod_as_written() -> None:
    """The typed pod template fields serialize back to exactly what the resource wrote: the
    same JSON the pod got while they were kept as untyped objects."""
    spec = _spec(job={**ON_NODES, **TYPED})
    job = _job(spec)
    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)
    pod = job["spec"]["template"]["spec"]
    assert pod["affinity"] == TYPED["affinity"]
    assert pod["tolerations"] == TYPED["tolerations"]
    assert pod["volumes"][2:] == TYPED["volumes"]  # after certificates and tmp
    assert _container(job)["volumeMounts"][-1] == TYPED["volumeMounts"][0]
    assert (spec.job.volumes or [])[-1].source_type() == "ephemeral"
    assert [volume.source_type() for volume in spec.job.volumes or []] == [
        "configMap", "secret", "emptyDir", "emptyDir", "downwardAPI", "persistentVolumeClaim",
        "projected", "csi", "ephemeral",
    ]  # fmt: skip


def test_on_nodes_the_pod_does_not_carry_the_fargate_label() -> None:
    """EKS sends a pod that a Fargate profile selects to Fargate, whatever its
    nodeSelector says: with compute nodes the operator leaves the label off."""
    labels = _job(_spec(job=ON_NODES))["spec"]["template"]["metadata"]["labels"]
    assert FARGATE_PROFILE_LABEL not in labels
    assert labels[PROCESSOR_LABEL] == "orders"


def test_without_pod_template_fields_the_pod_is_as_before() -> None:
    pod = _job()["spec"]["template"]["spec"]
    assert not {"nodeSelector", "tolerations", "affinity", "priorityClassName"} & set(pod)
    assert "annotations" not in _job()["spec"]["template"]["metadata"]


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


def test_a_job_runs_once_its_pod_is_ready_not_while_fargate_starts_it() -> None:
    """The Job controller counts a Pending pod as active (Fargate takes about a minute to
    start one); only a ready pod is running. A Job status without `ready` (an API server
    older than 1.24) falls back to active."""
    starting = {"active": 1, "ready": 0}
    assert job_record("starting", {}, starting).running is False
    assert job_record("running", {}, {"active": 1, "ready": 1}).running is True
    assert job_record("old-server", {}, {"active": 1}).running is True
    assert job_record("done", {}, {"succeeded": 1, "ready": 0}).running is False


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
    from snowflake_operator.poll.job_history import fold_summaries

    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    recent = "2026-11-25T11:59:00Z"
    old = "2026-11-25T10:00:00Z"
    done = _record("done", done=recent)
    counted = job_record(
        "counted",
        {"annotations": {COUNTED_ANNOTATION: "true"}},
        {"succeeded": 1, "completionTime": recent},
    )
    waiting = _record("waiting", done=recent)  # finished a minute ago, message not in yet
    gone = _record("gone", done=old)  # finished long ago, pod gone: counted as zero
    garbled = _record("garbled", done=recent)
    running = _record("running", done=None)
    summaries = {
        "done": '{"event": "summary", "completed": 40, "failed": 2}',
        "counted": '{"event": "summary", "completed": 999, "failed": 999}',
        "garbled": "not json",
        "running": '{"completed": 5}',
        "waiting": None,  # its pod is known: its summary may still come
    }
    totals = fold_summaries([done, counted, waiting, gone, garbled, running], summaries, now)
    assert (totals.completed, totals.failed) == (40, 2)
    assert set(totals.counted_jobs) == {"done", "gone", "garbled"}


def test_a_finished_job_whose_pod_is_gone_or_silent_frees_its_place_at_once() -> None:
    """A pod evicted by a node drain, force-deleted or garbage-collected takes its summary
    with it, and a worker killed by SIGKILL leaves none: waiting minutes for it would keep
    the Job's place and stall launches (seen on the real cluster after a drain). Only the
    moment a pod's deletion may lag its Job's finish on the watches is waited for."""
    from datetime import UTC, datetime, timedelta

    from snowflake_operator.poll.job_history import POD_GONE_GRACE_SECONDS, fold_summaries

    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)

    def ago(seconds: float) -> str:
        return (now - timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")

    evicted = _record("evicted", done=ago(POD_GONE_GRACE_SECONDS + 1))
    just_finished = _record("just-finished", done=ago(1))
    killed = _record("killed", done=ago(1))
    summaries = {"killed": ""}  # terminated without a message; the others' pods are gone
    totals = fold_summaries([evicted, just_finished, killed], summaries, now)
    assert set(totals.counted_jobs) == {"evicted", "killed"}
    assert (totals.completed, totals.failed) == (0, 0)
    assert not any(report.summary_seen for report in totals.reports)


class _History:
    """A JobHistory in memory: what the poll's fold and clean-up steps see and do."""

    def __init__(self, records: list[JobRecord], summaries: dict[str, str | None]) -> None:
        self._records = records
        self._summaries = summaries
        self.counted: list[str] = []
        self.deleted: list[str] = []

    def records(self) -> list[JobRecord]:
        return [r for r in self._records if r.name not in self.deleted]

    def summaries(self) -> dict[str, str | None]:
        return self._summaries

    def mark_counted(self, name: str) -> None:
        self.counted.append(name)

    def delete(self, name: str) -> None:
        self.deleted.append(name)


def test_a_finished_job_is_deleted_in_the_poll_that_counts_it() -> None:
    """On Fargate a finished pod is billed until it is removed: with the default history
    limits the poll that folds a Job's summary into the totals also deletes the Job (and
    its pod); an Event keeps its record."""
    from snowflake_operator.poll.run import clean_up_history, fold_worker_summaries, mark_counted

    now = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
    history = _History(
        [
            _record("ok", done="2026-11-25T11:59:00Z"),
            _record("bad", done="2026-11-25T11:59:30Z", ok=False),
            _record("waiting", done="2026-11-25T11:59:40Z"),  # its pod's message not in yet
            _record("running", done=None),
        ],
        {
            "ok": '{"completed": 1990, "failed": 10}',
            "bad": '{"completed": 5, "failed": 0}',
            "waiting": None,
        },
    )
    spec = _spec()
    folded = fold_worker_summaries(history, now, {"completed": 7, "failed": 1})
    assert history.counted == []  # only once the poll went through
    mark_counted(history, folded.counted_jobs)
    clean_up_history(history, spec, folded.counted_jobs)
    assert folded.totals == {"completed": 7 + 1990 + 5, "failed": 1 + 10}
    assert sorted(history.deleted) == ["bad", "ok"]  # at once, not an hour later
    assert sorted(history.counted) == ["bad", "ok"]
    assert sorted(folded.events) == [
        ("Normal", "JobSucceeded", "Job ok succeeded: 1990 entries completed, 10 failed for good"),
        ("Warning", "JobFailed", "Job bad failed: 5 entries completed, 0 failed for good"),
    ]


def test_history_limits_keep_counted_jobs_where_asked() -> None:
    from snowflake_operator.poll.run import clean_up_history

    history = _History(
        [
            _record("ok-1", done="2026-11-25T10:01:00Z"),
            _record("ok-2", done="2026-11-25T10:02:00Z"),
        ],
        {},
    )
    spec = _spec(job={"successfulJobsHistoryLimit": 1})
    clean_up_history(history, spec, ("ok-1", "ok-2"))
    assert history.deleted == ["ok-1"]


def test_the_header_secret_is_mounted_read_only_and_never_read_into_the_manifest() -> None:
    spec = _spec(endpoint={"url": "https://api.example.com/process", "headersSecret": "api-key"})
    job = _job(spec)
    pod = job["spec"]["template"]["spec"]
    (volume,) = [v for v in pod["volumes"] if v["name"] == "endpoint-headers"]
    assert volume["secret"] == {"secretName": "api-key", "defaultMode": 0o400}
    container = _container(job)
    (mount,) = [m for m in container["volumeMounts"] if m["name"] == "endpoint-headers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert mount["readOnly"] and env["SFP_ENDPOINT_HEADERS_DIR"] == mount["mountPath"]
    kubernetes_validate.validate(job, KUBERNETES_VERSION, strict=True)
    plain = _job()
    assert all(
        v["name"] != "endpoint-headers" for v in plain["spec"]["template"]["spec"]["volumes"]
    )
    assert "SFP_ENDPOINT_HEADERS_DIR" not in {e["name"] for e in _container(plain)["env"]}


def test_a_pod_that_ended_without_a_message_says_so() -> None:
    from snowflake_operator.constants import WORKER_CONTAINER
    from snowflake_operator.poll.job_history import best_summary, termination_message

    def status(state: dict[str, Any]) -> dict[str, Any]:
        return {"containerStatuses": [{"name": WORKER_CONTAINER, "state": state}]}

    assert termination_message(status({"running": {}})) is None
    assert termination_message(status({"terminated": {"exitCode": 137}})) == ""
    assert termination_message(status({"terminated": {"message": '{"completed": 3}'}})) == (
        '{"completed": 3}'
    )
    # A Job's pods: the replacement's summary wins over a killed pod's silence.
    assert best_summary(["", '{"completed": 3}', None]) == '{"completed": 3}'
    assert best_summary([None, ""]) == ""
    assert best_summary([None]) is None
