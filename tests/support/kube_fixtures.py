"""Pytest fixtures for the Kubernetes API emulator process: kube_api, kube_client and
kubeconfig, for every test (a plugin named in tests/conftest.py's pytest_plugins)."""

from __future__ import annotations

import http.client
import json
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes.client
import kubernetes.config
import kubernetes.config.kube_config
import pytest

from snowflake_devtools.processes import ServerProcess
from tests.support.kube_server import start_kube_emulator, write_kubeconfig


@dataclass
class KubeApi:
    """A running emulator process and the kubeconfig that points at it."""

    server: ServerProcess
    kubeconfig: Path

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def requests(self, **match: Any) -> list[dict[str, Any]]:
        """Requests served since the start or the last reset, oldest first, as dicts with
        method, path, query, action (list/watch/fetch/create/update/delete or None),
        resource (plural), namespace, name, subresource, status (the HTTP status; None while
        a watch is still open), identity (the Authorization and Impersonate-* headers).
        Keyword arguments keep only the entries whose keys equal them:
        ``requests(action="list", resource="jobs")``."""
        log: list[dict[str, Any]] = self._call("GET", "/_emulator/requests")
        return [entry for entry in log if all(entry.get(k) == v for k, v in match.items())]

    def count(self, **match: Any) -> int:
        return len(self.requests(**match))

    def reset_requests(self) -> None:
        self._call("POST", "/_emulator/reset")

    def delay_writes(self, action: str, resource: str, seconds: float) -> None:
        """Hold each such write (``"create", "secrets"``) ``seconds`` before applying it."""
        query = urllib.parse.urlencode({"action": action, "resource": resource, "seconds": seconds})
        self._call("POST", f"/_emulator/delay?{query}")

    def _call(self, method: str, path: str) -> Any:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
        try:
            connection.request(method, path)
            response = connection.getresponse()
            body = response.read()
        finally:
            connection.close()
        if response.status != 200:
            raise RuntimeError(f"{method} {path} -> {response.status}: {body[:200]!r}")
        return json.loads(body)


@pytest.fixture
def kube_api(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[KubeApi]:
    """A fresh emulator process per test, with KUBECONFIG pointing at it."""
    server = start_kube_emulator(tmp_path / "kube-emulator.log")
    try:
        config = write_kubeconfig(tmp_path / "kubeconfig", server.port)
        monkeypatch.setenv("KUBECONFIG", str(config))
        # kubernetes.config reads $KUBECONFIG once, at import: set the copies it already made.
        monkeypatch.setattr(
            kubernetes.config.kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(config)
        )
        monkeypatch.setattr(kubernetes.config, "KUBE_CONFIG_DEFAULT_LOCATION", str(config))
        # kopf's login_via_client tries in-cluster config first: never when tests run in a pod.
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        # kopf's login calls load_kube_config(), which replaces the kubernetes client's global
        # default configuration: put the previous one back after the test.
        default = kubernetes.client.Configuration._default
        monkeypatch.setattr(kubernetes.client.Configuration, "_default", default)
        yield KubeApi(server, config)
    finally:
        server.stop()


@pytest.fixture
def kubeconfig(kube_api: KubeApi) -> Path:
    return kube_api.kubeconfig


@pytest.fixture
def kube_client(kube_api: KubeApi) -> Iterator[kubernetes.client.ApiClient]:
    """A kubernetes client for the emulator (its own configuration, not the global default)."""
    configuration = kubernetes.client.Configuration()
    kubernetes.config.load_kube_config(
        config_file=str(kube_api.kubeconfig), client_configuration=configuration
    )
    with kubernetes.client.ApiClient(configuration) as api:
        yield api
