"""A SnowflakeProcessor read from the cluster the way kubectl reads it: the kubeconfig
(--kubeconfig, $KUBECONFIG, ~/.kube/config) and its context's namespace, or the pod's
service account inside a cluster. The Secrets it references are read only when the ops
command logs in as the resource does; their values are never printed.
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException
from urllib3.exceptions import HTTPError

from snowflake_operator.constants import GROUP, KIND, PLURAL, VERSION
from snowflake_operator.kube.client_config import KubectlOverrides, kube_client
from snowflake_operator.spec.model import ProcessorSpec
from snowflake_worker.errors import ConfigError, FatalError, one_line

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


def kubectl_overrides(args: argparse.Namespace) -> KubectlOverrides:
    """kubectl's global flags as given (a completion's partial parse may lack them)."""
    return KubectlOverrides(
        server=getattr(args, "server", None),
        token=getattr(args, "token", None),
        impersonate=getattr(args, "impersonate", None),
        impersonate_group=getattr(args, "impersonate_group", None),
        certificate_authority=getattr(args, "certificate_authority", None),
        insecure_skip_tls_verify=bool(getattr(args, "insecure_skip_tls_verify", False)),
        cluster=getattr(args, "cluster", None),
    )


def client_from_flags(args: argparse.Namespace) -> tuple[client.ApiClient, str]:
    """A client as kubectl would make from these flags, and the namespace -n defaults to."""
    return kube_client(
        getattr(args, "context", None), getattr(args, "kubeconfig", None), kubectl_overrides(args)
    )


def read_processor(name: str, namespace: str | None, args: argparse.Namespace) -> ClusterResource:
    """The resource, or ConfigError (no such resource, no kubeconfig, no such context) or
    FatalError (the API server unreachable or refusing) saying so in one line."""
    api, default_namespace = client_from_flags(args)
    namespace = namespace or default_namespace
    objects = client.CustomObjectsApi(api)
    try:
        document = objects.get_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, name, _request_timeout=REQUEST_TIMEOUT_SECONDS
        )
    except ApiException as exc:
        if exc.status == NOT_FOUND:
            if not _serves_processors(objects, namespace):
                raise missing_crd() from None
            raise ConfigError(
                f"no {KIND} {name!r} in namespace {namespace} "
                f"(kubectl get sfp -n {namespace} lists them)"
            ) from None
        raise _api_error(exc, f"read {KIND} {namespace}/{name}", api) from None
    except HTTPError as exc:
        raise _api_error(exc, f"read {KIND} {namespace}/{name}", api) from None
    if not isinstance(document, dict):
        raise FatalError(f"the API server sent no object for {KIND} {namespace}/{name}")
    return ClusterResource(namespace, name, document, api)


CRD_NAME = f"{PLURAL}.{GROUP}"


def list_processors(
    namespace: str | None, all_namespaces: bool, args: argparse.Namespace
) -> tuple[str | None, list[dict[str, Any]]]:
    """(the namespace listed, None for all; every SnowflakeProcessor there, whole), or
    ConfigError/FatalError in one line: no CRD, no access, no API server."""
    api, default_namespace = client_from_flags(args)
    objects = client.CustomObjectsApi(api)
    listed_namespace = None if all_namespaces else namespace or default_namespace
    doing = (
        f"list {KIND}s in all namespaces"
        if listed_namespace is None
        else f"list {KIND}s in namespace {listed_namespace}"
    )
    try:
        if listed_namespace is None:
            listed: Any = objects.list_cluster_custom_object(
                GROUP, VERSION, PLURAL, _request_timeout=REQUEST_TIMEOUT_SECONDS
            )
        else:
            listed = objects.list_namespaced_custom_object(
                GROUP, VERSION, listed_namespace, PLURAL, _request_timeout=REQUEST_TIMEOUT_SECONDS
            )
    except ApiException as exc:
        if exc.status == NOT_FOUND:
            raise missing_crd() from None
        raise _api_error(exc, doing, api) from None
    except HTTPError as exc:
        raise _api_error(exc, doing, api) from None
    items = [item for item in listed.get("items", []) if isinstance(item, dict)]
    return listed_namespace, items


def missing_crd() -> ConfigError:
    return ConfigError(
        f"this cluster serves no {KIND}s: the CRD {CRD_NAME} is not installed "
        f"(kubectl get crd {CRD_NAME}; the chart installs it in operator mode)"
    )


def _serves_processors(objects: client.CustomObjectsApi, namespace: str) -> bool:
    """Whether the API server knows the resource type at all (a 404 for one object says
    nothing of it)."""
    try:
        objects.list_namespaced_custom_object(
            GROUP, VERSION, namespace, PLURAL, limit=1, _request_timeout=REQUEST_TIMEOUT_SECONDS
        )
    except ApiException as exc:
        return bool(exc.status != NOT_FOUND)
    return True


def processor_names(namespace: str | None, args: argparse.Namespace) -> list[str]:
    """The SnowflakeProcessors in the namespace, for completing NAME (a short timeout)."""
    api, default_namespace = client_from_flags(args)
    listed: Any = client.CustomObjectsApi(api).list_namespaced_custom_object(
        GROUP, VERSION, namespace or default_namespace, PLURAL, _request_timeout=3
    )
    return sorted(str(item["metadata"]["name"]) for item in listed.get("items", []))


def _api_error(
    exc: ApiException | HTTPError, doing: str, api: client.ApiClient | None = None
) -> FatalError:
    """One line for what went wrong talking to the API server (exit 1)."""
    if isinstance(exc, ApiException):
        if exc.status in (FORBIDDEN, UNAUTHORIZED):
            return FatalError(
                f"the cluster refused to {doing}: {exc.status} {exc.reason}. The user asking "
                "(the kubeconfig's, or the one --token or --as names) needs get and list on "
                "snowflakeprocessors (and get on the Secrets a key_pair or password login "
                "references)"
            )
        return FatalError(f"cannot {doing}: the API server answered {exc.status} {exc.reason}")
    where = f" at {api.configuration.host}" if api is not None else ""
    return FatalError(
        f"cannot {doing}: the Kubernetes API server{where} is unreachable ({_network_reason(exc)})"
    )


def _network_reason(exc: BaseException) -> str:
    """What went wrong on the wire, in a few words: urllib3's text repeats the whole
    request and its pool; the innermost cause says what happened."""
    cause = exc
    for _ in range(5):  # MaxRetryError -> NewConnectionError -> OSError ...
        inner = getattr(cause, "reason", None)
        if not isinstance(inner, BaseException):
            break
        cause = inner
    text = str(cause).lower()
    for marker in ("connection refused", "timed out", "name or service not known", "no route"):
        if marker in text:
            return marker
    return one_line(cause, limit=120)
