"""`helm upgrade` from chart 0.1.0 never narrows silently the namespaces the operator serves.

0.1.0 defaulted to rbac.scope cluster; the default is now namespace. The chart looks up
the ClusterRoleBinding the 0.1.0 release made and the SnowflakeProcessors in the cluster,
and refuses an upgrade that would stop serving some of them. lookup needs a cluster: the
real helm renders here with --is-upgrade --dry-run=server against the Kubernetes API
emulator, holding the binding 0.1.0's chart renders (from git) as `helm install` stored it.
A real `helm upgrade` runs the same template (the e2e tier's upgrade test on a cluster)."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from kubernetes import client, config

from tests.support.deploy_tools import tool, tool_env
from tests.support.kube_server import start_kube_emulator, write_kubeconfig

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "snowflake-processor"
RELEASE, RELEASE_NAMESPACE = "snowflake-processor", "snowflake-processor-system"
RELEASE_0_1_0 = "e25aa23"  # the commit chart 0.1.0 was cut from
IMAGES = (
    "--set", "operator.image.repository=registry.example.com/snowflake-processor-operator",
    "--set", "worker.image.repository=registry.example.com/snowflake-processor-worker",
)  # fmt: skip


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [tool("helm"), *args], capture_output=True, text=True, env=tool_env(), timeout=120
    )


@pytest.fixture(scope="module")
def chart_0_1_0(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Chart 0.1.0, from git."""
    directory = tmp_path_factory.mktemp("chart-0.1.0")
    archive = subprocess.run(
        ["git", "archive", RELEASE_0_1_0, "charts/snowflake-processor"],
        cwd=ROOT,
        capture_output=True,
    )
    if archive.returncode != 0:
        pytest.skip(f"commit {RELEASE_0_1_0} is not in this clone")
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive.stdout, check=True)
    return directory / "charts/snowflake-processor"


