"""The local cluster behaves like the EKS Fargate cluster the project targets, where it matters.

Each test drives the real API server, scheduler, controllers, kubelet, containerd and
kube-proxy; pods run the locally built base image.
"""

from __future__ import annotations

import ipaddress
import json
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client
from kubernetes.client.exceptions import ApiException

from snowflake_devtools.cluster import Cluster, buildah
from tests.e2e.helpers import (
    APP_UID,
    FARGATE_TOLERATION,
    job_manifest,
    run_pod,
    wait_until,
)


def test_restricted_namespace_refuses_privileged_pod_and_accepts_compliant_one(
    api_client: Any, new_namespace: Callable[..., str]
) -> None:
    ns = new_namespace({"pod-security.kubernetes.io/enforce": "restricted"})
    core: Any = client.CoreV1Api(api_client)
    privileged = {
        "metadata": {"name": "privileged"},
        "spec": {
            "tolerations": [FARGATE_TOLERATION],
            "containers": [
                {
                    "name": "main",
                    "image": "localhost/snowflake-processor-base:bookworm-py3.11",
                    "imagePullPolicy": "Never",
                    "command": ["python3", "-c", "pass"],
                    "securityContext": {"privileged": True},
                }
            ],
        },
    }
    with pytest.raises(ApiException) as refused:
        core.create_namespaced_pod(ns, privileged)
    assert refused.value.status == 403
    assert "violates PodSecurity" in str(refused.value.body)
    assert "privileged" in str(refused.value.body)

    terminated = run_pod(
        api_client, ns, "compliant", "open('/dev/termination-log', 'w').write('compliant ran')"
    )
    assert terminated.message == "compliant ran"


JOB_SCRIPT = """
import json, os
try:
    open('/written-to-root', 'w')
    root_writable = True
except OSError:
    root_writable = False
report = {'uid': os.getuid(), 'gid': os.getgid(), 'root_writable': root_writable}
open('/dev/termination-log', 'w').write(json.dumps(report))
"""


def test_job_runs_base_image_as_app_user_with_read_only_root(
    api_client: Any, namespace: str
) -> None:
    batch: Any = client.BatchV1Api(api_client)
    core: Any = client.CoreV1Api(api_client)
    batch.create_namespaced_job(namespace, job_manifest("as-app-user", JOB_SCRIPT))

    def complete() -> bool:
        status = batch.read_namespaced_job_status("as-app-user", namespace).status
        if status.failed:
            raise AssertionError(f"job failed: {status}")
        return bool(status.succeeded)

    wait_until(complete, 120, "the job to complete")
    (pod,) = core.list_namespaced_pod(namespace, label_selector="job-name=as-app-user").items
    terminated = pod.status.container_statuses[0].state.terminated
    assert json.loads(terminated.message) == {
        "uid": APP_UID,
        "gid": APP_UID,
        "root_writable": False,
    }


IN_POD_API_SCRIPT = """
import http.client, json, os, socket, ssl
SA = '/var/run/secrets/kubernetes.io/serviceaccount'
host = os.environ['KUBERNETES_SERVICE_HOST']
port = int(os.environ['KUBERNETES_SERVICE_PORT'])
token = open(SA + '/token').read()
ns = open(SA + '/namespace').read()
context = ssl.create_default_context(cafile=SA + '/ca.crt')

class ServiceConnection(http.client.HTTPSConnection):
    # Dial the Service's ClusterIP, verify the certificate as kubernetes.default.svc.
    def connect(self):
        raw = socket.create_connection((host, port), timeout=10)
        self.sock = context.wrap_socket(raw, server_hostname='kubernetes.default.svc')

def call(method, path, body=None):
    conn = ServiceConnection('kubernetes.default.svc', port, context=context, timeout=10)
    headers = {'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json'}
    conn.request(method, path, body=json.dumps(body) if body else None, headers=headers)
    response = conn.getresponse()
    return response.status, response.read()

status, review = call('POST', '/apis/authentication.k8s.io/v1/selfsubjectreviews',
                      {'apiVersion': 'authentication.k8s.io/v1', 'kind': 'SelfSubjectReview'})
report = {
    'host': host,
    'whoami': json.loads(review)['status']['userInfo']['username'] if status == 201 else status,
    'configmaps': call('GET', '/api/v1/namespaces/%s/configmaps' % ns)[0],
    'secrets': call('GET', '/api/v1/namespaces/%s/secrets' % ns)[0],
    'nodes': call('GET', '/api/v1/nodes')[0],
}
open('/dev/termination-log', 'w').write(json.dumps(report))
"""


