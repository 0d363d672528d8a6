"""The chart installed with `helm install`, as docs/install.md says, into the namespaces
Terraform creates (their names are terraform/eks's defaults), on the images built here."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snowflake_devtools.cluster.project_images import current_tags
from snowflake_operator.constants import GROUP, PLURAL
from tests.e2e.commands import Commands
from tests.e2e.helpers import FARGATE_TOLERATION
from tests.e2e.host_services import HostServices
from tests.support.s3 import ACCESS_KEY_ID, REGION, SECRET_ACCESS_KEY
from tests.support.terraform_config import TF_DIR, load_config, variable_default

ROOT = Path(__file__).resolve().parents[2]
CRD_NAME = f"{PLURAL}.{GROUP}"
CHART = ROOT / "charts" / "snowflake-processor"
RELEASE = "snowflake-processor"
CRONJOB_RELEASE = "sfp-cron"
S3_CREDENTIALS_SECRET = "s3-emulator-credentials"  # dummy keys moto accepts; tests only
# The chart's monitoring (monitoring.py renders it for a Prometheus beside the cluster):
# scraped every 5 s, so a test sees a change within seconds; the two alerts whose wait is
# a chart value wait as little as the chart allows, so the operator-down and no-poll
# alerts fire within minutes. Every other window and `for` is the chart's default.
MONITORING_VALUES: dict[str, Any] = {
    "serviceMonitor": {"enabled": True, "interval": "5s", "scrapeTimeout": "4s"},
    "prometheusRule": {
        "enabled": True,
        "noSuccessfulPollSeconds": 60,
        "operatorDownFor": "30s",
    },
    "grafanaDashboard": {"enabled": True},
}


@dataclass(frozen=True)
class Release:
    name: str
    namespace: str  # the operator's (the release namespace)
    jobs_namespace: str
    operator_service_account: str
    worker_service_account: str


def terraform_namespaces() -> tuple[str, str]:
    config = load_config(TF_DIR)
    return (
        variable_default(config, "operator_namespace"),
        variable_default(config, "jobs_namespace"),
    )


def namespace_manifest(name: str) -> dict[str, Any]:
    """A namespace as Terraform creates it (restricted Pod Security), standing for a
    Fargate profile's namespace: its pods get the Fargate node's toleration, as the
    Fargate scheduler places them on EKS (see docs/cluster.md)."""
    return {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                "app.kubernetes.io/part-of": "snowflake-processor",
                "pod-security.kubernetes.io/enforce": "restricted",
            },
            "annotations": {
                "scheduler.alpha.kubernetes.io/defaultTolerations": json.dumps([FARGATE_TOLERATION])
            },
        },
    }


def image_values(name: str) -> dict[str, str]:
    """repository and tag of the image built from this clone (project_images.py)."""
    repository, _, tag = current_tags(ROOT)[name].rpartition(":")
    return {"repository": repository, "tag": tag}


def chart_values(services: HostServices, jobs_namespace: str) -> dict[str, Any]:
    secret_env = [
        {
            "name": variable,
            "valueFrom": {"secretKeyRef": {"name": S3_CREDENTIALS_SECRET, "key": variable}},
        }
        for variable in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    ]
    return {
        "jobs": {"namespace": jobs_namespace},
        "operator": {
            "image": {**image_values("operator"), "pullPolicy": "Never"},
            "config": {"s3EndpointUrl": services.s3_endpoint},
            "extraEnv": [*secret_env, {"name": "AWS_DEFAULT_REGION", "value": REGION}],
        },
        "worker": {"image": image_values("worker")},
        "metrics": MONITORING_VALUES,
    }


def apply_s3_credentials(commands: Commands, namespace: str) -> None:
    """The dummy keys moto accepts, as a Secret that operator.extraEnv reads."""
    commands.apply(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": S3_CREDENTIALS_SECRET, "namespace": namespace},
            "stringData": {
                "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
                "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
            },
        }
    )


def development_login(directory: Path) -> list[str]:
    """helm's --post-renderer that adds --development-emulator-login (post_render.py):
    the tests' Snowflake is the emulator, and no chart value may allow its login."""
    script = directory / "post-render.sh"
    script.write_text(
        f"#!/bin/sh\nexec {sys.executable} {Path(__file__).with_name('post_render.py')}\n"
    )
    script.chmod(0o755)
    return ["--post-renderer", str(script)]


