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
def binding_0_1_0(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The ClusterRoleBinding chart 0.1.0 renders with its defaults."""
    directory = tmp_path_factory.mktemp("chart-0.1.0")
    archive = subprocess.run(
        ["git", "archive", RELEASE_0_1_0, "charts/snowflake-processor"],
        cwd=ROOT,
        capture_output=True,
    )
    if archive.returncode != 0:
        pytest.skip(f"commit {RELEASE_0_1_0} is not in this clone")
    subprocess.run(["tar", "-x", "-C", str(directory)], input=archive.stdout, check=True)
    rendered = helm(
        "template", RELEASE, str(directory / "charts/snowflake-processor"),
        "--namespace", RELEASE_NAMESPACE,
    )  # fmt: skip
    assert rendered.returncode == 0, rendered.stderr
    docs = [d for d in yaml.safe_load_all(rendered.stdout) if d]
    (binding,) = [d for d in docs if d["kind"] == "ClusterRoleBinding"]
    return dict(binding)


class Cluster:
    """The emulator as a 0.1.0 release left it: what `helm install` stored, and
    SnowflakeProcessors where ``namespaces`` say."""

    def __init__(self, kubeconfig: Path) -> None:
        self.kubeconfig = kubeconfig
        self.api = config.new_client_from_config(str(kubeconfig))

    def add_binding(self, binding: dict[str, Any], release: str = RELEASE) -> None:
        stored = {**binding, "metadata": dict(binding["metadata"])}
        stored["metadata"]["annotations"] = {  # Helm's ownership marks
            "meta.helm.sh/release-name": release,
            "meta.helm.sh/release-namespace": RELEASE_NAMESPACE,
        }
        client.RbacAuthorizationV1Api(self.api).create_cluster_role_binding(stored)

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


def test_offline_rendering_cannot_see_the_previous_scope() -> None:
    """`helm template` without a cluster: lookup answers nothing, so it renders (what the
    docs say: check an upgrade with --dry-run=server)."""
    offline = helm(
        "template", RELEASE, str(CHART), "--namespace", RELEASE_NAMESPACE, "--is-upgrade",
        *IMAGES,
    )  # fmt: skip
    assert offline.returncode == 0, offline.stderr
