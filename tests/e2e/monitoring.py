"""A real Prometheus beside the local cluster, watching the installed release as a
Prometheus Operator would with the chart's ServiceMonitor and PrometheusRule.

The cluster serves no monitoring.coreos.com API (there is no Prometheus Operator to
install offline), so the release itself renders neither object; `helm template` renders
both from the release's own values file with the API versions a Prometheus Operator
cluster has, and snowflake_devtools.service_monitor turns the ServiceMonitor into the
scrape job the Prometheus Operator would generate (honorLabels included). Prometheus runs
on the host, which reaches pod addresses over the cluster's bridge.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from snowflake_devtools.cluster import Cluster
from snowflake_devtools.cluster.prometheus import PROMETHEUS_VERSION, ensure_prometheus_tool
from snowflake_devtools.prometheus_server import Prometheus, running_prometheus
from snowflake_devtools.service_monitor import rules_file, scrape_configs
from tests.e2e import figures
from tests.e2e.commands import Commands
from tests.e2e.release import CHART, Release
from tests.support.ports import free_port

MONITORING_API_VERSIONS = (
    "--api-versions",
    "monitoring.coreos.com/v1/ServiceMonitor",
    "--api-versions",
    "monitoring.coreos.com/v1/PrometheusRule",
)


def render_monitoring(
    commands: Commands, release: Release, values_file: Path
) -> dict[str, dict[str, Any]]:
    """The ServiceMonitor, PrometheusRule and dashboard ConfigMap the chart renders for
    this release's values, by kind."""
    out = commands.helm(
        "template", release.name, str(CHART), "-n", release.namespace, "-f", str(values_file),
        *MONITORING_API_VERSIONS,
    )  # fmt: skip
    found: dict[str, dict[str, Any]] = {}
    for document in yaml.safe_load_all(out):
        if not document:
            continue
        kind = document["kind"]
        if kind in ("ServiceMonitor", "PrometheusRule") or (
            kind == "ConfigMap" and document["metadata"]["name"].endswith("-dashboard")
        ):
            found["Dashboard" if kind == "ConfigMap" else kind] = document
    missing = {"ServiceMonitor", "PrometheusRule", "Dashboard"} - set(found)
    assert not missing, f"the chart rendered no {sorted(missing)} with the monitoring values"
    return found


@contextmanager
def prometheus_for(
    cluster: Cluster, commands: Commands, release: Release, values_file: Path, workdir: Path
) -> Iterator[tuple[Prometheus, dict[str, dict[str, Any]]]]:
    """Prometheus scraping the release's operator replicas with the chart's rules loaded,
    and the rendered monitoring objects it was configured from."""
    rendered = render_monitoring(commands, release, values_file)
    monitor = rendered["ServiceMonitor"]
    jobs = scrape_configs(monitor, cluster.kubeconfig)
    interval = monitor["spec"]["endpoints"][0].get("interval", "15s")
    binary = ensure_prometheus_tool("prometheus", say=lambda m: print(f"[prometheus] {m}"))
    with running_prometheus(
        binary, workdir, jobs, rules_file(rendered["PrometheusRule"]), free_port(), interval
    ) as prometheus:
        yield prometheus, rendered


def dashboard_queries(dashboard: dict[str, Any], namespace: str, processor: str) -> list[str]:
    """Every panel query of the chart's Grafana dashboard, with its variables set to one
    processor, as Grafana would send it."""
    (document,) = dashboard["data"].values()
    panels = json.loads(document)["panels"]
    exprs = [target["expr"] for panel in panels for target in panel.get("targets", [])]
    assert exprs, "the dashboard has no queries"
    # Kubernetes names hold no regular-expression character but '.', which matches itself.
    return [
        expr.replace("$namespace", namespace).replace("$processor", processor) for expr in exprs
    ]


def alert_key(alert: tuple[str, str]) -> str:
    name, processor = alert
    return f"{name}:{processor}" if processor else name


@dataclass
class Watching:
    """Prometheus as the tests use it, and what they found, for the JSON line."""

    server: Prometheus
    rendered: dict[str, dict[str, Any]]
    dashboard: tuple[int, int] | None = None  # queries, queries with data

    def record(self, seconds: float) -> None:
        fired = self.server.alerts("firing", within_seconds=seconds)
        firing_now = self.server.alerts("firing")
        found: dict[str, Any] = {
            # `go install` stamps no version into the binary: the module version it built.
            "version": self.server.version() or PROMETHEUS_VERSION,
            "alerts_fired": sorted(alert_key(a) for a in fired),
            "alerts_resolved": sorted(alert_key(a) for a in fired - firing_now),
        }
        if self.dashboard is not None:
            found["dashboard_queries"], found["dashboard_queries_with_data"] = self.dashboard
        figures.record(prometheus=found)
