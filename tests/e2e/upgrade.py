"""Release 0.1.0 on the real cluster, as a user installed it, for the upgrade test: its
chart and its images built from its own commit, resources in its CRD's form, and a watch
of every Job launched across the upgrade."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, watch

from snowflake_devtools.cluster.project_images import IMAGES
from snowflake_devtools.cluster.release_images import EarlierRelease, release_sources
from snowflake_operator.constants import PROCESSOR_LABEL
from snowflake_worker.queue import QueueClient
from tests.e2e.commands import Commands
from tests.e2e.helpers import wait_until
from tests.e2e.host_services import HostServices
from tests.e2e.processors import (
    FARGATE_POD_LABELS,
    GROUP,
    VERSION,
    condition,
    emulator_snowflake,
    read_processor,
)
from tests.e2e.release import CRD_NAME, ROOT

RELEASE_0_1_0 = EarlierRelease("0.1.0", "e25aa23")
CERTIFICATES_SECRET = "upgrade-mtls"  # 0.1.0 read certificates from S3 only through IRSA


def earlier_tags(release: EarlierRelease = RELEASE_0_1_0) -> dict[str, str]:
    return {image.name: release.tag(image) for image in IMAGES}


def earlier_chart(release: EarlierRelease = RELEASE_0_1_0) -> Path:
    return release_sources(ROOT, release) / "charts" / "snowflake-processor"


def earlier_values(jobs_namespace: str, release: EarlierRelease = RELEASE_0_1_0) -> dict[str, Any]:
    """0.1.0's chart values for this cluster: its images, everything else its defaults
    (one replica, rbac.scope cluster)."""
    tags = earlier_tags(release)

    def image(name: str) -> dict[str, str]:
        repository, _, tag = tags[name].rpartition(":")
        return {"repository": repository, "tag": tag}

    return {
        "jobs": {"namespace": jobs_namespace},
        "operator": {"image": {**image("operator"), "pullPolicy": "Never"}},
        "worker": {"image": image("worker")},
    }


def remove_crd(commands: Commands) -> None:
    """No CRD, so 0.1.0's (and its defaults) is what resources are stored under."""
    commands.kubectl("delete", "crd", CRD_NAME, "--ignore-not-found", "--wait=true")


def without_unrulable_defaults(schema: dict[str, Any]) -> int:
    """Drop ``default: {}`` from every object that has CEL rules; returns how many.

    0.1.0's CRD defaults `spec.job` and `spec.snowflake.auth` to `{}` and has rules reading
    their keys (`self.cpu`, `self.mode`). The API server (1.34 here) checks defaults
    against the rules, finds no such key in `{}` and refuses the whole CRD: 0.1.0's chart
    does not install on it. Resources that set both objects (every one this test makes)
    are stored the same with or without those two defaults, so the test installs the CRD
    without them."""
    dropped = 0
    rules = schema.get("x-kubernetes-validations")
    if schema.get("type") == "object" and rules and schema.get("default") == {}:
        del schema["default"]
        dropped += 1
    for child in (schema.get("properties") or {}).values():
        dropped += without_unrulable_defaults(child)
    return dropped


def install_earlier_crd(commands: Commands, release: EarlierRelease = RELEASE_0_1_0) -> int:
    """0.1.0's CRD as its chart ships it, made acceptable to this API server; returns the
    defaults dropped."""
    crd = yaml.safe_load((earlier_chart(release) / "crds" / "snowflakeprocessors.yaml").read_text())
    dropped = sum(
        without_unrulable_defaults(version["schema"]["openAPIV3Schema"])
        for version in crd["spec"]["versions"]
    )
    commands.apply(crd)
    jsonpath = '{.status.conditions[?(@.type=="Established")].status}'
    wait_until(
        lambda: commands.kubectl("get", "crd", CRD_NAME, "-o", f"jsonpath={jsonpath}") == "True",
        60,
        "0.1.0's CRD to be established",
    )
    return dropped