def install(commands: Commands, services: HostServices, values_file: Path) -> Release:
    operator_ns, jobs_ns = terraform_namespaces()
    uninstall(commands, operator_ns, jobs_ns)  # leftovers of an interrupted run
    for namespace in (operator_ns, jobs_ns):
        commands.apply(namespace_manifest(namespace))
    apply_s3_credentials(commands, operator_ns)
    adopt_crd(commands, operator_ns)
    values_file.write_text(json.dumps(chart_values(services, jobs_ns)))
    commands.helm(
        "install", RELEASE, str(CHART), "-n", operator_ns, "-f", str(values_file),
        *development_login(values_file.parent), "--wait", "--timeout", "5m",
    )  # fmt: skip
    return Release(
        RELEASE,
        operator_ns,
        jobs_ns,
        operator_service_account="snowflake-processor-operator",
        worker_service_account="snowflake-processor-worker",
    )


def install_cronjob_mode(
    commands: Commands,
    services: HostServices,
    values_file: Path,
    namespace: str,
    processors: list[dict[str, Any]],
) -> Release:
    """The chart in CronJob mode, as a team without rights to install a CRD or a controller
    installs it: the release, its CronJobs and Jobs all in one namespace of theirs (made
    here like Terraform's jobs namespace: restricted, on the Fargate node)."""
    commands.apply(namespace_manifest(namespace))
    apply_s3_credentials(commands, namespace)
    values = chart_values(services, namespace)
    # The tests read finished runs' reports from their logs; by default only failed runs
    # are kept.
    values.update(
        mode="cronjob", cronjob={"processors": processors, "successfulJobsHistoryLimit": 3}
    )
    values_file.write_text(json.dumps(values))
    commands.helm(
        "install", CRONJOB_RELEASE, str(CHART), "-n", namespace, "-f", str(values_file),
        *development_login(values_file.parent), "--wait", "--timeout", "3m",
    )  # fmt: skip
    return Release(
        CRONJOB_RELEASE,
        namespace,
        namespace,
        operator_service_account="snowflake-processor-reconciler",
        worker_service_account="snowflake-processor-worker",
    )


def adopt_crd(commands: Commands, operator_ns: str) -> None:
    """A CRD left by `kubectl apply` (an older chart's crds/, or the CRD tests) is adopted
    by the release as docs/install.md tells users to: Helm refuses to install over it."""
    found = commands.run("kubectl", "get", "crd", CRD_NAME, "-o", "name", check=False)
    if found.returncode != 0:
        return
    commands.kubectl("label", "crd", CRD_NAME, "app.kubernetes.io/managed-by=Helm", "--overwrite")
    commands.kubectl(
        "annotate", "crd", CRD_NAME, "--overwrite",
        f"meta.helm.sh/release-name={RELEASE}", f"meta.helm.sh/release-namespace={operator_ns}",
    )  # fmt: skip


def release_status(commands: Commands, release: Release) -> dict[str, Any]:
    status: dict[str, Any] = json.loads(
        commands.helm("status", release.name, "-n", release.namespace, "-o", "json")
    )
    return status


def uninstall(commands: Commands, operator_ns: str, jobs_ns: str) -> None:
    # SnowflakeProcessors carry kopf's finalizer (its daemons need one): delete them while
    # the operator still runs, as docs/operations.md tells users to before an uninstall.
    commands.kubectl(
        "delete", "sfp", "--all", "-n", jobs_ns, "--ignore-not-found", "--wait=true",
        "--timeout=120s", check=False,
    )  # fmt: skip
    listed = commands.run("helm", "list", "-n", operator_ns, "-q", check=False).stdout.split()
    if RELEASE in listed:
        commands.helm("uninstall", RELEASE, "-n", operator_ns, "--wait", "--timeout", "3m")
    # Left by an interrupted run whose operator is gone: nobody would ever remove their
    # finalizer, and the namespace would stay Terminating.
    for name in commands.kubectl("get", "sfp", "-n", jobs_ns, "-o", "name", check=False).split():
        commands.kubectl(
            "patch", name, "-n", jobs_ns, "--type=merge", "-p", '{"metadata":{"finalizers":[]}}',
            check=False,
        )  # fmt: skip
    for namespace in (jobs_ns, operator_ns):
        commands.kubectl(
            "delete", "namespace", namespace, "--ignore-not-found", "--wait=true", "--timeout=180s"
        )
