"""The chart's alerts and dashboard, judged by a real Prometheus on the real cluster.

Prometheus (tests/e2e/monitoring.py) scrapes both operator replicas through the chart's
metrics Service with the scrape job the chart's ServiceMonitor gives under a Prometheus
Operator, and evaluates the chart's PrometheusRule. One processor of its own then goes
through what an on-call engineer would be paged for, each induced for real and undone:

1. the service answers 503 to the first call of every entry (the worker's retry gets 200)
   and a few entries are poison (422): SnowflakeProcessorServiceErrors and
   SnowflakeProcessorDeadLettersRising fire for that processor;
2. the service answers again: after enough good calls the error ratio of the window falls
   below the threshold and SnowflakeProcessorServiceErrors resolves; every query of the
   Grafana dashboard returns data for the processor;
3. Snowflake unreachable (the resource pointed at a port nothing listens on):
   SnowflakeProcessorNoSuccessfulPoll fires; pointed back, it resolves;
4. both operator replicas gone (the Deployment scaled to 0): SnowflakeProcessorOperatorDown
   fires; scaled back, it resolves.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from typing import Any

import pytest
from kubernetes import client

from tests.e2e.commands import Commands
from tests.e2e.helpers import wait_until
from tests.e2e.host_services import HostServices
from tests.e2e.monitoring import Watching, dashboard_queries
from tests.e2e.processors import new_queue, processor_manifest
from tests.e2e.release import Release
from tests.e2e.test_chart_install import OPERATOR_SELECTOR, acting_operator_pod
from tests.support.ports import closed_port
from tests.support.queues import fill, statuses

NAME = "e2e-alerts"
FLAKY = 30  # the first call of each answers 503; the worker's retry gets 200
POISON = 3  # 422: dead-lettered
GOOD = 400  # 30 errors in 463 calls: under the chart's 10 % once these are counted

SERVICE_ERRORS = ("SnowflakeProcessorServiceErrors", NAME)
DEAD_LETTERS = ("SnowflakeProcessorDeadLettersRising", NAME)
NO_POLL = ("SnowflakeProcessorNoSuccessfulPoll", NAME)
OPERATOR_DOWN = ("SnowflakeProcessorOperatorDown", "")
RESPONSES = "snowflake_processor_service_responses_total"


def drained(queue: Any, completed: int, failed: int) -> bool:
    counts = Counter(statuses(queue).values())
    return counts.get("completed", 0) == completed and counts.get("failed", 0) == failed


def wait_for_alert(
    watching: Watching, alert: tuple[str, str], firing: bool, timeout: float
) -> None:
    def settled() -> bool:
        return (alert in watching.server.alerts("firing")) == firing

    wait_until(settled, timeout, f"{alert[0]} to be {'firing' if firing else 'resolved'}", 2)


@pytest.mark.timeout(1500)
def test_alerts_fire_and_resolve_and_the_dashboard_has_data(
    operator_release: Release,
    prometheus: Watching,
    services: HostServices,
    commands: Commands,
    api_client: Any,
) -> None:
    server = prometheus.server
    namespace = operator_release.jobs_namespace
    service_name = prometheus.rendered["ServiceMonitor"]["metadata"]["name"] + "-metrics"

    # Both replicas are targets, found through the Service, and named after it.
    targets = wait_until(
        lambda: len(up := server.targets_up()) == 2 and up, 120, "both replicas scraped"
    )
    assert {t["job"] for t in targets} == {service_name}, targets
    assert {t["namespace"] for t in targets} == {operator_release.namespace}

    queue = new_queue(services)
    flaky = {"retry_after": "0", "retry_status": 503, "fail_first": 1}
    queue.enqueue((f"flaky{i}", flaky) for i in range(FLAKY))
    queue.enqueue((f"poison{i}", {"poison": True}) for i in range(POISON))
    bucket = services.certificates_bucket()
    manifest = processor_manifest(
        NAME, namespace, queue, services, bucket, job={"entriesPerJob": 250}
    )
    commands.apply(manifest)
    try:
        _service_failing_then_recovered(prometheus, queue, namespace)
        _snowflake_unreachable(prometheus, commands, manifest)
        _operator_down(prometheus, api_client, operator_release)
    finally:
        with contextlib.suppress(AssertionError):
            commands.kubectl("delete", "sfp", NAME, "-n", namespace, "--wait=true")


def _service_failing_then_recovered(watching: Watching, queue: Any, namespace: str) -> None:
    server = watching.server
    wait_until(lambda: drained(queue, FLAKY, POISON), 600, "the flaky entries to drain", 2)
    # honorLabels: the series carry the resource's namespace, not the operator's.
    (calls, *_) = wait_until(
        lambda: server.query(f"{RESPONSES}{{processor={NAME!r},status_class='5xx'}} > 0"),
        120,
        "the workers' 5xx answers in Prometheus",
    )
    assert calls["metric"]["namespace"] == namespace
    assert float(calls["value"][1]) >= FLAKY
    wait_for_alert(watching, SERVICE_ERRORS, True, 120)
    wait_for_alert(watching, DEAD_LETTERS, True, 120)

    fill(queue, GOOD)
    wait_until(lambda: drained(queue, FLAKY + GOOD, POISON), 600, "the good entries to drain", 2)
    wait_for_alert(watching, SERVICE_ERRORS, False, 180)

    queries = dashboard_queries(watching.rendered["Dashboard"], namespace, NAME)
    empty = [query for query in queries if not server.query(query)]
    watching.dashboard = (len(queries), len(queries) - len(empty))
    assert not empty, f"dashboard queries with no data for {NAME}: {empty}"


def _snowflake_unreachable(
    watching: Watching, commands: Commands, manifest: dict[str, Any]
) -> None:
    snowflake = manifest["spec"]["snowflake"]
    where = ["-n", manifest["metadata"]["namespace"], "--type=merge", "-p"]
    commands.kubectl("patch", "sfp", NAME, *where, _port_patch(closed_port()))
    # noSuccessfulPollSeconds (60) and the rule's minute of `for`, and the last good poll.
    wait_for_alert(watching, NO_POLL, True, 300)
    commands.kubectl("patch", "sfp", NAME, *where, _port_patch(snowflake["port"]))
    wait_for_alert(watching, NO_POLL, False, 300)


def _port_patch(port: int) -> str:
    return json.dumps({"spec": {"snowflake": {"port": port}}})


def _operator_down(watching: Watching, api_client: Any, release: Release) -> None:
    apps: Any = client.AppsV1Api(api_client)
    (deployment,) = apps.list_namespaced_deployment(
        release.namespace, label_selector=OPERATOR_SELECTOR
    ).items
    name, replicas = deployment.metadata.name, deployment.spec.replicas

    def scale(count: int) -> None:
        apps.patch_namespaced_deployment_scale(
            name, release.namespace, {"spec": {"replicas": count}}
        )

    scale(0)
    try:
        # operatorDownFor (30s) after the last replica's targets are gone.
        wait_for_alert(watching, OPERATOR_DOWN, True, 240)
    finally:
        scale(replicas)
    wait_until(
        lambda: (
            apps.read_namespaced_deployment(name, release.namespace).status.available_replicas
            == replicas
        ),
        300,
        "the operator replicas back",
    )
    acting_operator_pod(api_client, release)
    wait_for_alert(watching, OPERATOR_DOWN, False, 180)
