"""A real Prometheus server (built by cluster/prometheus.py) run beside the local cluster,
and the few HTTP API calls the end-to-end tests make of it.

    with running_prometheus(binary, workdir, scrape_configs, rules, port) as prometheus:
        prometheus.query('up')                     # instant vector, as the API returns it
        prometheus.alerts_fired_since(seconds)     # from the ALERTS series it wrote

Alerts are read back from the ``ALERTS`` series Prometheus records for every pending and
firing alert, so an alert that fired and resolved between two looks is still seen.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

# Alerts are evaluated often so that a test waits seconds, not minutes, for an alert's
# `for` to start counting; the rules' own windows and `for` durations are the chart's.
EVALUATION_INTERVAL = "5s"
READY_TIMEOUT_SECONDS = 60


class PrometheusError(RuntimeError):
    """Prometheus did not start, or its API refused a query."""


@dataclass(frozen=True)
class Prometheus:
    url: str
    log: Path

    def api(self, path: str, **params: str) -> Any:
        answer = httpx.get(f"{self.url}/api/v1/{path}", params=params, timeout=30)
        body = answer.json()
        if answer.status_code != 200 or body.get("status") != "success":
            raise PrometheusError(f"{path} {params}: {body}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """The instant vector ``expr`` evaluates to now (each: metric labels, value)."""
        data = self.api("query", query=expr)
        if data["resultType"] != "vector":
            raise PrometheusError(f"{expr}: a {data['resultType']}, not an instant vector")
        result: list[dict[str, Any]] = data["result"]
        return result

    def version(self) -> str:
        return str(self.api("status/buildinfo")["version"])

    def targets_up(self) -> list[dict[str, str]]:
        """The labels of every active target whose last scrape succeeded."""
        targets = self.api("targets", state="active")["activeTargets"]
        return [t["labels"] for t in targets if t["health"] == "up"]

    def alerts(self, state: str, within_seconds: float | None = None) -> set[tuple[str, str]]:
        """(alertname, processor or "") of the alerts in ``state`` now, or at any moment of
        the last ``within_seconds``."""
        selector = f'ALERTS{{alertstate="{state}"}}'
        if within_seconds is not None:
            selector = f"max_over_time({selector}[{max(1, round(within_seconds))}s])"
        return {
            (row["metric"]["alertname"], row["metric"].get("processor", ""))
            for row in self.query(selector)
        }


def configuration(scrape_configs: list[dict[str, Any]], scrape_interval: str) -> dict[str, Any]:
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": EVALUATION_INTERVAL},
        "rule_files": ["rules.yaml"],
        "scrape_configs": scrape_configs,
    }


@contextmanager
def running_prometheus(
    binary: Path,
    workdir: Path,
    scrape_configs: list[dict[str, Any]],
    rules: dict[str, Any],
    port: int,
    scrape_interval: str = "15s",
) -> Iterator[Prometheus]:
    """Prometheus listening on 127.0.0.1:``port`` with these jobs and rules; stopped (and its
    data left in ``workdir`` for a failed test's post-mortem) on exit."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
    config = workdir / "prometheus.yml"
    config.write_text(yaml.safe_dump(configuration(scrape_configs, scrape_interval)))
    log = workdir / "prometheus.log"
    address = f"127.0.0.1:{port}"
    with log.open("w") as output:
        process = subprocess.Popen(
            [
                str(binary),
                f"--config.file={config}",
                f"--storage.tsdb.path={workdir / 'data'}",
                f"--web.listen-address={address}",
                "--log.level=warn",
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    prometheus = Prometheus(f"http://{address}", log)
    try:
        _wait_ready(prometheus, process)
        yield prometheus
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _wait_ready(prometheus: Prometheus, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = prometheus.log.read_text()[-2000:]
            raise PrometheusError(f"prometheus exited with {process.returncode}:\n{tail}")
        try:
            if httpx.get(f"{prometheus.url}/-/ready", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise PrometheusError(f"prometheus not ready after {READY_TIMEOUT_SECONDS} s")
