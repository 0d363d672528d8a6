"""A SnowflakeProcessor read from the cluster the way kubectl reads it: the kubeconfig
(--kubeconfig, $KUBECONFIG, ~/.kube/config) and its context's namespace, or the pod's
service account inside a cluster. The Secrets it references are read only when the ops
command logs in as the resource does; their values are never printed.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException
from kubernetes.config.config_exception import ConfigException
from urllib3.exceptions import HTTPError

from snowflake_operator.constants import GROUP, KIND, PLURAL, VERSION
from snowflake_operator.spec.model import ProcessorSpec
from snowflake_worker.errors import ConfigError, FatalError, one_line

DEFAULT_KUBECONFIG = Path("~/.kube/config")
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
REQUEST_TIMEOUT_SECONDS = 15
FORBIDDEN, NOT_FOUND, UNAUTHORIZED = 403, 404, 401


@dataclass(frozen=True)
class ClusterResource:
    namespace: str
    name: str
    document: dict[str, Any]  # the whole object: metadata, spec, status
    api: client.ApiClient

    @property
    def source(self) -> str:
        return f"{KIND} {self.namespace}/{self.name}"

    @property
    def status(self) -> dict[str, Any]:
        status = self.document.get("status")
        return status if isinstance(status, dict) else {}

    def login_secrets(self, spec: ProcessorSpec) -> dict[str, Any]:
        """The key pair or password its spec.snowflake.auth references, as the operator reads
        them for its own connection (nothing for workload identity)."""
        from snowflake_operator.kube.edges import snowflake_secrets

        try:
            return snowflake_secrets(self.api, self.namespace, spec)
        except LookupError as exc:  # the Secret or its key is missing
            raise ConfigError(f"{self.source}: {exc} (in namespace {self.namespace})") from None
        except (ApiException, HTTPError) as exc:
            raise _api_error(exc, f"read the Secrets {self.source} references") from None


def read_processor(
    name: str, namespace: str | None, context: str | None, kubeconfig: Path | None
) -> ClusterResource:
    """The resource, or ConfigError (no such resource, no kubeconfig, no such context) or
    FatalError (the API server unreachable or refusing) saying so in one line."""
    api, default_namespace = kube_client(context, kubeconfig)
    namespace = namespace or default_namespace
    objects = client.CustomObjectsApi(api)
    try:
        document = objects.get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, _request_timeout=REQUEST_TIMEOUT_SECONDS
        )
    except ApiException as exc:
        if exc.status == NOT_FOUND:
            raise ConfigError(
                f"no {KIND} {name!r} in namespace {namespace} "
                f"(kubectl get sfp -n {namespace} lists them)"
            ) from None
        raise _api_error(exc, f"read {KIND} {namespace}/{name}") from None
    except HTTPError as exc:
        raise _api_error(exc, f"read {KIND} {namespace}/{name}") from None
    if not isinstance(document, dict):
        raise FatalError(f"the API server sent no object for {KIND} {namespace}/{name}")
    return ClusterResource(namespace, name, document, api)


def processor_names(
    namespace: str | None, context: str | None, kubeconfig: Path | None
) -> list[str]:
    """The SnowflakeProcessors in the namespace, for completing NAME (a short timeout)."""
    api, default_namespace = kube_client(context, kubeconfig)
    listed: Any = client.CustomObjectsApi(api).list_namespaced_custom_object(
        GROUP, VERSION, namespace or default_namespace, PLURAL, _request_timeout=3
    )
    return sorted(str(item["metadata"]["name"]) for item in listed.get("items", []))


def kube_client(context: str | None, kubeconfig: Path | None) -> tuple[client.ApiClient, str]:
    """A client configured like kubectl's, and the namespace to use when -n is not given."""
    configuration = client.Configuration()
    config_file = None if kubeconfig is None else str(kubeconfig.expanduser())
    if kubeconfig is not None and not kubeconfig.expanduser().is_file():
        raise ConfigError(f"--kubeconfig {kubeconfig}: no such file")
    if config_file is None and not _default_kubeconfig_exists():
        if os.environ.get("KUBERNETES_SERVICE_HOST") and context is None:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return client.ApiClient(configuration), _in_cluster_namespace()
        raise ConfigError(
            "no kubeconfig: set KUBECONFIG, pass --kubeconfig PATH, or create ~/.kube/config "
            "(as for kubectl)"
        )
    try:
        config.load_kube_config(  # type: ignore[no-untyped-call]
            config_file=config_file, context=context, client_configuration=configuration
        )
        contexts, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=config_file
        )
    except ConfigException as exc:
        raise ConfigError(f"kubeconfig: {one_line(exc)}") from None
    chosen = next((c for c in contexts if c.get("name") == context), active) if context else active
    namespace = (chosen or {}).get("context", {}).get("namespace") or "default"
    return client.ApiClient(configuration), str(namespace)


def _default_kubeconfig_exists() -> bool:
    listed = os.environ.get("KUBECONFIG")
    paths = listed.split(os.pathsep) if listed else [str(DEFAULT_KUBECONFIG)]
    return any(path and Path(path).expanduser().is_file() for path in paths)


def _in_cluster_namespace() -> str:
    try:
        return IN_CLUSTER_NAMESPACE.read_text(encoding="utf-8").strip() or "default"
    except OSError:
        return "default"


def _api_error(exc: ApiException | HTTPError, doing: str) -> FatalError:
    """One line for what went wrong talking to the API server (exit 1)."""
    if isinstance(exc, ApiException):
        if exc.status in (FORBIDDEN, UNAUTHORIZED):
            return FatalError(
                f"the cluster refused to {doing}: {exc.status} {exc.reason}. Your kubeconfig's "
                "user needs get on snowflakeprocessors (and on the Secrets a key_pair or "
                "password login references)"
            )
        return FatalError(f"cannot {doing}: the API server answered {exc.status} {exc.reason}")
    return FatalError(f"cannot {doing}: the Kubernetes API server is unreachable ({one_line(exc)})")