def test_pod_reaches_api_server_through_service_with_its_token_and_rbac_applies(
    api_client: Any, namespace: str
) -> None:
    core: Any = client.CoreV1Api(api_client)
    rbac: Any = client.RbacAuthorizationV1Api(api_client)
    core.create_namespaced_service_account(namespace, {"metadata": {"name": "reader"}})
    rbac.create_namespaced_role(
        namespace,
        {
            "metadata": {"name": "configmap-reader"},
            "rules": [{"apiGroups": [""], "resources": ["configmaps"], "verbs": ["list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        namespace,
        {
            "metadata": {"name": "reader"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "configmap-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "reader", "namespace": namespace}],
        },
    )
    terminated = run_pod(
        api_client, namespace, "api-caller", IN_POD_API_SCRIPT, service_account="reader"
    )
    report = json.loads(terminated.message)
    service_ip = core.read_namespaced_service("kubernetes", "default").spec.cluster_ip
    assert report["host"] == service_ip
    assert report["whoami"] == f"system:serviceaccount:{namespace}:reader"
    assert report["configmaps"] == 200  # granted by the Role
    assert report["secrets"] == 403  # not granted
    assert report["nodes"] == 403  # cluster-scoped, not granted


class OneShotServer:
    """A TCP server on the bridge address that answers one line per connection."""

    def __init__(self, address: str) -> None:
        self.sock = socket.create_server((address, 0))
        self.port = self.sock.getsockname()[1]
        self.peers: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, peer = self.sock.accept()
            except OSError:
                return
            with conn:
                self.peers.append(peer[0])
                data = conn.recv(1024)
                conn.sendall(b"pong:" + data)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def host_server(real_cluster: Cluster) -> Iterator[OneShotServer]:
    server = OneShotServer(real_cluster.host_address)
    yield server
    server.close()


HOST_CALL_SCRIPT = """
import json, os, socket
with socket.create_connection((os.environ['HOST'], int(os.environ['PORT'])), timeout=10) as s:
    s.sendall(b'ping')
    reply = s.recv(1024).decode()
routes = [line.split() for line in open('/proc/net/route').read().splitlines()[1:]]
default = [r[0] for r in routes if r[1] == '00000000']
open('/dev/termination-log', 'w').write(json.dumps({'reply': reply, 'default_routes': default}))
"""


def test_pod_reaches_a_server_on_the_bridge_address_and_nothing_else(
    api_client: Any, namespace: str, real_cluster: Cluster, host_server: OneShotServer
) -> None:
    env = {"HOST": real_cluster.host_address, "PORT": str(host_server.port)}
    terminated = run_pod(api_client, namespace, "host-caller", HOST_CALL_SCRIPT, env=env)
    report = json.loads(terminated.message)
    assert report["reply"] == "pong:ping"
    # Pods have no default route: this machine (and Services) is all they reach.
    assert report["default_routes"] == []
    pod_cidr = ipaddress.ip_network(real_cluster.settings.network.pod_cidr)
    assert host_server.peers and ipaddress.ip_address(host_server.peers[0]) in pod_cidr


def test_ttl_after_finished_deletes_finished_job(api_client: Any, namespace: str) -> None:
    batch: Any = client.BatchV1Api(api_client)
    batch.create_namespaced_job(
        namespace, job_manifest("short-lived", "pass", ttlSecondsAfterFinished=5)
    )

    def gone() -> bool:
        try:
            batch.read_namespaced_job("short-lived", namespace)
        except ApiException as error:
            if error.status == 404:
                return True
            raise
        return False

    wait_until(gone, 120, "the TTL-after-finished controller to delete the job")


def test_deleting_owner_garbage_collects_dependents(api_client: Any, namespace: str) -> None:
    core: Any = client.CoreV1Api(api_client)
    batch: Any = client.BatchV1Api(api_client)
    owner = core.create_namespaced_config_map(namespace, {"metadata": {"name": "owner"}})
    reference = {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": "owner",
        "uid": owner.metadata.uid,
    }
    core.create_namespaced_config_map(
        namespace, {"metadata": {"name": "dependent", "ownerReferences": [reference]}}
    )
    core.create_namespaced_secret(
        namespace, {"metadata": {"name": "dependent", "ownerReferences": [reference]}}
    )
    # A Job owns its pods through the job controller's owner references.
    batch.create_namespaced_job(namespace, job_manifest("owner-job", "pass"))
    wait_until(
        lambda: batch.read_namespaced_job_status("owner-job", namespace).status.succeeded,
        120,
        "the job to complete",
    )
    assert core.list_namespaced_pod(namespace, label_selector="job-name=owner-job").items

    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")
    batch.delete_namespaced_job("owner-job", namespace, propagation_policy="Background")

    def collected() -> bool:
        config_maps = {c.metadata.name for c in core.list_namespaced_config_map(namespace).items}
        secrets = {s.metadata.name for s in core.list_namespaced_secret(namespace).items}
        pods = core.list_namespaced_pod(namespace, label_selector="job-name=owner-job").items
        return "dependent" not in config_maps and "dependent" not in secrets and not pods

    wait_until(collected, 90, "the garbage collector to delete the dependents")


DOCKERFILE = """\
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
RUN python3 -m venv /opt/venv && echo "built on the base" > /opt/venv/marker
USER 10001:10001
"""


def test_image_built_from_a_dockerfile_on_the_base_runs_in_a_pod(
    api_client: Any, namespace: str, real_cluster: Cluster, tmp_path: Path
) -> None:
    (tmp_path / "Dockerfile").write_text(DOCKERFILE)
    tag = "localhost/sfp-e2e-dockerfile:test"
    real_cluster.build_image(tmp_path, tag)
    try:
        script = "open('/dev/termination-log', 'w').write(open('/opt/venv/marker').read())"
        terminated = run_pod(api_client, namespace, "from-dockerfile", script, image=tag)
        assert terminated.message.strip() == "built on the base"
    finally:
        buildah.buildah("rmi", tag)  # a throwaway: keep buildah's storage small
