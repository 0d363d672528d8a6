"""The Helm chart: lint, render, validate against Kubernetes' own schemas, and check the
contract with the Terraform (names, labels, IRSA annotations), least-privilege RBAC, the
pod's security settings, the values schema and checkov's Kubernetes policies.

Needs the helm binary (PATH, else .tools/bin/helm) and checkov (.tools/bin/checkov):
`make test` installs both with `make tools`. A missing tool fails the tests, never skips.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from snowflake_operator.daemon.operator_command import add_operator_arguments, election_timing
from snowflake_operator.spec.admission import Admitted, admit
from snowflake_operator.spec.fargate_sizes import fargate_size_allowed
from snowflake_operator.spec.operator_settings import OperatorSettings
from snowflake_operator.spec.resource import PRINTER_COLUMNS
from snowflake_operator.spec.table_claims import TableClaim
from tests.deploy.test_crd import describe, schema_errors
from tests.support.deploy_tools import checkov_report as shared_checkov_report
from tests.support.deploy_tools import passed_checks, tool, tool_env

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "snowflake-processor"
ALL_FEATURES = CHART / "ci" / "all-features-values.yaml"
CRONJOB_VALUES = CHART / "ci" / "cronjob-values.yaml"
RELEASE, RELEASE_NAMESPACE, JOBS_NAMESPACE = (
    "snowflake-processor",
    "snowflake-processor-system",
    "snowflake-processor",
)
KUBERNETES_VERSION = "1.31.0"
CUSTOM_RESOURCE_GROUPS = ("monitoring.coreos.com/",)  # Prometheus Operator CRs
OPERATOR_SA, WORKER_SA = "snowflake-processor-operator", "snowflake-processor-worker"
ALERTS = {
    "SnowflakeProcessorBacklogGrowing",
    "SnowflakeProcessorDeadLettersRising",
    "SnowflakeProcessorEntriesStranded",
    "SnowflakeProcessorNoSuccessfulPoll",
    "SnowflakeProcessorOperatorDown",
    "SnowflakeProcessorServiceErrors",
}
# What a cluster with the Prometheus Operator serves (helm template knows only built-ins).
PROMETHEUS_OPERATOR_APIS = (
    "--api-versions",
    "monitoring.coreos.com/v1/ServiceMonitor",
    "--api-versions",
    "monitoring.coreos.com/v1/PrometheusRule",
)
# Named value sets rendered by the tests: extra `helm template` arguments. VALUE_SETS are
# operator mode's (a Deployment); EVERY_MODE adds CronJob mode (tests/deploy/test_chart_cronjob.py).
VALUE_SETS: dict[str, tuple[str, ...]] = {
    "default": (),
    "all-features": ("--values", str(ALL_FEATURES)),
}
EVERY_MODE: dict[str, tuple[str, ...]] = {
    **VALUE_SETS,
    "cronjob": ("--values", str(CRONJOB_VALUES)),
}
CRD_NAME = "snowflakeprocessors.snowflake-processor.dev"

Manifest = dict[str, Any]


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [tool("helm"), *args], capture_output=True, text=True, env=tool_env(), timeout=120
    )
    if check and result.returncode != 0:
        pytest.fail(f"helm {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


# The chart publishes no image: every render names the repositories (later values win).
IMAGE_VALUES = ("--values", str(Path(__file__).with_name("chart-image-values.yaml")))
OPERATOR_REPOSITORY, WORKER_REPOSITORY = (
    f"123456789012.dkr.ecr.us-east-1.amazonaws.com/snowflake-processor-{name}"
    for name in ("operator", "worker")
)


def template_args(*extra: str, chart: Path = CHART, images: bool = True) -> list[str]:
    given = IMAGE_VALUES if images else ()
    return ["template", RELEASE, str(chart), "--namespace", RELEASE_NAMESPACE, *given, *extra]


@cache
def render(*extra: str) -> tuple[Manifest, ...]:
    out = helm(*template_args(*extra)).stdout
    return tuple(doc for doc in yaml.safe_load_all(out) if doc)


def render_set(name: str) -> tuple[Manifest, ...]:
    """A value set rendered for a cluster that serves the Prometheus Operator's kinds."""
    return render(*EVERY_MODE[name], *PROMETHEUS_OPERATOR_APIS)


def of_kind(docs: tuple[Manifest, ...], kind: str) -> list[Manifest]:
    return [doc for doc in docs if doc["kind"] == kind]


def one(docs: tuple[Manifest, ...], kind: str) -> Manifest:
    found = of_kind(docs, kind)
    assert len(found) == 1, f"expected one {kind}, got {len(found)}"
    return found[0]


def operator_container(docs: tuple[Manifest, ...]) -> Manifest:
    containers = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    assert [c["name"] for c in containers] == ["operator"]
    return containers[0]  # type: ignore[no-any-return]


def rbac_rules(docs: tuple[Manifest, ...]) -> list[Manifest]:
    return [
        rule for kind in ("ClusterRole", "Role") for r in of_kind(docs, kind) for rule in r["rules"]
    ]


def grants(docs: tuple[Manifest, ...]) -> dict[tuple[str, str], set[str]]:
    """(apiGroup, resource) -> verbs, over every Role and ClusterRole."""
    result: dict[tuple[str, str], set[str]] = {}
    for rule in rbac_rules(docs):
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                result.setdefault((group, resource), set()).update(rule["verbs"])
    return result


# --- lint and render --------------------------------------------------------------------


@pytest.mark.parametrize("value_set", EVERY_MODE)
def test_helm_lint_passes(value_set: str) -> None:
    result = helm("lint", str(CHART), "--strict", *EVERY_MODE[value_set])
    assert "0 chart(s) failed" in result.stdout


