"""The chart's alerts, evaluated by Prometheus's own promtool (`promtool test rules`).

The rules file under test is the PrometheusRule the chart renders (its spec.groups), not a
copy, so a change to a rule that breaks what it promises fails here. For each alert:
series that must fire it (with its labels and after its `for`), series that must not, and
its resolution. promtool is built from the Go module proxy at a pinned version and cached
(snowflake_devtools/cluster/prometheus.py), like the cluster's Kubernetes binaries.
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.test_chart import (
    CHART,
    IMAGE_VALUES,
    RELEASE,
    RELEASE_NAMESPACE,
    helm,
    of_kind,
    one,
)

MONITORING = (
    "--api-versions",
    "monitoring.coreos.com/v1/PrometheusRule",
    "--api-versions",
    "monitoring.coreos.com/v1/ServiceMonitor",
    "--set",
    "metrics.prometheusRule.enabled=true",
    "--set",
    "metrics.serviceMonitor.enabled=true",
)
WHERE = 'namespace="team-a",processor="orders"'
LABELS = {"namespace": "team-a", "processor": "orders"}


def monitoring_documents(*values: str, release: str = RELEASE) -> tuple[dict[str, Any], ...]:
    """What the chart renders where the Prometheus Operator's CRDs are served."""
    out = helm(
        "template",
        release,
        str(CHART),
        "-n",
        RELEASE_NAMESPACE,
        *IMAGE_VALUES,
        *MONITORING,
        *values,
    )
    return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc)


