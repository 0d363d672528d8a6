"""The ops commands with a SnowflakeProcessor named as kubectl names things: `status -n
NAMESPACE NAME`, read from the Kubernetes API emulator (kmock) with the real kubernetes client,
against the queue table in the Snowflake emulator; and the real kubectl running the
`kubectl-sfp` plugin."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client

from snowflake_devtools.processes import ServerProcess
from snowflake_operator.constants import GROUP, KIND, PLURAL, VERSION
from snowflake_worker.queue import QueueClient
from tests.support.cli import ok_json, refused, run_cli
from tests.support.kube_fixtures import KubeApi
from tests.support.kube_server import write_kubeconfig
from tests.support.ports import closed_port
from tests.support.queues import settle

NAMESPACE = "queues"
REPO_ROOT = Path(__file__).resolve().parents[2]
KUBECTL = REPO_ROOT / ".tools" / "bin" / "kubectl"
LOGIN_PASSWORD = "pw-from-the-Secret-71f3"  # checked never to be printed


def _resource(name: str, queue: QueueClient, port: int, **snowflake: Any) -> dict[str, Any]:
    table = queue.table
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": name, "namespace": NAMESPACE},
        "spec": {
            "snowflake": {
                "account": "local",
                "database": table.database,
                "schema": table.schema,
                "table": table.table,
                "host": "127.0.0.1",
                "port": port,
                "auth": {"mode": "emulator"},
                **snowflake,
            },
            "endpoint": {"url": "https://127.0.0.1:9/process"},
            "queue": {"maxAttempts": 3},
        },
    }


# What the operator reports in the status subresource after a poll.
POLLED_STATUS = {
    "activeJobs": 2,
    "lastPollTime": "2026-11-26T10:00:00Z",
    "conditions": [{"type": "Ready", "status": "True", "reason": "Polled"}],
}


@pytest.fixture
def custom(kube_client: client.ApiClient) -> client.CustomObjectsApi:
    return client.CustomObjectsApi(kube_client)


@pytest.fixture
def orders(
    custom: client.CustomObjectsApi, queue: QueueClient, snowflake_server: ServerProcess
) -> QueueClient:
    """SnowflakeProcessor queues/orders over a queue of 5 entries: 3 pending, 1 completed,
    1 dead letter."""
    queue.enqueue((f"o{i}", {"n": i}) for i in range(5))
    settle(queue, failed=[("o0", "HTTP 422: bad postal code")], done=["o1"])
    body = _resource("orders", queue, snowflake_server.port)
    custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
    custom.patch_namespaced_custom_object_status(
        GROUP, VERSION, NAMESPACE, PLURAL, "orders", {"status": POLLED_STATUS}
    )
    return queue


def test_status_reads_the_resource_named_like_kubectl_does(
    orders: QueueClient, kube_api: KubeApi, tmp_path: Path
) -> None:
    status = ok_json(run_cli("status", "-n", NAMESPACE, "orders", "-o", "json"))
    assert status["table"] == str(orders.table)
    assert status["max_attempts"] == 3  # the resource's spec.queue.maxAttempts
    assert status["counts"]["pending"] == 3
    assert status["counts"]["completed"] == 1
    assert [letter["id"] for letter in status["dead_letters"]] == ["o0"]
    assert status["processor"] == {
        "namespace": NAMESPACE,
        "name": "orders",
        "ready": "True",
        "reason": "Polled",
        "message": None,
        "active_jobs": 2,
        "last_poll_time": "2026-11-26T10:00:00Z",
    }
    fetched = kube_api.requests(action="fetch", resource=PLURAL)
    assert [(r["namespace"], r["name"]) for r in fetched] == [(NAMESPACE, "orders")]
    # No -n: the kubeconfig context's namespace, as kubectl does; --context picks one.
    in_queues = write_kubeconfig(tmp_path / "in-queues", kube_api.port, namespace=NAMESPACE)
    by_context = ok_json(run_cli("status", "orders", "--kubeconfig", str(in_queues), "--json"))
    assert by_context["counts"] == status["counts"]
    refused(run_cli("status", "orders"), f"no {KIND} 'orders' in namespace default")


def test_status_prints_the_resource_then_the_queue_as_yaml_or_tables(orders: QueueClient) -> None:
    import yaml

    result = run_cli("status", "-n", NAMESPACE, "orders", "-o", "yaml")
    assert result.returncode == 0, result.stderr
    document = yaml.safe_load(result.stdout)
    assert document["counts"]["failed"] == 1
    assert document["processor"]["ready"] == "True"
    table = run_cli("status", "-n", NAMESPACE, "orders", "-o", "wide")
    assert table.returncode == 0, table.stderr
    first = table.stdout.splitlines()[0]
    assert first == (
        f"SnowflakeProcessor {NAMESPACE}/orders: Ready True (Polled), active Jobs 2, "
        "last poll 2026-11-26T10:00:00Z"
    )
    assert "HTTP 422: bad postal code" in table.stdout


@pytest.mark.skipif(not KUBECTL.exists(), reason="kubectl is installed by `make tools`")
def test_kubectl_runs_the_sfp_plugin(orders: QueueClient) -> None:
    # kubectl finds plugins by name on PATH: the venv's bin holds kubectl-sfp.
    bin_dir = Path(sys.executable).parent
    assert (bin_dir / "kubectl-sfp").exists(), "pip install -e . installs the kubectl-sfp script"
    env = {k: v for k, v in os.environ.items() if not k.startswith("SFP_")}
    env["PATH"] = os.pathsep.join([str(bin_dir), str(KUBECTL.parent), env.get("PATH", "")])

    def kubectl(*args: str) -> subprocess.CompletedProcess[str]:
        run = subprocess.run(
            [str(KUBECTL), *args], capture_output=True, text=True, timeout=120, env=env, check=False
        )
        assert run.returncode == 0, run.stderr
        return run

    result = kubectl("sfp", "status", "-n", NAMESPACE, "orders")
    lines = result.stdout.splitlines()
    assert lines[0].startswith(f"SnowflakeProcessor {NAMESPACE}/orders: Ready True")
    assert f"queue {orders.table}" in lines
    assert any(line.split() == ["failed", "(dead", "letters)", "1"] for line in lines)
    # kubectl's own completion of `kubectl sfp st` asks kubectl_complete-sfp
    completion = kubectl("__complete", "sfp", "st")
    assert completion.stdout.splitlines()[0].split("\t")[0] == "status"
    assert completion.stdout.splitlines()[-1] == ":4"
    # NAME completes from the cluster, in the namespace given so far
    names = kubectl("__complete", "sfp", "status", "-n", NAMESPACE, "or").stdout.splitlines()
    assert [line.split("\t")[0] for line in names] == ["orders", ":4"]


def test_names_are_refused_clearly(
    custom: client.CustomObjectsApi, orders: QueueClient, tmp_path: Path
) -> None:
    refused(run_cli("status", "-n", NAMESPACE, "nope"), f"no {KIND} 'nope' in namespace queues")
    refused(run_cli("requeue", "-n", NAMESPACE), "-n given without NAME")
    resource = tmp_path / "r.yaml"
    resource.write_text("kind: SnowflakeProcessor\nspec: {}\n", encoding="utf-8")
    refused(
        run_cli("status", "-n", NAMESPACE, "orders", "--resource", str(resource)),
        "NAME (a resource in the cluster) or --resource FILE, not both",
    )
    refused(
        run_cli("status", "-n", NAMESPACE, "orders", "--database", "OTHER"),
        "NAME names the queue table already: leave out --database",
    )
    broken = {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": KIND,
        "metadata": {"name": "broken", "namespace": NAMESPACE},
        "spec": {"snowflake": {"account": "x"}, "endpoint": {"url": "http://plain"}},
    }
    custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, broken)
    refused(
        run_cli("status", "-n", NAMESPACE, "broken"),
        f"invalid {KIND} {NAMESPACE}/broken",
        "spec.snowflake.database: Field required",
    )
    refused(
        run_cli("status", "orders", "--kubeconfig", str(tmp_path / "missing")),
        "--kubeconfig",
        "no such file",
    )


def test_an_unreachable_api_server_is_one_line_and_exit_1(tmp_path: Path) -> None:
    nowhere = write_kubeconfig(tmp_path / "nowhere", closed_port())
    result = run_cli("status", "-n", NAMESPACE, "orders", "--kubeconfig", str(nowhere))
    assert result.returncode == 1, result.stderr
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    port = nowhere.read_text().split("127.0.0.1:")[1].split()[0].strip("'\"")
    assert line == (
        f"error: cannot read {KIND} {NAMESPACE}/orders: the Kubernetes API server at "
        f"http://127.0.0.1:{port} is unreachable (connection refused)"
    )


# -- status without NAME: the processors, as kubectl get lists them --------------------------


def test_status_without_a_name_lists_the_namespaces_processors(
    custom: client.CustomObjectsApi, orders: QueueClient, kube_api: KubeApi
) -> None:
    other = _resource("invoices", orders, 1, table="INVOICES")
    other["metadata"]["namespace"] = "billing"
    custom.create_namespaced_custom_object(GROUP, VERSION, "billing", PLURAL, other)
    listed = ok_json(run_cli("status", "-n", NAMESPACE, "-o", "json"))
    assert listed == {
        "namespace": NAMESPACE,
        "processors": [
            {
                "namespace": NAMESPACE,
                "name": "orders",
                "ready": "True",
                "reason": "Polled",
                "backlog": None,
                "active_jobs": 2,
                "failed": None,
                "last_poll_time": "2026-11-26T10:00:00Z",
            }
        ],
    }
    everywhere = ok_json(run_cli("status", "-A", "-o", "json"))
    assert everywhere["namespace"] is None
    assert [(p["namespace"], p["name"], p["ready"]) for p in everywhere["processors"]] == [
        ("billing", "invoices", None),  # never polled: nothing reported yet
        (NAMESPACE, "orders", "True"),
    ]
    table = run_cli("status", "-A")
    assert table.returncode == 0, table.stderr
    assert "billing" in table.stdout and "invoices" in table.stdout
    assert not kube_api.requests(resource="secrets")  # no login: no Secret read


def test_kubectl_global_flags_say_where_the_api_server_is_and_who_asks(
    orders: QueueClient, kube_api: KubeApi, tmp_path: Path
) -> None:
    """--server alone is enough, with no kubeconfig at all, as for kubectl; --token, --as and
    --as-group reach the API server as kubectl sends them; the token is never printed."""
    token = "t0k3n-7f1c-never-printed"
    flags = ["--server", kube_api.url, "--token", token, "--as", "jdoe", "--as-group", "oncall"]
    kube_api.reset_requests()
    result = run_cli(
        "status", "-n", NAMESPACE, "-o", "json", *flags,
        env={"KUBECONFIG": str(tmp_path / "no-such-kubeconfig")},
    )  # fmt: skip
    listed = ok_json(result)
    assert [p["name"] for p in listed["processors"]] == ["orders"]
    (request,) = kube_api.requests(action="list", resource=PLURAL)
    assert request["identity"] == {
        "Authorization": f"Bearer {token}",
        "Impersonate-User": "jdoe",
        "Impersonate-Group": "oncall",
    }
    assert token not in result.stderr
    # With the table flags they name nothing to read from the cluster: refused, not ignored.
    table = ["--account", "local", "--database", "D", "--schema", "S", "--table", "T"]
    refused(run_cli("status", *table, "--as", "jdoe"), "--as given without NAME")


def test_status_without_the_crd_says_the_crd_is_missing(tmp_path: Path) -> None:
    """A cluster that serves no SnowflakeProcessors (an API server without the CRD)."""
    from tests.support.kube_server import start_kube_emulator

    bare = start_kube_emulator(tmp_path / "bare.log", custom_resources=False)
    try:
        config = write_kubeconfig(tmp_path / "bare", bare.port)
        for args in (("status", "-n", NAMESPACE), ("status", "-n", NAMESPACE, "orders")):
            refused(
                run_cli(*args, "--kubeconfig", str(config)),
                f"this cluster serves no {KIND}s: the CRD {PLURAL}.{GROUP} is not installed",
            )
    finally:
        bare.stop()


def test_the_login_secret_comes_from_the_cluster_and_is_never_printed(
    custom: client.CustomObjectsApi,
    kube_client: client.ApiClient,
    kube_api: KubeApi,
    queue: QueueClient,
    snowflake_server: ServerProcess,
) -> None:
    login = {"user": "SFP_SERVICE", "auth": {"mode": "password", "passwordSecret": {}}}
    login["auth"]["passwordSecret"] = {"name": "legacy-login", "key": "password"}
    body = _resource("legacy", queue, snowflake_server.port, **login)
    custom.create_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, body)
    # The Secret is missing: its name in the message, exit 2, nothing else read.
    missing = run_cli("sql", "apply", "-n", NAMESPACE, "legacy", "--dry-run")
    refused(missing, "Secret legacy-login has no key password")
    secret = {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": "legacy-login", "namespace": NAMESPACE},
        "data": {"password": base64.b64encode(LOGIN_PASSWORD.encode()).decode()},
    }
    client.CoreV1Api(kube_client).create_namespaced_secret(NAMESPACE, secret)
    kube_api.reset_requests()
    # A dry run logs in with nothing, but loads the login the way a real run does: without
    # the Secret's password the settings would be refused ("needs SFP_SNOWFLAKE_PASSWORD").
    for output in ([], ["-o", "json"], ["-o", "yaml"]):
        result = run_cli("sql", "apply", "-n", NAMESPACE, "legacy", "--dry-run", *output)
        assert result.returncode == 0, result.stderr
        assert LOGIN_PASSWORD not in result.stdout + result.stderr
    read = kube_api.requests(action="fetch", resource="secrets")
    assert [(r["namespace"], r["name"]) for r in read] == [(NAMESPACE, "legacy-login")] * 3
    # Logging in as someone else: the resource's Secret is not read, the local one is used.
    kube_api.reset_requests()
    own = run_cli(
        "sql", "apply", "-n", NAMESPACE, "legacy", "--dry-run", "--user", "JDOE",
        env={"SFP_SNOWFLAKE_PASSWORD": "mine"},
    )  # fmt: skip
    assert own.returncode == 0, own.stderr
    assert kube_api.count(action="fetch", resource="secrets") == 0


def test_kubectl_cluster_flag_picks_the_kubeconfig_cluster_with_the_context_user(
    orders: QueueClient, kube_api: KubeApi, tmp_path: Path
) -> None:
    """--cluster: the named kubeconfig cluster, with the current context's user and
    namespace, as kubectl does; the context's own cluster is not asked."""
    config = json.loads(write_kubeconfig(tmp_path / "two", closed_port(), NAMESPACE).read_text())
    config["clusters"].append({"name": "live", "cluster": {"server": kube_api.url}})
    config["users"][0]["user"]["token"] = "context-user-token"
    (tmp_path / "two").write_text(json.dumps(config))
    kubeconfig = ["--kubeconfig", str(tmp_path / "two")]
    kube_api.reset_requests()
    status = ok_json(run_cli("status", "orders", "-o", "json", "--cluster", "live", *kubeconfig))
    assert status["processor"]["name"] == "orders"  # the context's namespace: no -n
    (request,) = kube_api.requests(action="fetch", resource=PLURAL)
    assert request["identity"] == {"Authorization": "Bearer context-user-token"}
    unreachable = run_cli("status", "orders", *kubeconfig)  # the context's own cluster
    assert unreachable.returncode == 1 and "is unreachable" in unreachable.stderr
    refused(
        run_cli("status", "orders", "--cluster", "nope", *kubeconfig),
        "--cluster nope: no such cluster in the kubeconfig",
    )