@pytest.mark.parametrize("value_set", EVERY_MODE)
def test_rendered_builtin_kinds_are_valid_kubernetes(value_set: str) -> None:
    validated = []
    for doc in render_set(value_set):
        if doc["apiVersion"].startswith(CUSTOM_RESOURCE_GROUPS):
            continue  # custom resources: checked below against their own structure
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        validated.append(doc["kind"])
    expected = (
        {"ServiceAccount", "CronJob", "ConfigMap", "Role"}
        if value_set == "cronjob"
        else {"ServiceAccount", "Deployment", "Service", "PodDisruptionBudget"}
    )
    assert expected <= set(validated), validated


def test_default_render_is_the_documented_set_of_objects() -> None:
    kinds = sorted(f"{d['kind']}/{d['metadata']['name']}" for d in render_set("default"))
    assert kinds == [
        f"CustomResourceDefinition/{CRD_NAME}",
        "Deployment/snowflake-processor-operator",
        "PodDisruptionBudget/snowflake-processor-operator",
        "Role/snowflake-processor-operator",
        "Role/snowflake-processor-operator-leader-election",
        "RoleBinding/snowflake-processor-operator",
        "RoleBinding/snowflake-processor-operator-leader-election",
        "Service/snowflake-processor-operator-metrics",
        f"ServiceAccount/{OPERATOR_SA}",
        f"ServiceAccount/{WORKER_SA}",
    ]


def test_all_features_render_every_optional_object() -> None:
    kinds = {d["kind"] for d in render_set("all-features")}
    assert kinds == {
        "CustomResourceDefinition",
        "Namespace",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "Service",
        "Deployment",
        "PodDisruptionBudget",
        "ServiceMonitor",
        "PrometheusRule",
        "ConfigMap",  # the Grafana dashboard
    }


def test_objects_land_in_the_contract_namespaces() -> None:
    for doc in render_set("all-features"):
        namespace = doc["metadata"].get("namespace")
        if doc["kind"] == "Namespace":
            assert namespace is None and doc["metadata"]["name"] == JOBS_NAMESPACE
        elif doc["kind"] == "CustomResourceDefinition":
            assert namespace is None  # cluster-scoped
        elif doc["metadata"]["name"].endswith("-leader-election"):
            assert namespace == RELEASE_NAMESPACE, doc["kind"]  # the Lease's namespace
        elif doc["kind"] in {"Role", "RoleBinding"} or (
            doc["kind"] == "ServiceAccount" and doc["metadata"]["name"] == WORKER_SA
        ):
            assert namespace == JOBS_NAMESPACE, doc["kind"]
        else:
            assert namespace == RELEASE_NAMESPACE, doc["kind"]


def test_jobs_namespace_is_created_only_when_asked() -> None:
    assert not of_kind(render_set("default"), "Namespace")
    namespace = one(render("--set", "jobs.createNamespace=true"), "Namespace")
    assert namespace["metadata"]["name"] == JOBS_NAMESPACE
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "restricted"
    other = one(
        render("--set", "jobs.createNamespace=true", "--set", "jobs.namespace=q"), "Namespace"
    )
    assert other["metadata"]["name"] == "q"


# --- the contract with Terraform and the operator ------------------------------------------


LEADER_ELECTION_ARGS = [
    "--leader-elect",
    "--leader-elect-resource-name",
    "snowflake-processor-operator",
    "--leader-elect-resource-namespace",
    RELEASE_NAMESPACE,
    "--leader-elect-lease-duration",
    "15",
    "--leader-elect-renew-deadline",
    "10",
    "--leader-elect-retry-period",
    "2",
]


def test_operator_args_env_and_ports_by_default() -> None:
    container = operator_container(render_set("default"))
    assert container["args"] == ["operator", "--namespace", JOBS_NAMESPACE, *LEADER_ELECTION_ARGS]
    version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert container["image"] == f"{OPERATOR_REPOSITORY}:{version}"
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["SFP_OPERATOR_WORKER_IMAGE"] == f"{WORKER_REPOSITORY}:{version}"
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"health": 8080, "metrics": 9090}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": 8080}
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": 8080}
    assert env["SFP_OPERATOR_HEALTH_PORT"] == "8080"