def render_0_1_0(chart: Path, kind: str, *values: str) -> dict[str, Any]:
    """The one object of ``kind`` chart 0.1.0 renders with ``values``."""
    rendered = helm(
        "template", RELEASE, str(chart), "--namespace", RELEASE_NAMESPACE, *values
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    (found,) = [d for d in yaml.safe_load_all(rendered.stdout) if d and d["kind"] == kind]
    return dict(found)


@pytest.fixture(scope="module")
def binding_0_1_0(chart_0_1_0: Path) -> dict[str, Any]:
    """The ClusterRoleBinding chart 0.1.0 renders with its defaults."""
    return render_0_1_0(chart_0_1_0, "ClusterRoleBinding")


class Cluster:
    """The emulator as a 0.1.0 release left it: what `helm install` stored, and
    SnowflakeProcessors where ``namespaces`` say."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self.api = config.new_client_from_config(str(kubeconfig))

    def add_binding(self, binding: dict[str, Any], release: str = RELEASE) -> None:
        stored = _as_helm_stored_it(binding, release)
        client.RbacAuthorizationV1Api(self.api).create_cluster_role_binding(stored)

    def add_deployment(self, deployment: dict[str, Any]) -> None:
        stored = _as_helm_stored_it(deployment, RELEASE)
        client.AppsV1Api(self.api).create_namespaced_deployment(RELEASE_NAMESPACE, stored)

    def add_processor(self, namespace: str, name: str = "orders") -> None:
        body = {
            "apiVersion": "snowflake-processor.dev/v1alpha1",
            "kind": "SnowflakeProcessor",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {},
        }
        client.CustomObjectsApi(self.api).create_namespaced_custom_object(
            "snowflake-processor.dev", "v1alpha1", namespace, "snowflakeprocessors", body
        )

    def upgrade(self, *values: str, upgrade: bool = True) -> subprocess.CompletedProcess[str]:
        """The chart rendered as `helm upgrade` renders it, lookups answered by the cluster."""
        return helm(
            "template", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE,
            *(["--is-upgrade"] if upgrade else []),
            "--dry-run=server", "--kubeconfig", str(self.kubeconfig), *IMAGES, *values,
        )  # fmt: skip


def _as_helm_stored_it(obj: dict[str, Any], release: str) -> dict[str, Any]:
    """``obj`` with the ownership marks `helm install` adds."""
    metadata = {**obj["metadata"], "namespace": obj["metadata"].get("namespace")}
    metadata["annotations"] = {
        **(metadata.get("annotations") or {}),
        "meta.helm.sh/release-name": release,
        "meta.helm.sh/release-namespace": RELEASE_NAMESPACE,
    }
    if metadata["namespace"] is None:
        del metadata["namespace"]
    return {**obj, "metadata": metadata}


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    server = start_kube_emulator(tmp_path / "kube-emulator.log")
    try:
        yield Cluster(write_kubeconfig(tmp_path / "kubeconfig", server.port))
    finally:
        server.stop()


def _kinds(rendered: subprocess.CompletedProcess[str]) -> list[tuple[str, str]]:
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    return [
        (d["kind"], d["metadata"].get("namespace", ""))
        for d in docs
        if d["kind"] in {"ClusterRoleBinding", "RoleBinding"}
        and not d["metadata"]["name"].endswith("leader-election")
    ]


def test_the_0_1_0_release_bound_its_operator_cluster_wide(binding_0_1_0: dict[str, Any]) -> None:
    assert binding_0_1_0["metadata"]["name"] == "snowflake-processor-operator"
    assert binding_0_1_0["roleRef"]["kind"] == "ClusterRole"


def test_an_upgrade_that_would_narrow_the_scope_fails_naming_the_value(
    cluster: Cluster, binding_0_1_0: dict[str, Any]
) -> None:
    cluster.add_binding(binding_0_1_0)
    cluster.add_processor("snowflake-processor")
    cluster.add_processor("team-a")
    cluster.add_processor("team-b")
    refused = cluster.upgrade()
    assert refused.returncode != 0
    assert "Set rbac.scope=cluster to keep serving every namespace" in refused.stderr
    assert "would stop serving the SnowflakeProcessors in team-a, team-b" in refused.stderr
    assert "serves only snowflake-processor" in refused.stderr


def test_narrowing_fails_even_with_no_resource_outside_yet(
    cluster: Cluster, binding_0_1_0: dict[str, Any]
) -> None:
    """Serving every namespace includes resources created tomorrow: the choice is made
    explicit, by rbac.scope or by listing watchNamespaces."""
    cluster.add_binding(binding_0_1_0)
    cluster.add_processor("snowflake-processor")
    refused = cluster.upgrade()
    assert refused.returncode != 0
    assert "rbac.scope" in refused.stderr and "would stop serving" not in refused.stderr


def test_rbac_scope_cluster_keeps_serving_every_namespace(
    cluster: Cluster, binding_0_1_0: dict[str, Any]
) -> None:
    cluster.add_binding(binding_0_1_0)
    cluster.add_processor("team-a")
    kept = cluster.upgrade("--set", "rbac.scope=cluster")
    assert kept.returncode == 0, kept.stderr
    assert _kinds(kept) == [("ClusterRoleBinding", "")]


def test_watch_namespaces_holding_every_resource_narrow_by_choice(
    cluster: Cluster, binding_0_1_0: dict[str, Any]
) -> None:
    cluster.add_binding(binding_0_1_0)
    cluster.add_processor("team-a")
    listed = cluster.upgrade("--set", "watchNamespaces={snowflake-processor,team-a}")
    assert listed.returncode == 0, listed.stderr
    assert sorted(_kinds(listed)) == [
        ("RoleBinding", "snowflake-processor"),
        ("RoleBinding", "team-a"),
    ]
    short = cluster.upgrade("--set", "watchNamespaces={snowflake-processor}")
    assert short.returncode != 0
    assert "would stop serving the SnowflakeProcessors in team-a" in short.stderr


def test_a_binding_of_another_release_or_a_fresh_install_is_no_reason(
    cluster: Cluster, binding_0_1_0: dict[str, Any]
) -> None:
    cluster.add_binding(binding_0_1_0, release="another")
    cluster.add_processor("team-a")
    assert cluster.upgrade().returncode == 0
    assert cluster.upgrade(upgrade=False).returncode == 0


def test_a_0_1_0_operator_without_chart_rbac_is_seen_by_its_arguments(
    cluster: Cluster, chart_0_1_0: Path
) -> None:
    """With rbac.create false there is no binding to find: the Deployment of 0.1.0's
    cluster scope ran without --namespace, and served every namespace all the same."""
    cluster.add_deployment(render_0_1_0(chart_0_1_0, "Deployment", "--set", "rbac.create=false"))
    cluster.add_processor("team-a")
    refused = cluster.upgrade("--set", "rbac.create=false")
    assert refused.returncode != 0
    assert "Deployment snowflake-processor-operator without --namespace" in refused.stderr
    assert "Set rbac.scope=cluster" in refused.stderr


def test_a_0_1_0_release_in_namespace_scope_upgrades_as_it_is(
    cluster: Cluster, chart_0_1_0: Path
) -> None:
    cluster.add_deployment(render_0_1_0(chart_0_1_0, "Deployment", "--set", "rbac.scope=namespace"))
    cluster.add_processor("snowflake-processor")
    assert cluster.upgrade().returncode == 0


def test_offline_rendering_cannot_see_the_previous_scope() -> None:
    """`helm template` without a cluster: lookup answers nothing, so it renders (what the
    docs say: check an upgrade with --dry-run=server)."""
    offline = helm(
        "template", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE, "--is-upgrade",
        *IMAGES,
    )  # fmt: skip
    assert offline.returncode == 0, offline.stderr
