"""A Kubernetes client configured the way kubectl configures itself: the kubeconfig
(--kubeconfig, $KUBECONFIG, ~/.kube/config) and its context's namespace, or the pod's
service account inside a cluster, with kubectl's global flags over them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.config import kube_config
from kubernetes.config.config_exception import ConfigException

from snowflake_worker.errors import ConfigError, one_line

DEFAULT_KUBECONFIG = Path("~/.kube/config")
# The context that --cluster makes (never written to a file): a name no kubeconfig uses.
OVERRIDE_CONTEXT = "snowflake-processor/--cluster"
IN_CLUSTER_NAMESPACE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


@dataclass(frozen=True)
class KubectlOverrides:
    """kubectl's global flags that say where the API server is and who asks: each one given
    wins over the kubeconfig, as in kubectl."""

    server: str | None = None
    token: str | None = field(default=None, repr=False)  # a credential: never printed
    impersonate: str | None = None
    impersonate_group: str | None = None
    certificate_authority: Path | None = None
    insecure_skip_tls_verify: bool = False
    cluster: str | None = None  # a kubeconfig cluster, in place of the context's


NO_OVERRIDES = KubectlOverrides()


def cluster_reachable_as_kubectl_would(overrides: KubectlOverrides = NO_OVERRIDES) -> bool:
    """A kubeconfig where kubectl looks for one, --server, or the pod's service account."""
    return (
        _default_kubeconfig_exists()
        or overrides.server is not None
        or bool(os.environ.get("KUBERNETES_SERVICE_HOST"))
    )


def kube_client(
    context: str | None,
    kubeconfig: Path | None,
    overrides: KubectlOverrides = NO_OVERRIDES,
) -> tuple[client.ApiClient, str]:
    """A client configured like kubectl's, and the namespace to use when -n is not given."""
    configuration, namespace = _base_configuration(context, kubeconfig, overrides)
    apply_overrides(configuration, overrides)
    api = client.ApiClient(configuration)
    # Impersonation is a pair of headers on every request (the API server checks that the
    # real user may impersonate).
    if overrides.impersonate is not None:
        api.set_default_header("Impersonate-User", overrides.impersonate)  # type: ignore[no-untyped-call]
    if overrides.impersonate_group is not None:
        api.set_default_header("Impersonate-Group", overrides.impersonate_group)  # type: ignore[no-untyped-call]
    return api, namespace


def apply_overrides(configuration: client.Configuration, overrides: KubectlOverrides) -> None:
    """The global flags over what the kubeconfig said. A --token replaces the kubeconfig
    user's client certificate: the API server would authenticate the certificate first and
    the token would be ignored."""
    if overrides.server is not None:
        configuration.host = overrides.server.rstrip("/")
    if overrides.certificate_authority is not None:
        configuration.ssl_ca_cert = str(overrides.certificate_authority.expanduser())
    if overrides.insecure_skip_tls_verify:
        configuration.verify_ssl = False
    if overrides.token is not None:
        configuration.api_key = {"authorization": f"Bearer {overrides.token}"}
        configuration.api_key_prefix = {}
        configuration.cert_file = None
        configuration.key_file = None


def _base_configuration(
    context: str | None, kubeconfig: Path | None, overrides: KubectlOverrides
) -> tuple[client.Configuration, str]:
    configuration = client.Configuration()
    config_file = None if kubeconfig is None else str(kubeconfig.expanduser())
    if kubeconfig is not None and not kubeconfig.expanduser().is_file():
        raise ConfigError(f"--kubeconfig {kubeconfig}: no such file")
    authority = overrides.certificate_authority
    if authority is not None and not authority.expanduser().is_file():
        raise ConfigError(f"--certificate-authority {authority}: no such file")
    if config_file is None and not _default_kubeconfig_exists():
        if os.environ.get("KUBERNETES_SERVICE_HOST") and context is None:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
            return configuration, _in_cluster_namespace()
        if overrides.server is not None and context is None:
            return configuration, "default"  # kubectl --server with no kubeconfig at all
        raise ConfigError(
            "no kubeconfig: set KUBECONFIG, pass --kubeconfig PATH, or create ~/.kube/config "
            "(as for kubectl)"
        )
    try:
        contexts, active = config.list_kube_config_contexts(  # type: ignore[no-untyped-call]
            config_file=config_file
        )
        chosen = (
            next((c for c in contexts if c.get("name") == context), None) if context else active
        )
        if overrides.cluster is None:
            config.load_kube_config(  # type: ignore[no-untyped-call]
                config_file=config_file, context=context, client_configuration=configuration
            )
        else:
            _load_with_cluster(config_file, chosen, overrides.cluster, configuration)
    except ConfigException as exc:
        raise ConfigError(f"kubeconfig: {one_line(exc)}") from None
    namespace = (chosen or {}).get("context", {}).get("namespace") or "default"
    return configuration, str(namespace)


def _load_with_cluster(
    config_file: str | None,
    chosen: dict[str, Any] | None,
    cluster: str,
    configuration: client.Configuration,
) -> None:
    """kubectl --cluster: the chosen context's user and the named cluster. The merged
    kubeconfig (every $KUBECONFIG file, as kubectl merges them) gets one more context, made
    of the two, which the client then loads; no file is written."""
    merged = kube_config.KubeConfigMerger(  # type: ignore[no-untyped-call]
        config_file or os.environ.get("KUBECONFIG") or str(DEFAULT_KUBECONFIG.expanduser())
    ).config
    # Merged entries are ConfigNodes (they remember their file, for relative paths).
    if cluster not in {node["name"] for node in merged.value["clusters"]}:
        raise ConfigError(f"--cluster {cluster}: no such cluster in the kubeconfig")
    if chosen is None:
        raise ConfigError(
            "kubeconfig: no context to take the user from (--context or current-context)"
        )
    user = (chosen.get("context") or {}).get("user")
    merged.value["contexts"].append(
        {"name": OVERRIDE_CONTEXT, "context": {"cluster": cluster, "user": user}}
    )
    loader = kube_config.KubeConfigLoader(  # type: ignore[no-untyped-call]
        config_dict=merged, active_context=OVERRIDE_CONTEXT
    )
    loader.load_and_set(configuration)  # type: ignore[no-untyped-call]


def _default_kubeconfig_exists() -> bool:
    listed = os.environ.get("KUBECONFIG")
    paths = listed.split(os.pathsep) if listed else [str(DEFAULT_KUBECONFIG)]
    return any(path and Path(path).expanduser().is_file() for path in paths)


def _in_cluster_namespace() -> str:
    try:
        return IN_CLUSTER_NAMESPACE.read_text(encoding="utf-8").strip() or "default"
    except OSError:
        return "default"