@pytest.mark.parametrize("name", ["operator", "worker"])
@pytest.mark.parametrize("mode", ["operator", "cronjob"])
def test_an_install_without_an_image_repository_says_what_to_set(name: str, mode: str) -> None:
    """No image is published: a default repository would be pulled from Docker Hub and
    end as ImagePullBackOff, so an empty one stops the install with the value to set."""
    other = {"operator": "worker", "worker": "operator"}[name]
    result = helm(
        *template_args(
            "--set", f"mode={mode}", "--set", f"{other}.image.repository=registry.example/{other}",
            images=False,
        ),
        check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert (
        f"{name}.image.repository is not set: give the registry path you pushed the {name} image to"
    ) in result.stderr
    assert "terraform output -raw helm_values" in result.stderr


def test_image_tags_default_to_the_app_version_which_is_the_project_version() -> None:
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["apiVersion"] == "v2"
    assert chart["version"] == chart["appVersion"] == (ROOT / "VERSION").read_text().strip()
    assert chart["kubeVersion"] == ">=1.29.0-0"
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert f'version = "{chart["appVersion"]}"' in pyproject


def test_all_features_args_namespace_scope_and_leader_election() -> None:
    container = operator_container(render_set("all-features"))
    assert container["args"] == [
        "operator",
        "--namespace",
        JOBS_NAMESPACE,
        *LEADER_ELECTION_ARGS,
        "--log-level",
        "DEBUG",
    ]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["SFP_OPERATOR_WORKER_IMAGE"].startswith(
        "123456789012.dkr.ecr.us-east-1.amazonaws.com/snowflake-processor-worker@sha256:"
    )


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_operator_accepts_the_rendered_arguments_and_environment(
    value_set: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The args parse with the operator's own parser; each SFP_OPERATOR_* variable is a
    field of its settings and parses there."""
    container = operator_container(render_set(value_set))
    assert container["args"][0] == "operator"
    parser = argparse.ArgumentParser(exit_on_error=False)
    add_operator_arguments(parser)
    parsed = parser.parse_args(container["args"][1:])
    assert parsed.namespace == [JOBS_NAMESPACE]
    assert parsed.leader_elect is True
    assert election_timing(parsed).problem() is None
    fields = set(OperatorSettings.model_fields)
    for env in container["env"]:
        if env["name"].startswith("SFP_OPERATOR_"):
            assert env["name"].removeprefix("SFP_OPERATOR_").lower() in fields, env["name"]
            monkeypatch.setenv(env["name"], env["value"])
    config = OperatorSettings()
    assert config.metrics_port == 9090
    version = yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"]
    assert config.worker_image.endswith((f"snowflake-processor-worker:{version}", "0" * 64))


def test_operator_config_values_become_environment_variables() -> None:
    container = operator_container(render("--set", "operator.config.livenessSeconds=900"))
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["SFP_OPERATOR_LIVENESS_SECONDS"] == "900"
    assert env["SFP_OPERATOR_MAX_BACKOFF_SECONDS"] == "300"
    assert env["SFP_OPERATOR_EVENT_REPEAT_SECONDS"] == "600"
    assert env["SFP_OPERATOR_CERTIFICATES_RECHECK_SECONDS"] == "300"
    assert env["SFP_OPERATOR_STATUS_HEARTBEAT_SECONDS"] == "600"


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_operator_pod_labels_match_the_fargate_profile(value_set: str) -> None:
    deployment = one(render_set(value_set), "Deployment")
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "snowflake-processor"
    assert labels["app.kubernetes.io/component"] == "operator"
    selector = deployment["spec"]["selector"]["matchLabels"]
    assert selector.items() <= labels.items()


def test_pod_labels_cannot_override_the_selector_labels() -> None:
    docs = render("--set", "operator.podLabels.app\\.kubernetes\\.io/name=other")
    labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert labels["app.kubernetes.io/name"] == "snowflake-processor"


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_service_accounts(value_set: str) -> None:
    accounts = accounts_by_name(render_set(value_set))
    assert set(accounts) == {OPERATOR_SA, WORKER_SA}
    assert accounts[OPERATOR_SA]["metadata"]["namespace"] == RELEASE_NAMESPACE
    assert accounts[WORKER_SA]["metadata"]["namespace"] == JOBS_NAMESPACE
    assert accounts[WORKER_SA]["automountServiceAccountToken"] is False
    deployment = one(render_set(value_set), "Deployment")
    assert deployment["spec"]["template"]["spec"]["serviceAccountName"] == OPERATOR_SA


def accounts_by_name(docs: tuple[Manifest, ...]) -> dict[str, Manifest]:
    return {sa["metadata"]["name"]: sa for sa in of_kind(docs, "ServiceAccount")}


def role_arn(sa: Manifest) -> str | None:
    return (sa["metadata"].get("annotations") or {}).get("eks.amazonaws.com/role-arn")


def test_role_arn_annotations_only_when_set() -> None:
    accounts = accounts_by_name(render_set("default"))
    assert role_arn(accounts[OPERATOR_SA]) is None
    assert role_arn(accounts[WORKER_SA]) is None
    accounts = accounts_by_name(render_set("all-features"))
    arn = "arn:aws:iam::123456789012:role/{}"
    assert role_arn(accounts[OPERATOR_SA]) == arn.format("snowflake-processor-operator")
    assert role_arn(accounts[WORKER_SA]) == arn.format("snowflake-processor-worker")
    only_worker = accounts_by_name(
        render("--set", "worker.serviceAccount.roleArn=" + arn.format("w"))
    )
    assert role_arn(only_worker[WORKER_SA]) == arn.format("w")
    assert role_arn(only_worker[OPERATOR_SA]) is None
    annotations = accounts[OPERATOR_SA]["metadata"]["annotations"]
    assert annotations["eks.amazonaws.com/sts-regional-endpoints"] == "true"  # extra ones kept


def test_worker_service_account_can_be_left_to_someone_else() -> None:
    docs = render("--set", "worker.serviceAccount.create=false")
    assert [sa["metadata"]["name"] for sa in of_kind(docs, "ServiceAccount")] == [OPERATOR_SA]


# --- the pod's security settings --------------------------------------------------------


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_operator_pod_security(value_set: str) -> None:
    deployment = one(render_set(value_set), "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is True  # it talks to the Kubernetes API
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert not any(pod.get(k) for k in ("hostNetwork", "hostPID", "hostIPC"))
    container = operator_container(render_set(value_set))
    security = container["securityContext"]
    assert security["runAsNonRoot"] is True
    assert security["runAsUser"] == 10001
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["privileged"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert security["seccompProfile"] == {"type": "RuntimeDefault"}
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert "emptyDir" in volumes[mounts["/tmp"]]


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_operator_resources_are_a_fargate_size_with_requests_equal_to_limits(
    value_set: str,
) -> None:
    resources = operator_container(render_set(value_set))["resources"]
    assert resources["requests"] == resources["limits"]
    # Fargate adds 256Mi and bills the size that holds the sum: the request fills it.
    requests = resources["requests"]
    cpu = str(int(requests["cpu"].removesuffix("m")) / 1000).removesuffix(".0")
    assert fargate_size_allowed(cpu, requests["memory"]), requests
    if value_set == "default":
        assert requests == {"cpu": "250m", "memory": "768Mi"}  # billed 0.25 vCPU / 1 GB


def test_two_replicas_by_default_roll_without_a_gap_and_spread_out() -> None:
    """replicaCount 2 is the production setting, so that a lost pod costs a Lease's takeover,
    not a reschedule. Only the Lease's holder acts, so old and new pods may overlap during
    a rollout: one more first, none less."""
    docs = render_set("default")
    deployment = one(docs, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"] == {
        "type": "RollingUpdate",
        "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1},
    }
    selector = deployment["spec"]["selector"]["matchLabels"]
    preferred = deployment["spec"]["template"]["spec"]["affinity"]["podAntiAffinity"][
        "preferredDuringSchedulingIgnoredDuringExecution"
    ]
    assert {term["podAffinityTerm"]["topologyKey"] for term in preferred} == {
        "kubernetes.io/hostname",
        "topology.kubernetes.io/zone",
    }
    assert all(t["podAffinityTerm"]["labelSelector"]["matchLabels"] == selector for t in preferred)
    budget = one(docs, "PodDisruptionBudget")
    assert budget["spec"] == {"minAvailable": 1, "selector": {"matchLabels": selector}}
    assert budget["metadata"]["namespace"] == RELEASE_NAMESPACE


def test_one_replica_has_no_disruption_budget_that_would_block_node_drains() -> None:
    assert not of_kind(render("--set", "replicaCount=1"), "PodDisruptionBudget")
    assert not of_kind(
        render("--set", "operator.podDisruptionBudget.enabled=false"), "PodDisruptionBudget"
    )


# --- RBAC -----------------------------------------------------------------------------------

# What operator/snowflake_operator and kopf call; anything more is a finding.
BASE_GRANTS = {
    ("snowflake-processor.dev", "snowflakeprocessors"): {"get", "list", "watch", "patch"},
    ("snowflake-processor.dev", "snowflakeprocessors/status"): {"get", "patch"},
    ("batch", "jobs"): {"get", "list", "watch", "create", "patch", "delete"},
    ("", "pods"): {"list", "watch"},
    ("", "secrets"): {"get", "create", "patch"},
    ("", "events"): {"create", "patch"},
    ("events.k8s.io", "events"): {"create", "patch"},
}
# Leader election between the replicas: the Lease in the release namespace, and only it.
LEASE_GRANTS = {("coordination.k8s.io", "leases"): {"create", "get", "patch"}}


def operator_roles(docs: tuple[Manifest, ...]) -> list[Manifest]:
    return [
        r for r in of_kind(docs, "Role") if not r["metadata"]["name"].endswith("-leader-election")
    ]


def operator_bindings(docs: tuple[Manifest, ...]) -> list[Manifest]:
    return [
        b
        for b in of_kind(docs, "RoleBinding")
        if not b["metadata"]["name"].endswith("-leader-election")
    ]


@pytest.mark.parametrize("scope", ["cluster", "namespace"])
def test_the_lease_is_all_the_release_namespace_grants(scope: str) -> None:
    """The replicas' Lease needs a Role of its own where the operator runs;
    reading and renewing are narrowed to the Lease's name (create cannot be)."""
    docs = render("--set", f"rbac.scope={scope}")
    (role,) = [
        r for r in of_kind(docs, "Role") if r["metadata"]["name"].endswith("-leader-election")
    ]
    assert role["metadata"]["namespace"] == RELEASE_NAMESPACE
    assert grants((role,)) == LEASE_GRANTS
    narrowed = [rule for rule in role["rules"] if rule.get("resourceNames")]
    assert narrowed == [
        {
            "apiGroups": ["coordination.k8s.io"],
            "resources": ["leases"],
            "resourceNames": ["snowflake-processor-operator"],
            "verbs": ["get", "patch"],
        }
    ]
    args = operator_container(docs)["args"]
    assert args[args.index("--leader-elect-resource-name") + 1] == "snowflake-processor-operator"
    (binding,) = [
        b for b in of_kind(docs, "RoleBinding") if b["metadata"]["name"] == role["metadata"]["name"]
    ]
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": RELEASE_NAMESPACE}
    ]
    assert not any(group == "kopf.dev" for group, _ in grants(docs))  # no kopf peering


def test_cluster_scope_grants_exactly_what_the_operator_needs() -> None:
    docs = render("--set", "rbac.scope=cluster")
    assert watched_namespaces(docs) == []
    assert grants(docs) == {**BASE_GRANTS, **LEASE_GRANTS}
    assert not operator_roles(docs) and not operator_bindings(docs)
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": one(docs, "ClusterRole")["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": RELEASE_NAMESPACE}
    ]


