"""spec.job's pod template fields and compute modes: what the model accepts and what it
refuses, naming the field (spec/pod_template.py, spec/model.py). The CRD refuses the same with CEL
rules (tests/deploy/test_crd.py, tests/e2e/test_crd_on_server.py)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from snowflake_operator.kube.worker_environment import worker_environment
from snowflake_operator.spec.admission import INVALID_SPEC, Refusal, admit
from snowflake_operator.spec.model import ProcessorSpec
from snowflake_operator.spec.reference_policy import ReferencePolicy
from snowflake_operator.spec.table_claims import TableClaim
from tests.support.specs import MINIMAL_SPEC, processor_spec

POLICY = ReferencePolicy(images=(".*",), service_accounts=(".*",), secrets=(".*",))
MINE = TableClaim("2026-11-26T10:00:05Z", "ns", "mine")


def _job(**job: Any) -> ProcessorSpec:
    return processor_spec(MINIMAL_SPEC, job=job)


def _refusal(**job: Any) -> str:
    """The one-line message the operator reports (Ready=False InvalidSpec) for ``job``."""
    refused = admit({**MINIMAL_SPEC, "job": job}, POLICY, MINE, [])
    assert isinstance(refused, Refusal) and refused.reason == INVALID_SPEC, refused
    return refused.message


# -- compute ---------------------------------------------------------------------------


def test_fargate_is_the_default_and_stays_validated() -> None:
    assert _job().job.compute == "fargate"
    assert "job.cpu 3 is not a Fargate size" in _refusal(cpu="3")
    assert "on Fargate give it in Mi or Gi" in _refusal(memory="1.5Gi")
    assert "is billed as 0.5 vCPU / 2 GB" in _refusal(memory="1Gi")


@pytest.mark.parametrize(
    ("cpu", "memory"), [("3", "5Gi"), ("1500m", "1.5Gi"), ("0.1", "200Mi"), ("64", "512G")]
)
def test_nodes_take_any_size(cpu: str, memory: str) -> None:
    job = _job(compute="nodes", cpu=cpu, memory=memory).job
    assert (job.cpu, job.memory) == (cpu, memory)


@pytest.mark.parametrize(("cpu", "memory"), [("0", "1Gi"), ("1", "0Mi"), ("1", "1024")])
def test_nodes_refuse_nothing_and_sizes_without_a_unit(cpu: str, memory: str) -> None:
    with pytest.raises(ValidationError):
        _job(compute="nodes", cpu=cpu, memory=memory)


def test_nodes_may_not_ask_for_the_fargate_label() -> None:
    message = _refusal(compute="nodes", podLabels={"snowflake-processor.dev/fargate": "true"})
    assert "with compute nodes the pods would still go to Fargate" in message


# -- the security template is not overridable -------------------------------------------


@pytest.mark.parametrize(
    "name", ["SFP_ENDPOINT_URL", "SFP_NEW", "HOME", "PATH", "PYTHONPATH", "PYTHONSTARTUP",
             "LD_PRELOAD", "OPENSSL_CONF", "GCONV_PATH"],
)  # fmt: skip
def test_reserved_environment_names_are_refused(name: str) -> None:
    message = _refusal(env=[{"name": name, "value": "x"}])
    assert message.startswith(f"spec.job.env[0].name: {name} is reserved")
    assert "SFP_*" in message


@pytest.mark.parametrize("name", ["HTTPS_PROXY", "SSL_CERT_FILE", "TZ", "MY.VAR", "AWS_REGION"])
def test_other_environment_names_are_allowed(name: str) -> None:
    (variable,) = _job(env=[{"name": name, "value": "x"}]).job.env or []
    assert variable.name == name


@pytest.mark.parametrize("name", ["certificates", "tmp", "snowflake-key"])
def test_the_operators_volume_names_are_refused(name: str) -> None:
    message = _refusal(volumes=[{"name": name, "emptyDir": {}}])
    assert f"spec.job.volumes[0].name: {name} is reserved" in message


@pytest.mark.parametrize(
    "path",
    ["/opt/venv", "/opt", "/usr/local/lib/python3.11", "/etc/snowflake-processor/certs",
     "/etc/ld.so.preload", "/etc", "/tmp", "/tmp/x", "/var/run/secrets/eks.amazonaws.com",
     "/var/run", "/var", "/run", "/dev/termination-log", "/lib64", "/bin", "/proc/self"],
)  # fmt: skip
def test_mount_paths_at_under_or_above_the_reserved_ones_are_refused(path: str) -> None:
    message = _refusal(
        volumes=[{"name": "data", "emptyDir": {}}],
        volumeMounts=[{"name": "data", "mountPath": path}],
    )
    assert f"spec.job.volumeMounts[0].mountPath: {path} is at, under or above" in message


@pytest.mark.parametrize("path", ["/mnt/data", "/data", "/var/lib/cache", "/srv/x", "/home/app"])
def test_other_mount_paths_are_allowed(path: str) -> None:
    job = _job(
        volumes=[{"name": "data", "emptyDir": {}}],
        volumeMounts=[{"name": "data", "mountPath": path}],
    ).job
    assert job.volume_mounts is not None and job.volume_mounts[0].mount_path == path


@pytest.mark.parametrize("path", ["relative", "/mnt/../etc", "/mnt/./x", "/mnt/", "//mnt"])
def test_mount_paths_must_be_plain_absolute_paths(path: str) -> None:
    with pytest.raises(ValidationError, match="mountPath"):
        _job(
            volumes=[{"name": "d", "emptyDir": {}}], volumeMounts=[{"name": "d", "mountPath": path}]
        )


def test_security_profile_annotations_and_system_priority_classes_are_refused() -> None:
    apparmor = {"container.apparmor.security.beta.kubernetes.io/worker": "unconfined"}
    assert "AppArmor or seccomp" in _refusal(podAnnotations=apparmor)
    seccomp = {"seccomp.security.alpha.kubernetes.io/pod": "unconfined"}
    assert "AppArmor or seccomp" in _refusal(podAnnotations=seccomp)
    assert "reserved for the cluster's own" in _refusal(priorityClassName="system-node-critical")


def test_a_mount_must_name_an_extra_volume() -> None:
    # Not the operator's own volumes either: those names are reserved.
    message = _refusal(volumeMounts=[{"name": "certificates", "mountPath": "/mnt/c"}])
    assert "names no volume of spec.job.volumes" in message


def test_volumes_have_exactly_one_allowed_source() -> None:
    assert "exactly one of configMap, csi" in _refusal(volumes=[{"name": "x"}])
    two = [{"name": "x", "emptyDir": {}, "configMap": {"name": "c"}}]
    assert "exactly one of" in _refusal(volumes=two)


def test_duplicates_are_refused() -> None:
    assert "env name A appears twice" in _refusal(
        env=[{"name": "A", "value": "1"}, {"name": "A", "value": "2"}]
    )
    volumes = [{"name": "x", "emptyDir": {}}]
    mounts = [{"name": "x", "mountPath": "/mnt/a"}, {"name": "x", "mountPath": "/mnt/a"}]
    assert "mountPath /mnt/a appears twice" in _refusal(volumes=volumes, volumeMounts=mounts)


def test_env_and_tolerations_follow_kubernetes_rules() -> None:
    both = [{"name": "A", "value": "x", "valueFrom": {"fieldRef": {"fieldPath": "x"}}}]
    assert "has value and valueFrom" in _refusal(env=both)
    assert "valueFrom needs exactly one of" in _refusal(env=[{"name": "A", "valueFrom": {}}])
    exists = [{"key": "k", "operator": "Exists", "value": "v"}]
    assert "operator Exists has no value" in _refusal(tolerations=exists)
    assert "needs operator Exists" in _refusal(tolerations=[{"value": "v"}])


# -- minActiveJobs ---------------------------------------------------------------------


def test_min_active_jobs_within_max_and_warm_workers_wait_for_entries() -> None:
    assert "minActiveJobs must not exceed" in _refusal(minActiveJobs=5, maxActiveJobs=4)
    warm = worker_environment(_job(minActiveJobs=2, idleWaitSeconds=90), "job-0")
    assert warm["SFP_IDLE_WAIT_SECONDS"] == "90"
    cold = worker_environment(_job(idleWaitSeconds=90), "job-0")
    assert cold["SFP_IDLE_WAIT_SECONDS"] == "0"  # without warm Jobs: exit at once


# -- Kubernetes' own objects: typed as the core/v1 API, bounded -----------------------------

_REQUIRED = "requiredDuringSchedulingIgnoredDuringExecution"


def test_affinity_is_read_as_the_kubernetes_objects_it_is() -> None:
    term = {"matchExpressions": [{"key": "kubernetes.io/arch", "operator": "In",
                                  "values": ["amd64"]}]}  # fmt: skip
    anti = {"topologyKey": "kubernetes.io/hostname", "labelSelector": {"matchLabels": {"a": "b"}}}
    affinity = _job(
        affinity={
            "nodeAffinity": {_REQUIRED: {"nodeSelectorTerms": [term]}},
            "podAntiAffinity": {_REQUIRED: [anti]},
        }
    ).job.affinity
    assert affinity is not None and affinity.node_affinity is not None
    node = affinity.node_affinity.required_during_scheduling_ignored_during_execution
    assert node is not None
    (requirement,) = node.node_selector_terms[0].match_expressions or []
    assert (requirement.key, requirement.operator, requirement.values) == (
        "kubernetes.io/arch",
        "In",
        ["amd64"],
    )
    assert affinity.pod_anti_affinity is not None
    (kept_apart,) = (
        affinity.pod_anti_affinity.required_during_scheduling_ignored_during_execution or []
    )
    assert kept_apart.topology_key == "kubernetes.io/hostname"
    assert kept_apart.label_selector is not None
    assert kept_apart.label_selector.match_labels == {"a": "b"}


@pytest.mark.parametrize(
    ("job", "words"),
    [
        ({"affinity": {"nodeAffinity": {_REQUIRED: {"nodeSelectorTerms": [{}] * 33}}}},
         "nodeSelectorTerms: List should have at most 32 items"),
        ({"affinity": {"podAffinity": {_REQUIRED: [
            {"topologyKey": "zone", "namespaces": ["n"] * 65}]}}},
         "namespaces: List should have at most 64 items"),
        ({"tolerations": [{"key": "k" * 318, "operator": "Exists"}]},
         "tolerations[0].key: String should have at most 317 characters"),
        ({"volumes": [{"name": "c", "configMap": {"name": "c",
                                                  "items": [{"key": "k", "path": "p"}] * 65}}]},
         "configMap.items: List should have at most 64 items"),
        ({"volumes": [{"name": "e", "emptyDir": {"sizeLimit": "1 Gi"}}]},
         "emptyDir.sizeLimit: String should match pattern"),
        ({"nodeSelector": {f"k{i}": "v" for i in range(65)}},
         "spec.job.nodeSelector: Dictionary should have at most 64 items"),
    ],
    ids=["terms", "namespaces", "toleration-key", "items", "quantity", "node-selector"],
)  # fmt: skip
def test_kubernetes_objects_are_bounded(job: dict[str, Any], words: str) -> None:
    assert words in _refusal(**job)


def test_a_projected_volume_takes_config_maps_secrets_and_the_downward_api_only() -> None:
    token = {"serviceAccountToken": {"audience": "sts.amazonaws.com", "path": "token"}}
    with pytest.raises(ValidationError) as caught:
        _job(volumes=[{"name": "t", "projected": {"sources": [token]}}])
    assert ("job", "volumes", 0, "projected", "sources", 0, "serviceAccountToken") in [
        error["loc"] for error in caught.value.errors()
    ]
    two = {"configMap": {"name": "c"}, "secret": {"name": "s"}}
    assert "a projected source needs exactly one of configMap, secret, downwardAPI" in _refusal(
        volumes=[{"name": "p", "projected": {"sources": [two]}}]
    )
    name_file = {"path": "n", "fieldRef": {"fieldPath": "metadata.name"}}
    fine = [{"configMap": {"name": "c"}}, {"secret": {"name": "s"}},
            {"downwardAPI": {"items": [name_file]}}]  # fmt: skip
    (volume,) = _job(volumes=[{"name": "p", "projected": {"sources": fine}}]).job.volumes or []
    assert volume.projected is not None
    assert [source.source_type() for source in volume.projected.sources or []] == [
        "configMap",
        "secret",
        "downwardAPI",
    ]


def test_a_downward_api_file_has_exactly_one_source() -> None:
    none = [{"name": "d", "downwardAPI": {"items": [{"path": "name"}]}}]
    assert "a downward API file needs exactly one of fieldRef, resourceFieldRef" in _refusal(
        volumes=none
    )
