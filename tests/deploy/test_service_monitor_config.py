"""The scrape job the end-to-end Prometheus gets from the chart's ServiceMonitor
(snowflake_devtools.service_monitor): Prometheus's own promtool accepts it, it keeps the
chart's metrics Service and port and no other, and it honours the operator's labels.
Whether it really scrapes both replicas is shown on the cluster (test_monitoring_on_cluster).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from snowflake_devtools.service_monitor import UnsupportedServiceMonitor, scrape_configs
from tests.deploy.test_alert_rules import monitoring_documents, promtool_check
from tests.deploy.test_chart import RELEASE_NAMESPACE, of_kind, one


def rendered(*values: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The chart's ServiceMonitor and the metrics Service it selects."""
    docs = monitoring_documents(*values)
    (service,) = [s for s in of_kind(docs, "Service") if s["metadata"]["name"].endswith("metrics")]
    return one(docs, "ServiceMonitor"), service


def kept_by_selector(job: dict[str, Any], service_labels: dict[str, str]) -> bool:
    """Whether the job's selector keep rules keep a Service with these labels (Prometheus
    joins source labels with ';' and anchors the regex)."""
    meta = {re.sub(r"[^a-zA-Z0-9_]", "_", k): v for k, v in service_labels.items()}
    prefix = "__meta_kubernetes_service_label_"
    for rule in job["relabel_configs"]:
        sources = rule.get("source_labels", [])
        if rule.get("action") != "keep" or not sources[0].startswith(prefix):
            continue
        suffix = sources[0].removeprefix(prefix)
        value = f"{meta[suffix]};true" if suffix in meta else ";false"
        if not re.fullmatch(rule["regex"], value):
            return False
    return True


def test_promtool_accepts_the_scrape_job(promtool: Path, tmp_path: Path) -> None:
    monitor, _ = rendered()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\n")
    config = {"scrape_configs": scrape_configs(monitor, kubeconfig)}
    (tmp_path / "prometheus.yml").write_text(yaml.safe_dump(config))
    promtool_check(promtool, "config", tmp_path / "prometheus.yml")


def test_the_job_keeps_the_metrics_service_by_its_labels_and_port() -> None:
    monitor, service = rendered()
    (job,) = scrape_configs(monitor, Path("/k"))
    assert job["honor_labels"] is True  # the operator's namespace label wins
    assert job["kubernetes_sd_configs"][0]["namespaces"]["names"] == [RELEASE_NAMESPACE]
    assert kept_by_selector(job, service["metadata"]["labels"])
    other = {**service["metadata"]["labels"], "app.kubernetes.io/component": "operator"}
    assert not kept_by_selector(job, other)
    (port,) = service["spec"]["ports"]
    keep_port = [r for r in job["relabel_configs"] if "endpoint_port_name" in str(r)]
    assert [r["regex"] for r in keep_port] == [port["name"]]
    job_label = [r for r in job["relabel_configs"] if r.get("target_label") == "job"]
    assert job_label[0]["source_labels"] == ["__meta_kubernetes_service_name"]
    interval = monitor["spec"]["endpoints"][0]["interval"]
    assert (job["scrape_interval"], job["metrics_path"]) == (interval, "/metrics")


def test_what_is_not_translated_is_refused() -> None:
    monitor, _ = rendered()
    monitor["spec"]["endpoints"][0]["tlsConfig"] = {"insecureSkipVerify": True}
    with pytest.raises(UnsupportedServiceMonitor, match="tlsConfig"):
        scrape_configs(monitor, Path("/k"))
    monitor, _ = rendered()
    monitor["spec"]["jobLabel"] = "app"
    with pytest.raises(UnsupportedServiceMonitor, match="jobLabel"):
        scrape_configs(monitor, Path("/k"))
