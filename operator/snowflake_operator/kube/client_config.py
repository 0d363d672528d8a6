"""A Kubernetes client configured the way kubectl configures itself: the kubeconfig
(--kubeconfig, $KUBECONFIG, ~/.kube/config) and its context's namespace, or the pod's
service account inside a cluster."""

from __future__ import annotations

import os
from pathlib import Path

from kubernetes import client, config
from kubernetes.config.config_exception import ConfigException

from snowflake_worker.errors import ConfigError, one_line

DEFAULT_KUBECONFIG = Path("~/.kube/config")
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


def cluster_reachable_as_kubectl_would() -> bool:
    """A kubeconfig where kubectl looks for one, or the pod's service account."""
    return _default_kubeconfig_exists() or bool(os.environ.get("KUBERNETES_SERVICE_HOST"))


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