def test_namespace_scope_grants_nothing_cluster_wide() -> None:
    docs = render("--set", "rbac.scope=namespace")
    assert not of_kind(docs, "ClusterRole") and not of_kind(docs, "ClusterRoleBinding")
    (role,), (binding,) = operator_roles(docs), operator_bindings(docs)
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == JOBS_NAMESPACE
    assert grants((role,)) == BASE_GRANTS
    assert binding["roleRef"]["kind"] == "Role"
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": RELEASE_NAMESPACE}
    ]
    args = operator_container(docs)["args"]
    assert args[args.index("--namespace") + 1] == JOBS_NAMESPACE


def watched_namespaces(docs: tuple[Manifest, ...]) -> list[str]:
    args = operator_container(docs)["args"]
    return [args[i + 1] for i, arg in enumerate(args) if arg == "--namespace"]


def test_default_rbac_is_namespace_scoped() -> None:
    """By default nothing is granted cluster-wide: the operator reads Secrets only in the
    namespace it watches, so a resource cannot make it read another namespace's Secrets."""
    docs = render_set("default")
    assert not of_kind(docs, "ClusterRole") and not of_kind(docs, "ClusterRoleBinding")
    (role,), (binding,) = operator_roles(docs), operator_bindings(docs)
    assert role["metadata"]["namespace"] == binding["metadata"]["namespace"] == JOBS_NAMESPACE
    assert watched_namespaces(docs) == [JOBS_NAMESPACE]
    assert grants((role,)) == BASE_GRANTS


def test_a_role_in_each_watched_namespace() -> None:
    docs = render("--set", "watchNamespaces={team-a,team-b}")
    assert watched_namespaces(docs) == ["team-a", "team-b"]
    assert not of_kind(docs, "ClusterRole") and not of_kind(docs, "ClusterRoleBinding")
    roles = {r["metadata"]["namespace"]: r for r in operator_roles(docs)}
    bindings = {b["metadata"]["namespace"]: b for b in operator_bindings(docs)}
    assert set(roles) == set(bindings) == {"team-a", "team-b"}
    for namespace, binding in bindings.items():
        assert binding["roleRef"] == {
            "apiGroup": "rbac.authorization.k8s.io",
            "kind": "Role",
            "name": roles[namespace]["metadata"]["name"],
        }
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": RELEASE_NAMESPACE}
        ]
        assert grants((roles[namespace],)) == BASE_GRANTS


