"""The Prometheus scrape configuration a Prometheus Operator generates for a ServiceMonitor.

The end-to-end tests run a real Prometheus beside the local cluster without the Prometheus
Operator (no image registry here to pull it from), so they turn the chart's rendered
ServiceMonitor into the scrape job the operator would write: the same Kubernetes service
discovery (role ``endpoints`` in the selected namespaces), the same relabelling (keep the
Services whose labels match the selector and the endpoint port by name; ``job`` from the
Service's name; ``namespace``, ``service``, ``pod``, ``container`` and ``endpoint`` target
labels) and the endpoint's ``honorLabels``, interval, timeout, path and scheme. The rules
follow the Prometheus Operator's generator (its golden files, e.g.
``pkg/prometheus/testdata/GenerateRelabelConfig.golden``). Left out: sharding (one shard
keeps every target), ``jobLabel``/``targetLabels`` and TLS, which the chart does not use:
a ServiceMonitor asking for them is refused here rather than half-translated.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

UNSUPPORTED_SPEC = ("jobLabel", "targetLabels", "podTargetLabels", "attachMetadata")
UNSUPPORTED_ENDPOINT = (
    "targetPort",
    "tlsConfig",
    "bearerTokenSecret",
    "authorization",
    "basicAuth",
    "relabelings",
    "metricRelabelings",
    "params",
)


class UnsupportedServiceMonitor(ValueError):
    """A ServiceMonitor setting this translation does not implement."""


def label_name(name: str) -> str:
    """A Kubernetes label name as a Prometheus meta label suffix (app.kubernetes.io/name ->
    app_kubernetes_io_name)."""
    return re.sub(r"[^a-zA-Z0-9_]", "_", name)


def _selector_rules(selector: dict[str, Any]) -> list[dict[str, Any]]:
    if set(selector) - {"matchLabels"}:
        raise UnsupportedServiceMonitor(f"selector keys {sorted(selector)}: only matchLabels")
    return [
        {
            "action": "keep",
            "source_labels": [
                f"__meta_kubernetes_service_label_{label_name(key)}",
                f"__meta_kubernetes_service_labelpresent_{label_name(key)}",
            ],
            "regex": f"({re.escape(str(value))});true",
        }
        for key, value in sorted(selector.get("matchLabels", {}).items())
    ]


def _target_rules(port: str) -> list[dict[str, Any]]:
    """The target labels every ServiceMonitor job gets, after the selector's keep rules."""
    kind = ["__meta_kubernetes_endpoint_address_target_kind"]
    target = [*kind, "__meta_kubernetes_endpoint_address_target_name"]
    port_name = ["__meta_kubernetes_endpoint_port_name"]
    return [
        {"action": "keep", "source_labels": port_name, "regex": port},
        {"source_labels": target, "separator": ";", "regex": "Node;(.*)",
         "replacement": "${1}", "target_label": "node"},
        {"source_labels": target, "separator": ";", "regex": "Pod;(.*)",
         "replacement": "${1}", "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_namespace"], "target_label": "namespace"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "service"},
        {"source_labels": ["__meta_kubernetes_pod_name"], "target_label": "pod"},
        {"source_labels": ["__meta_kubernetes_pod_container_name"], "target_label": "container"},
        {"action": "drop", "source_labels": ["__meta_kubernetes_pod_phase"],
         "regex": "(Failed|Succeeded)"},
        {"source_labels": ["__meta_kubernetes_service_name"], "target_label": "job",
         "replacement": "${1}"},
        {"target_label": "endpoint", "replacement": port},
    ]  # fmt: skip


def scrape_configs(service_monitor: dict[str, Any], kubeconfig: Path) -> list[dict[str, Any]]:
    """One scrape job per endpoint of ``service_monitor``; service discovery reads the API
    server through ``kubeconfig``."""
    metadata, spec = service_monitor["metadata"], service_monitor["spec"]
    unsupported = [key for key in UNSUPPORTED_SPEC if key in spec]
    if unsupported:
        raise UnsupportedServiceMonitor(f"spec.{unsupported[0]} is not translated")
    namespaces = spec.get("namespaceSelector", {}).get("matchNames") or [metadata["namespace"]]
    jobs = []
    for index, endpoint in enumerate(spec["endpoints"]):
        unsupported = [key for key in UNSUPPORTED_ENDPOINT if key in endpoint]
        if unsupported or "port" not in endpoint:
            what = unsupported[0] if unsupported else "a missing port"
            raise UnsupportedServiceMonitor(f"endpoints[{index}]: {what} is not translated")
        job: dict[str, Any] = {
            "job_name": f"serviceMonitor/{metadata['namespace']}/{metadata['name']}/{index}",
            "honor_labels": bool(endpoint.get("honorLabels", False)),
            "kubernetes_sd_configs": [
                {
                    "role": "endpoints",
                    "kubeconfig_file": str(kubeconfig),
                    "namespaces": {"names": list(namespaces)},
                }
            ],
            "metrics_path": endpoint.get("path", "/metrics"),
            "scheme": endpoint.get("scheme", "http"),
            "relabel_configs": [
                {"source_labels": ["job"], "target_label": "__tmp_prometheus_job_name"},
                *_selector_rules(spec.get("selector", {})),
                *_target_rules(endpoint["port"]),
            ],
        }
        for field, key in (("interval", "scrape_interval"), ("scrapeTimeout", "scrape_timeout")):
            if field in endpoint:
                job[key] = endpoint[field]
        jobs.append(job)
    return jobs


def rules_file(prometheus_rule: dict[str, Any]) -> dict[str, Any]:
    """A PrometheusRule's groups as a Prometheus rules file (what the operator mounts)."""
    return {"groups": prometheus_rule["spec"]["groups"]}