def promtool_check(promtool: Path, what: str, path: Path) -> str:
    """`promtool check rules|config PATH`, which must pass; its output."""
    done = subprocess.run(
        [str(promtool), "check", what, str(path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def chart_rules(*values: str, release: str = RELEASE) -> tuple[dict[str, Any], str]:
    """The rendered rules file and the job name a Prometheus Operator gives the operator's
    scrape target (the ServiceMonitor's Service: the job label is the Service's name)."""
    docs = monitoring_documents(*values, release=release)
    rule = one(docs, "PrometheusRule")
    for group in rule["spec"]["groups"]:
        for each in group["rules"]:
            # What a test checks is when an alert fires and with which labels; the
            # annotations' templates are checked by `promtool check rules` below.
            each.pop("annotations", None)
    (service,) = [s for s in of_kind(docs, "Service") if s["metadata"]["name"].endswith("metrics")]
    return {"groups": rule["spec"]["groups"]}, service["metadata"]["name"]


def case(
    alertname: str, series: dict[str, str], expected: dict[str, list[dict[str, str]]]
) -> dict[str, Any]:
    """One promtool test group: input ``series`` (one sample a minute), and at each
    eval time (minutes) the alerts that must be firing, with their labels."""
    return {
        "interval": "1m",
        "input_series": [{"series": s, "values": v} for s, v in series.items()],
        "alert_rule_test": [
            {
                "eval_time": at,
                "alertname": alertname,
                "exp_alerts": [{"exp_labels": labels} for labels in firing],
            }
            for at, firing in expected.items()
        ],
    }


def cases(job: str) -> list[dict[str, Any]]:
    warning = {**LABELS, "severity": "warning"}
    critical = {**LABELS, "severity": "critical"}
    backlog = f"snowflake_processor_backlog{{{WHERE}}}"
    dead = f"snowflake_processor_dead_letters{{{WHERE}}}"
    stranded = f"snowflake_processor_stranded_entries{{{WHERE}}}"
    calls = "snowflake_processor_service_responses_total{%s,status_class=%r}"
    polled = f"snowflake_processor_last_successful_poll_timestamp_seconds{{{WHERE}}}"
    suspended = f"snowflake_processor_suspended{{{WHERE}}}"
    up = 'up{job="%s",instance="%s"}'
    return [
        # The backlog grows for 30 minutes: pending first, then firing; flat again: gone.
        case(
            "SnowflakeProcessorBacklogGrowing",
            {backlog: "0+10x60 600x90"},
            {"20m": [], "45m": [warning], "120m": []},
        ),
        case("SnowflakeProcessorBacklogGrowing", {backlog: "500x90"}, {"60m": []}),
        case("SnowflakeProcessorBacklogGrowing", {backlog: "900-10x90"}, {"60m": []}),
        # Five more dead letters: at once; 15 minutes later: gone; a requeue: never.
        case(
            "SnowflakeProcessorDeadLettersRising",
            {dead: "0x30 5x60"},
            {"25m": [], "35m": [warning], "60m": []},
        ),
        case("SnowflakeProcessorDeadLettersRising", {dead: "5x30 0x30"}, {"35m": []}),
        # Stranded entries for 15 minutes: firing; fewer than 15 minutes, or none: not;
        # made claimable or failed again: resolved.
        case(
            "SnowflakeProcessorEntriesStranded",
            {stranded: "0x10 3x30 0x20"},
            {"20m": [], "30m": [warning], "40m": [warning], "50m": []},
        ),
        case("SnowflakeProcessorEntriesStranded", {stranded: "0x10 2x10 0x20"}, {"25m": []}),
        case("SnowflakeProcessorEntriesStranded", {stranded: "0x60"}, {"60m": []}),
        # A fifth of the calls fail: fires; a twentieth: not; no calls at all: not.
        case(
            "SnowflakeProcessorServiceErrors",
            {
                calls % (WHERE, "2xx"): "0+80x40 3200+100x60",
                calls % (WHERE, "5xx"): "0+20x40 800x60",
            },
            {"30m": [warning], "90m": []},
        ),
        case(
            "SnowflakeProcessorServiceErrors",
            {calls % (WHERE, "2xx"): "0+95x60", calls % (WHERE, "error"): "0+5x60"},
            {"40m": []},
        ),
        case(
            "SnowflakeProcessorServiceErrors",
            {calls % (WHERE, "2xx"): "0x60", calls % (WHERE, "5xx"): "0x60"},
            {"40m": []},
        ),
        # Polls stop succeeding at 10 minutes: firing once 600 s have passed (and the
        # minute of `for`); a suspended processor: never; polls back: resolved.
        case(
            "SnowflakeProcessorNoSuccessfulPoll",
            {polled: "0+60x10 600x19 1800+60x40", suspended: "0x70"},
            {"15m": [], "25m": [critical], "45m": []},
        ),
        case(
            "SnowflakeProcessorNoSuccessfulPoll",
            {polled: "0+60x10 600x60", suspended: "0x10 1x60"},
            {"25m": [], "60m": []},
        ),
        # Both replicas scraped and up: nothing; one of two down: the other acts, nothing;
        # both down for 5 minutes, or never scraped: critical.
        case(
            "SnowflakeProcessorOperatorDown",
            {up % (job, "a"): "1x30", up % (job, "b"): "1x10 0x20"},
            {"25m": []},
        ),
        case(
            "SnowflakeProcessorOperatorDown",
            {up % (job, "a"): "1x10 0x30", up % (job, "b"): "1x10 0x30"},
            {"12m": [], "20m": [{"severity": "critical"}]},
        ),
        case(
            "SnowflakeProcessorOperatorDown",
            {up % ("some-other-job", "a"): "1x30"},
            {"3m": [], "10m": [{"severity": "critical"}]},
        ),
    ]


def run_promtool(promtool: Path, tmp_path: Path, rules: dict[str, Any], tests: list[Any]) -> str:
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules, sort_keys=False))
    suite = {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests}
    (tmp_path / "tests.yaml").write_text(yaml.safe_dump(suite, sort_keys=False))
    done = subprocess.run(
        [str(promtool), "test", "rules", "tests.yaml"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.mark.parametrize("release", [RELEASE, "prod"])
def test_every_alert_fires_stays_silent_and_resolves_as_promised(
    promtool: Path, tmp_path: Path, release: str
) -> None:
    rules, job = chart_rules(release=release)
    alerts = {r["alert"] for group in rules["groups"] for r in group["rules"] if "alert" in r}
    tests = cases(job)
    assert alerts == {t["alert_rule_test"][0]["alertname"] for t in tests}  # each is tested
    run_promtool(promtool, tmp_path, rules, tests)


def test_promtool_catches_a_rule_that_does_not_fire(promtool: Path, tmp_path: Path) -> None:
    """The harness can fail: a rule whose threshold was raised out of reach is caught."""
    rules, job = chart_rules("--set-json", "metrics.prometheusRule.serviceErrorRatio=0.9")
    with pytest.raises(AssertionError, match="SnowflakeProcessorServiceErrors"):
        run_promtool(promtool, tmp_path, rules, cases(job))


def test_promtool_checks_the_rendered_rules(promtool: Path, tmp_path: Path) -> None:
    rules, _ = chart_rules()
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rules))
    assert "SUCCESS: 6 rules found" in promtool_check(promtool, "rules", tmp_path / "rules.yaml")


def test_operator_down_waits_as_long_as_configured(promtool: Path, tmp_path: Path) -> None:
    """metrics.prometheusRule.operatorDownFor is the alert's `for`: both replicas down at
    10 minutes, nothing at 18 minutes with 10m configured, critical at 22."""
    rules, job = chart_rules("--set", "metrics.prometheusRule.operatorDownFor=10m")
    up = 'up{job="%s",instance="%s"}'
    down = {up % (job, "a"): "1x10 0x30", up % (job, "b"): "1x10 0x30"}
    expected: dict[str, list[dict[str, str]]] = {"18m": [], "22m": [{"severity": "critical"}]}
    run_promtool(
        promtool, tmp_path, rules, [case("SnowflakeProcessorOperatorDown", down, expected)]
    )