def certificates_secret(services: HostServices, namespace: str) -> dict[str, Any]:
    client_dir = services.certs.client_dir
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": CERTIFICATES_SECRET, "namespace": namespace},
        "stringData": {path.name: path.read_text() for path in sorted(client_dir.iterdir())},
    }


def processor_0_1_0(
    name: str,
    namespace: str,
    queue: QueueClient,
    services: HostServices,
    job: dict[str, Any],
) -> dict[str, Any]:
    """A resource as 0.1.0's CRD took it: Job size, history and TTL left to its defaults
    unless ``job`` sets them."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SnowflakeProcessor",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "snowflake": emulator_snowflake(queue, services),
            "endpoint": {"url": services.service_url, "timeoutSeconds": 5, "retries": 3},
            "certificates": {"existingSecret": CERTIFICATES_SECRET},
            "queue": {"leaseSeconds": 300, "maxAttempts": 3, "claimBatch": 25},
            "job": {"entriesPerJob": 25, "concurrency": 4, "podLabels": FARGATE_POD_LABELS, **job},
            "pollIntervalSeconds": 3,
        },
    }


@dataclass
class LaunchedJob:
    processor: str
    image: str
    finished: bool = False
    deleted: bool = False


@dataclass
class JobWatch:
    """Every Job of the namespace, from a watch: who launched it (its worker image tells
    the release) and the most unfinished at once per resource."""

    jobs: dict[str, LaunchedJob] = field(default_factory=dict)
    most_unfinished: dict[str, int] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def seen(self, kind: str, job: Any) -> None:
        name = job.metadata.name
        processor = (job.metadata.labels or {}).get(PROCESSOR_LABEL)
        if processor is None:
            return
        finished = any(
            c.type in ("Complete", "Failed") and c.status == "True"
            for c in (job.status.conditions or [])
        )
        with self.lock:
            entry = self.jobs.setdefault(
                name, LaunchedJob(processor, job.spec.template.spec.containers[0].image)
            )
            entry.finished = entry.finished or finished
            entry.deleted = entry.deleted or kind == "DELETED"
            unfinished = sum(
                not j.finished and not j.deleted
                for j in self.jobs.values()
                if j.processor == processor
            )
            self.most_unfinished[processor] = max(
                self.most_unfinished.get(processor, 0), unfinished
            )

    def slots_launched_by_both(self) -> int:
        """Poll slots (names are `<resource>-<slot>-<n>`) holding Jobs of both releases: a
        slot's Jobs come from one poll, so such a slot means a launch twice."""
        images: dict[str, set[str]] = {}
        with self.lock:
            for name, job in self.jobs.items():
                images.setdefault(name.rsplit("-", 1)[0], set()).add(job.image)
        return sum(len(found) > 1 for found in images.values())

    def launched_with(self, image: str) -> int:
        with self.lock:
            return sum(job.image == image for job in self.jobs.values())


@contextmanager
def watching_jobs(api_client: Any, namespace: str) -> Iterator[JobWatch]:
    batch: Any = client.BatchV1Api(api_client)
    found = JobWatch()
    stop = threading.Event()

    def run() -> None:
        while not stop.is_set():
            stream = watch.Watch()
            try:
                for event in stream.stream(batch.list_namespaced_job, namespace, timeout_seconds=5):
                    found.seen(event["type"], event["object"])
                    if stop.is_set():
                        break
            except Exception:  # the API server restarts or drops the watch
                stop.wait(1)

    thread = threading.Thread(target=run, name="job-watch", daemon=True)
    thread.start()
    try:
        yield found
    finally:
        stop.set()
        thread.join(timeout=15)


def helm_values_file(directory: Path, name: str, values: dict[str, Any]) -> Path:
    path = directory / name
    path.write_text(json.dumps(values))
    return path


def wait_ready(api_client: Any, namespace: str, name: str, timeout: float = 180) -> Any:
    return wait_until(
        lambda: (
            (r := read_processor(api_client, namespace, name))
            and condition(r, "Ready") == "True"
            and r
        ),
        timeout,
        f"{name} to be Ready",
    )