def operator_settings(docs: tuple[Manifest, ...], monkeypatch: pytest.MonkeyPatch) -> Any:
    for env in operator_container(docs)["env"]:
        if env["name"].startswith("SFP_OPERATOR_"):
            monkeypatch.setenv(env["name"], env["value"])
    return OperatorSettings()


def test_allow_lists_reach_the_operator(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a resource may reference, so that creating one grants no more than the chart
    meant: by default the chart's worker image (any tag or digest), the chart's worker
    service account and no Secret."""
    defaults = operator_settings(render_set("default"), monkeypatch)
    assert defaults.allowed_service_accounts == [WORKER_SA]
    assert defaults.allowed_secrets == []
    assert defaults.image_allowed(f"{WORKER_REPOSITORY}:1.2.3")
    assert defaults.image_allowed(f"{WORKER_REPOSITORY}@sha256:" + "a" * 64)
    assert not defaults.image_allowed(f"{WORKER_REPOSITORY}-evil:1")
    assert not defaults.image_allowed("attacker.example.com/snowflake-processor-worker:1")
    assert defaults.allowed_volume_types == [
        "configMap",
        "secret",
        "emptyDir",
        "downwardAPI",
        "persistentVolumeClaim",
        "projected",
    ]  # not csi nor ephemeral
    allowed = (
        '{"images": ["registry\\\\.example\\\\.com/team-a/.*"], "serviceAccounts": ["etl"],'
        ' "secrets": ["snowflake-key", "team-a-.*"], "volumeTypes": ["configMap", "csi"]}'
    )
    custom = operator_settings(render("--set-json", f"allowed={allowed}"), monkeypatch)
    assert custom.allowed_service_accounts == [WORKER_SA, "etl"]
    assert custom.allowed_secrets == ["snowflake-key", "team-a-.*"]
    assert custom.allowed_volume_types == ["configMap", "csi"]
    assert custom.image_allowed("registry.example.com/team-a/worker:2")
    assert custom.image_allowed(f"{WORKER_REPOSITORY}:0.1.0")  # the default image stays
    assert not custom.image_allowed("registry.example.com/team-b/worker:2")


@pytest.mark.parametrize("value_set", EVERY_MODE)
def test_rbac_has_no_wildcards_nor_escalation(value_set: str) -> None:
    rules = rbac_rules(render_set(value_set))
    assert rules
    for rule in rules:
        for key in ("apiGroups", "resources", "verbs"):
            assert "*" not in rule[key], rule
            assert not any("*" in item for item in rule[key]), rule
        assert not rule.get("nonResourceURLs"), rule
        assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"]), rule
    resources = {resource for rule in rules for resource in rule["resources"]}
    assert not resources & {"pods/exec", "clusterroles", "roles", "rolebindings", "nodes"}


def test_rbac_can_be_left_to_someone_else() -> None:
    docs = render("--set", "rbac.create=false")
    assert not {"Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding"} & {
        d["kind"] for d in docs
    }


# --- metrics --------------------------------------------------------------------------------


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_metrics_service_selects_the_operator_pods(value_set: str) -> None:
    docs = render_set(value_set)
    service = one(docs, "Service")
    pod_labels = one(docs, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert service["spec"]["selector"]["app.kubernetes.io/component"] == "operator"
    (port,) = service["spec"]["ports"]
    assert port["name"] == "metrics" and port["port"] == 9090
    container_ports = {p["name"]: p["containerPort"] for p in operator_container(docs)["ports"]}
    assert port["targetPort"] in container_ports or port["targetPort"] == 9090
    assert container_ports[port["targetPort"]] == 9090


def test_monitoring_objects_only_when_enabled() -> None:
    kinds = {d["kind"] for d in render_set("default")}
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}
    only_rule = {
        d["kind"]
        for d in render("--set", "metrics.prometheusRule.enabled=true", *PROMETHEUS_OPERATOR_APIS)
    }
    assert "PrometheusRule" in only_rule and "ServiceMonitor" not in only_rule


def test_monitoring_objects_only_where_the_cluster_serves_their_kinds(tmp_path: Path) -> None:
    """Enabled on a cluster without the Prometheus Operator CRDs, a ServiceMonitor or
    PrometheusRule would fail the whole install ("no matches for kind"): they are left
    out, and the notes say so."""
    enabled = ("--values", str(ALL_FEATURES))
    kinds = {d["kind"] for d in render(*enabled)}
    assert not kinds & {"ServiceMonitor", "PrometheusRule"}
    assert "Deployment" in kinds
    notes = render_notes(tmp_path, *enabled)
    assert "no ServiceMonitor was created" in notes
    assert "no PrometheusRule was created" in notes
    served = render_notes(tmp_path / "served", *enabled, *PROMETHEUS_OPERATOR_APIS)
    assert "was created" not in served


def test_service_monitor_without_the_service_is_refused() -> None:
    result = helm(
        *template_args(
            "--set", "metrics.serviceMonitor.enabled=true", "--set", "metrics.service.enabled=false"
        ),
        check=False,
    )
    assert result.returncode != 0
    assert "metrics.service.enabled" in result.stderr


def check_keys(node: Manifest, allowed: set[str], where: str) -> None:
    unknown = set(node) - allowed
    assert not unknown, f"{where}: unexpected keys {sorted(unknown)}"


def test_service_monitor_structure() -> None:
    """monitoring.coreos.com/v1 ServiceMonitor: only fields of its CRD, pointing at the
    metrics Service (kubernetes-validate does not know custom resources)."""
    docs = render_set("all-features")
    monitor, service = one(docs, "ServiceMonitor"), one(docs, "Service")
    assert monitor["apiVersion"] == "monitoring.coreos.com/v1"
    check_keys(monitor, {"apiVersion", "kind", "metadata", "spec"}, "ServiceMonitor")
    assert monitor["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    spec = monitor["spec"]
    check_keys(spec, {"selector", "namespaceSelector", "endpoints"}, "spec")
    assert spec["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert spec["namespaceSelector"] == {"matchNames": [service["metadata"]["namespace"]]}
    (endpoint,) = spec["endpoints"]
    check_keys(
        endpoint, {"port", "path", "scheme", "interval", "scrapeTimeout", "honorLabels"}, "endpoint"
    )
    # The operator's series carry the processor's own namespace label: keep it, or
    # Prometheus renames it exported_namespace and the alerts point at the operator's.
    assert endpoint["honorLabels"] is True
    assert endpoint["port"] in {p["name"] for p in service["spec"]["ports"]}
    assert endpoint["path"] == "/metrics"
    assert duration_seconds(endpoint["scrapeTimeout"]) < duration_seconds(endpoint["interval"])


def duration_seconds(text: str) -> float:
    match = re.fullmatch(r"(\d+)(ms|s|m|h)", text)
    assert match, f"not a Prometheus duration: {text!r}"
    factor = {"ms": 0.001, "s": 1, "m": 60, "h": 3600}[match.group(2)]
    return int(match.group(1)) * factor


def alert_rules() -> dict[str, Manifest]:
    rule = one(render_set("all-features"), "PrometheusRule")
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    check_keys(rule, {"apiVersion", "kind", "metadata", "spec"}, "PrometheusRule")
    check_keys(rule["spec"], {"groups"}, "spec")
    rules: dict[str, Manifest] = {}
    for group in rule["spec"]["groups"]:
        check_keys(group, {"name", "rules", "interval"}, "group")
        for item in group["rules"]:
            check_keys(item, {"alert", "expr", "for", "labels", "annotations"}, item["alert"])
            rules[item["alert"]] = item
    return rules


def test_prometheus_rule_structure() -> None:
    rules = alert_rules()
    assert set(rules) == ALERTS
    for name, rule in rules.items():
        assert isinstance(rule["expr"], str) and rule["expr"].strip(), name
        assert rule["labels"]["severity"] in {"warning", "critical"}, name
        assert {"summary", "description"} <= set(rule["annotations"]), name
        if "for" in rule:
            duration_seconds(rule["for"])
        assert rule["expr"].count("(") == rule["expr"].count(")"), name
        assert rule["expr"].count("{") == rule["expr"].count("}"), name
        for text in rule["annotations"].values():  # Prometheus templates survived Helm
            assert text.count("{{") == text.count("}}"), name


def test_alert_expressions_use_the_operator_metrics_contract() -> None:
    rules = alert_rules()
    backlog = rules["SnowflakeProcessorBacklogGrowing"]
    assert backlog["expr"] == "deriv(snowflake_processor_backlog[30m]) > 0"
    assert backlog["for"] == "30m"
    stranded = rules["SnowflakeProcessorEntriesStranded"]
    assert stranded["expr"] == "snowflake_processor_stranded_entries > 0"
    assert stranded["for"] == "15m"
    dead = rules["SnowflakeProcessorDeadLettersRising"]["expr"]
    assert re.fullmatch(r"delta\(snowflake_processor_dead_letters\[\d+m\]\) > 0", dead)
    poll = rules["SnowflakeProcessorNoSuccessfulPoll"]["expr"]
    assert poll == (
        "(time() - snowflake_processor_last_successful_poll_timestamp_seconds > 900)"
        " unless on(namespace, processor) (snowflake_processor_suspended == 1)"
    )
    errors = rules["SnowflakeProcessorServiceErrors"]["expr"]
    responses = "snowflake_processor_service_responses_total"
    assert errors == (
        "(sum by (namespace, processor) (increase("
        f'{responses}{{status_class=~"5xx|error"}}[30m])) / sum by (namespace, processor) '
        f"(increase({responses}[30m]))) > 0.1"
    )
    down = rules["SnowflakeProcessorOperatorDown"]
    assert down["expr"] == 'absent(up{job=~".*snowflake-processor.*"} == 1)'  # test_alert_rules
    assert down["for"] == "5m"
    for name in ALERTS - {"SnowflakeProcessorOperatorDown"}:
        summary = rules[name]["annotations"]["summary"]
        assert "{{ $labels.namespace }}" in summary and "{{ $labels.processor }}" in summary
    # Prometheus names the scrape job after the Service: the OperatorDown regex must match.
    service = one(render_set("all-features"), "Service")["metadata"]["name"]
    assert re.fullmatch(".*snowflake-processor.*", service)


def test_default_poll_alert_threshold_is_ten_minutes() -> None:
    docs = render("--set", "metrics.prometheusRule.enabled=true", *PROMETHEUS_OPERATOR_APIS)
    rules = {
        r["alert"]: r for g in one(docs, "PrometheusRule")["spec"]["groups"] for r in g["rules"]
    }
    expr = rules["SnowflakeProcessorNoSuccessfulPoll"]["expr"]
    assert "> 600)" in expr
    assert expr.endswith("unless on(namespace, processor) (snowflake_processor_suspended == 1)")


# --- the values schema -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ("bogus: 1\n", "bogus"),
        ("operator:\n  bogus: 1\n", "bogus"),
        ("metrics:\n  serviceMonitor:\n    intervall: 30s\n", "intervall"),
        ("replicaCount: two\n", "replicaCount"),
        ("replicaCount: 0\n", "replicaCount"),
        ("mode: both\n", "mode"),
        ("operator:\n  leaderElection:\n    leaseDurationSeconds: 0\n", "leaseDurationSeconds"),
        ("cronjob:\n  processors:\n    - name: Orders_1\n      spec: {}\n", "name"),
        ("cronjob:\n  processors:\n    - name: orders\n", "spec"),
        ("cronjob:\n  processors:\n    - name: " + "a" * 53 + "\n      spec: {}\n", "name"),
        ("rbac:\n  scope: everything\n", "scope"),
        ("operator:\n  image:\n    tag: 1.2\n", "tag"),
        ("worker:\n  image:\n    tag: 2\n", "tag"),
        ("operator:\n  serviceAccount:\n    roleArn: not-an-arn\n", "roleArn"),
        ("operator:\n  image:\n    digest: latest\n", "digest"),
        ("watchNamespaces: [Team_A]\n", "watchNamespaces"),
        ("allowed:\n  image: []\n", "image"),
        ("allowed:\n  volumeTypes: [hostPath]\n", "volumeTypes"),
        ("allowed:\n  volumeTypes: [csi, csi]\n", "volumeTypes"),
    ],
)
def test_values_violating_the_schema_fail_naming_the_key(
    values: str, named: str, tmp_path: Path
) -> None:
    path = tmp_path / "values.yaml"
    path.write_text(values)
    result = helm(*template_args("--values", str(path)), check=False)
    assert result.returncode != 0, result.stdout[:500]
    assert named in result.stderr, result.stderr


def load_schema() -> Manifest:
    schema: Manifest = json.loads((CHART / "values.schema.json").read_text())
    return schema


def schema_nodes(node: Manifest, path: str = "") -> Iterator[tuple[str, Manifest]]:
    yield path, node
    for name, child in (node.get("properties") or {}).items():
        yield from schema_nodes(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from schema_nodes(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from schema_nodes(node["additionalProperties"], f"{path}.*")


# Objects the schema leaves open, and why.
OPEN_OBJECTS = {
    ".global": "parent charts pass their globals down",
    ".cronjob.processors[].spec": "a SnowflakeProcessor spec: every run checks it with the "
    "operator's own rules and messages (the CRD's schema and the admission code)",
}


def test_schema_is_draft7_and_closed_everywhere() -> None:
    """Every object with named properties rejects other keys; free-form maps (labels,
    annotations, nodeSelector) accept only string values; OPEN_OBJECTS stay open."""
    schema = load_schema()
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    jsonschema.Draft7Validator.check_schema(schema)
    for path, node in schema_nodes(schema):
        if node.get("type") != "object" or path in OPEN_OBJECTS:
            continue
        if "properties" in node:
            assert node.get("additionalProperties") is False, path
        else:
            assert node.get("additionalProperties") == {"type": "string"}, path


def test_schema_covers_exactly_the_documented_values() -> None:
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    schema = load_schema()

    def compare(value: Any, node: Manifest, path: str) -> None:
        if "properties" not in node:
            return
        assert set(value) == set(node["properties"]) - {"global"}, path
        for key, child in value.items():
            compare(child, node["properties"][key], f"{path}.{key}")

    compare(values, schema, "")


def merged(base: Manifest, override: Manifest) -> Manifest:
    """Helm's coalescing of a values file over the chart's values (maps merge)."""
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            result[key] = merged(base[key], value)
        else:
            result[key] = value
    return result


def test_values_files_satisfy_the_schema() -> None:
    defaults = yaml.safe_load((CHART / "values.yaml").read_text())
    jsonschema.validate(defaults, load_schema())
    for extra in (ALL_FEATURES, CRONJOB_VALUES):
        jsonschema.validate(merged(defaults, yaml.safe_load(extra.read_text())), load_schema())


def test_every_value_is_commented() -> None:
    """Each key in values.yaml has a comment right above it (or one for its block)."""
    lines = (CHART / "values.yaml").read_text().splitlines()
    undocumented = []
    for number, line in enumerate(lines):
        if not re.match(r"^\s*[A-Za-z][\w.-]*:", line):
            continue
        previous = lines[number - 1].strip() if number else ""
        if not previous.startswith("#"):
            undocumented.append(f"{number + 1}: {line.strip()}")
    assert not undocumented, undocumented


def test_all_features_values_turn_everything_on() -> None:
    values = yaml.safe_load(ALL_FEATURES.read_text())
    assert values["replicaCount"] == 2
    assert values["rbac"]["scope"] == "namespace"
    assert values["metrics"]["serviceMonitor"]["enabled"] is True
    assert values["metrics"]["prometheusRule"]["enabled"] is True
    assert values["operator"]["serviceAccount"]["roleArn"]
    assert values["worker"]["serviceAccount"]["roleArn"]


# --- the CRD --------------------------------------------------------------------------------


def test_chart_crd_is_a_byte_identical_copy_of_the_top_level_crd() -> None:
    top = sorted(p.name for p in (ROOT / "crds").iterdir())
    chart = sorted(p.name for p in (CHART / "files" / "crds").iterdir())
    assert chart == top
    for name in top:
        copy = CHART / "files" / "crds" / name
        assert copy.read_bytes() == (ROOT / "crds" / name).read_bytes(), name


def test_helm_upgrade_upgrades_the_crd() -> None:
    """Helm installs a chart's crds/ once and never upgrades it: the CRD is a template, so
    `helm upgrade` applies every change to it, and it outlives `helm uninstall`."""
    assert not (CHART / "crds").exists(), "crds/ would be installed once, never upgraded"
    crd = one(render_set("default"), "CustomResourceDefinition")
    top = yaml.safe_load((ROOT / "crds" / "snowflakeprocessors.yaml").read_text())
    assert crd == top  # rendered as it is, not re-serialised
    assert crd["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert not of_kind(render("--set", "crds.install=false"), "CustomResourceDefinition")


# --- NOTES.txt ------------------------------------------------------------------------------


def render_notes(tmp_path: Path, *extra: str) -> str:
    """`helm template` never prints NOTES.txt: render it from a copy of the chart."""
    copy = tmp_path / "chart"
    shutil.copytree(CHART, copy)
    shutil.copy(copy / "templates" / "NOTES.txt", copy / "notes-under-test.txt")
    (copy / "templates" / "zz-notes.yaml").write_text(
        'kind: Notes\nnotes: {{ tpl (.Files.Get "notes-under-test.txt") . | toJson }}\n'
    )
    out = helm(*template_args(*extra, "--show-only", "templates/zz-notes.yaml", chart=copy))
    (doc,) = [d for d in yaml.safe_load_all(out.stdout) if d]
    return str(doc["notes"])


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_notes_say_how_to_check_it_worked(value_set: str, tmp_path: Path) -> None:
    notes = render_notes(tmp_path, *VALUE_SETS[value_set])
    assert f"kubectl get pods -n {RELEASE_NAMESPACE}" in notes
    assert f"kubectl get sfp -n {JOBS_NAMESPACE}" in notes
    assert "helm upgrade also upgrades the CRD" in notes
    assert f"kubectl get lease snowflake-processor-operator -n {RELEASE_NAMESPACE}" in notes


def notes_manifest(notes: str) -> Manifest:
    """The SnowflakeProcessor the NOTES tell users to paste (a shell here-document)."""
    found = re.search(r"^kubectl apply -f - <<'EOF'\n(.*?)^EOF$", notes, re.DOTALL | re.MULTILINE)
    assert found, "the NOTES hold no `kubectl apply -f - <<'EOF'` ... `EOF` block at column 0"
    return yaml.safe_load(found.group(1))  # type: ignore[no-any-return]


@pytest.mark.parametrize("value_set", VALUE_SETS)
def test_notes_hold_all_a_packaged_install_needs(
    value_set: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chart installed from an OCI registry has no examples/: the NOTES' resource is
    inline, valid against the CRD and admitted by the operator the same values install."""
    notes = render_notes(tmp_path, *VALUE_SETS[value_set])
    assert "examples/" not in notes
    resource = notes_manifest(notes)
    assert resource["metadata"]["namespace"] == JOBS_NAMESPACE
    errors = schema_errors(resource)
    assert errors == [], describe(errors)
    docs = render(*VALUE_SETS[value_set])
    assert JOBS_NAMESPACE in watched_namespaces(docs)
    settings = operator_settings(docs, monkeypatch)
    claim = TableClaim("", JOBS_NAMESPACE, resource["metadata"]["name"])
    verdict = admit(resource["spec"], settings.reference_policy(), claim, [])
    assert isinstance(verdict, Admitted), verdict


def test_notes_show_the_columns_kubectl_get_sfp_prints(tmp_path: Path) -> None:
    header = "   ".join(["NAME", *(c.name.upper() for c in PRINTER_COLUMNS if c.priority == 0)])
    assert f"\n   {header}\n" in render_notes(tmp_path)


def test_notes_name_the_secrets_the_operator_allows(tmp_path: Path) -> None:
    (tmp_path / "default").mkdir()
    (tmp_path / "listed").mkdir()
    assert "lists it (now empty)" in render_notes(tmp_path / "default")
    notes = render_notes(tmp_path / "listed", "--set", "allowed.secrets={team-a-.*,mtls}")
    assert "lists it (now: team-a-.*, mtls)" in notes


# --- checkov ---------------------------------------------------------------------------------


def run_checkov(*extra: str) -> Manifest:
    return shared_checkov_report("helm", "-d", str(CHART), *extra)


@pytest.mark.parametrize("value_set", EVERY_MODE)
def test_checkov_helm_finds_no_failure(value_set: str) -> None:
    files = {"all-features": ALL_FEATURES, "cronjob": CRONJOB_VALUES}
    extra = ("--var-file", str(files.get(value_set, IMAGE_VALUES[1])))
    report = run_checkov(*extra)
    passed_checks(report)
    assert report["summary"]["parsing_errors"] == 0, report["summary"]
    for skipped in report["results"]["skipped_checks"]:
        reason = skipped["check_result"].get("suppress_comment", "")
        assert reason and reason != "No comment provided", skipped["check_id"]


# --- docs/install.md --------------------------------------------------------------------------


def test_install_guide_has_the_commands_the_chart_expects() -> None:
    guide = (ROOT / "docs" / "install.md").read_text()
    assert (
        "helm install snowflake-processor charts/snowflake-processor "
        "-n snowflake-processor-system --create-namespace -f values.yaml"
    ) in guide
    assert "kubectl apply -f charts/snowflake-processor/crds/" not in guide  # no such folder
    assert "kubectl label crd snowflakeprocessors.snowflake-processor.dev" in guide  # adoption
    assert "## 1. AWS: Terraform" in guide
    assert "terraform/eks/README.md" in guide
    columns = [c.name.upper() for c in PRINTER_COLUMNS if c.priority == 0]
    assert re.search(" +".join(["NAME", *columns]), guide)  # kubectl get sfp
    assert re.search(r"READY +STATUS.*\n.*1/1 +Running", guide)  # kubectl get pods
    for example in re.findall(r"examples/[\w-]+\.yaml", guide):
        assert (ROOT / example).exists(), example


def test_grafana_dashboard_uses_only_metrics_the_operator_exports() -> None:
    import json as json_module

    from prometheus_client import REGISTRY

    import snowflake_operator.daemon.metrics  # noqa: F401  (registers the metrics)

    docs = render("--set", "metrics.grafanaDashboard.enabled=true")
    (config_map,) = [
        d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("dashboard")
    ]
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json_module.loads(config_map["data"]["snowflake-processor.json"])
    exported = {
        sample_name
        for family in REGISTRY.collect()
        for sample_name in (family.name, f"{family.name}_total", f"{family.name}_bucket")
    }
    used = {
        name
        for panel in dashboard["panels"]
        for target in panel["targets"]
        for name in re.findall(r"snowflake_processor_[a-z_]+", target["expr"])
    }
    assert len(used) >= 10
    assert used <= exported, used - exported
    assert all(
        d["kind"] != "ConfigMap" or "dashboard" not in d["metadata"]["name"] for d in render()
    )
