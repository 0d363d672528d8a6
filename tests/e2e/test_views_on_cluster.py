"""What on-call sees with kubectl alone, on the real API server, for the demo's processor:
`kubectl get sfp` and `-o wide` (printer columns are served by the API server; the
emulator of the integration tests serves none) and `kubectl sfp status -n NS NAME`. Then
the same operator against a CRD one field ahead of it (as during an upgrade).

Nothing here needs the images: `snowflake-processor demo --keep-running` drains its queue
in its own Snowflake emulator on this machine, and the operator runs as a process on this
machine too (`snowflake-processor operator --namespace NS`, the admin kubeconfig), like a
developer's, watching a namespace of its own. The outputs are printed (pytest -s shows
them); docs/ops-cli.md quotes them.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from snowflake_devtools.cluster import Cluster
from snowflake_devtools.demo import add_demo_arguments, demo_spec
from snowflake_operator.constants import GROUP, PLURAL, VERSION
from snowflake_worker.constants import CERT_FILES
from tests.e2e import figures
from tests.e2e.commands import Commands
from tests.e2e.helpers import wait_until
from tests.e2e.local_operator import BIN
from tests.e2e.local_operator import local_operator as local_operator_process
from tests.support.deploy_tools import tool

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "snowflakeprocessors.yaml"
CRD_NAME = f"{PLURAL}.{GROUP}"
NAME = "demo"
SECRET = "demo-mtls"


@dataclass(frozen=True)
class DemoQueue:
    snowflake_port: int
    service_port: int
    certs: Path  # the demo's client certificates
    summary: dict[str, Any]


@pytest.fixture(scope="module")
def demo_queue(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoQueue]:
    """`snowflake-processor demo --keep-running --json`: drained, its emulator kept up."""
    work = tmp_path_factory.mktemp("demo")
    log = (work / "demo.log").open("w")
    demo = subprocess.Popen(
        [str(BIN / "snowflake-processor"), "demo", "--work-dir", str(work), "--json",
         "--keep-running"],
        stdout=subprocess.PIPE, stderr=log, text=True,
    )  # fmt: skip
    try:
        assert demo.stdout is not None
        line = demo.stdout.readline()  # the summary, once the queue is drained
        assert line, (work / "demo.log").read_text()
        summary = json.loads(line)
        ports = re.search(r"mTLS service on 127\.0\.0\.1:(\d+)", (work / "demo.log").read_text())
        assert ports, "the demo did not say where its service listens"
        yield DemoQueue(summary["snowflake_port"], int(ports.group(1)), work / "certs", summary)
    finally:
        demo.send_signal(signal.SIGINT)  # as Ctrl-C: the emulator and the service stop
        demo.wait(timeout=60)
        log.close()


@pytest.fixture(scope="module")
def crd(commands: Commands) -> str:
    commands.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    wait_until(lambda: _established(commands), 60, "the CRD to be Established")
    return CRD_NAME


def _established(commands: Commands) -> bool:
    jsonpath = "jsonpath={.status.conditions[?(@.type=='Established')].status}"
    return commands.kubectl("get", "crd", CRD_NAME, "-o", jsonpath) == "True"


@pytest.fixture(scope="module")
def watched(commands: Commands, crd: str, demo_queue: DemoQueue) -> Iterator[str]:
    """A namespace of the local operator's own (no installed operator watches it), with
    the demo's client certificates in a Secret."""
    namespace = f"e2e-views-{uuid.uuid4().hex[:6]}"
    commands.kubectl("create", "namespace", namespace)
    files = [f"--from-file={name}={demo_queue.certs / 'client' / name}" for name in CERT_FILES]
    commands.kubectl("create", "secret", "generic", SECRET, "-n", namespace, *files)
    yield namespace
    commands.kubectl("delete", "namespace", namespace, "--wait=false")


@pytest.fixture(scope="module")
def local_operator(
    real_cluster: Cluster, watched: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[None]:
    log_path = tmp_path_factory.mktemp("operator") / "operator.log"
    with local_operator_process(
        real_cluster.kubeconfig, watched, log_path, allowed_secrets=[SECRET]
    ):
        yield


def _demo_resource(queue: DemoQueue, namespace: str, **changes: Any) -> dict[str, Any]:
    """The demo's own spec (snowflake_devtools.demo.demo_spec), as a resource: its queue in
    the demo's emulator, its certificates from a Secret."""
    parser = argparse.ArgumentParser()
    add_demo_arguments(parser)
    spec = demo_spec(parser.parse_args([]), queue.snowflake_port, queue.service_port)
    body = spec.model_dump(by_alias=True, exclude_none=True, mode="json")
    body["certificates"] = {"existingSecret": SECRET}
    body.update(changes)
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SnowflakeProcessor",
        "metadata": {"name": NAME, "namespace": namespace},
        "spec": body,
    }


def _sfp(real_cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    """`kubectl sfp ...`: kubectl finds the kubectl-sfp plugin on PATH."""
    env = {**os.environ, "KUBECONFIG": str(real_cluster.kubeconfig)}
    env["PATH"] = f"{BIN}{os.pathsep}{env['PATH']}"
    return subprocess.run(
        [tool("kubectl"), "sfp", *args],
        env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _rows(table: str) -> list[dict[str, str]]:
    """kubectl's table as dicts, cut where the header's columns start (a column may be
    empty: OLDEST while nothing is pending)."""
    header, *rows = table.splitlines()
    starts = [match.start() for match in re.finditer(r"\S+", header)]
    names = header.split()
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    return [
        {name: row[start:end].strip() for name, (start, end) in zip(names, bounds, strict=True)}
        for row in rows
    ]


def _ready(commands: Commands, namespace: str, reason: str) -> bool:
    jsonpath = "jsonpath={.status.conditions[?(@.type=='Ready')].reason}"
    return commands.kubectl("get", "sfp", NAME, "-n", namespace, "-o", jsonpath) == reason


def test_kubectl_shows_the_demo_processor(
    real_cluster: Cluster,
    commands: Commands,
    demo_queue: DemoQueue,
    watched: str,
    local_operator: None,
) -> None:
    commands.apply(_demo_resource(demo_queue, watched))
    wait_until(lambda: _ready(commands, watched, "Polling"), 90, "the demo processor Ready")
    wait_until(
        lambda: commands.kubectl("get", "sfp", NAME, "-n", watched, "-o",
                                 "jsonpath={.status.completed}") != "",
        30, "its counts",
    )  # fmt: skip
    plain = commands.kubectl("get", "sfp", "-n", watched)
    wide = commands.kubectl("get", "sfp", "-n", watched, "-o", "wide")
    status = _sfp(real_cluster, "status", "-n", watched, NAME)
    print(f"\n$ kubectl get sfp -n {watched}\n{plain}")
    print(f"$ kubectl get sfp -n {watched} -o wide\n{wide}")
    print(f"$ kubectl sfp status -n {watched} {NAME}\n{status.stdout}{status.stderr}")
    assert status.returncode == 0, status.stderr
    failed, completed = demo_queue.summary["failed"], demo_queue.summary["completed"]
    (columns,) = _rows(wide)
    assert columns["NAME"] == NAME and columns["READY"] == "True"
    assert columns["SUSPENDED"] == "false" and columns["REASON"] == "Polling"
    assert (columns["BACKLOG"], columns["ACTIVE"], columns["FAILED"]) == ("0", "0", str(failed))
    assert (columns["PENDING"], columns["PROCESSING"]) == ("0", "0")
    assert columns["COMPLETED"] == str(completed)
    assert columns["OLDEST"] == ""  # nothing pending
    assert columns["TABLE"] == "WORK_QUEUE"
    assert f"SnowflakeProcessor {watched}/{NAME}: Ready True (Polling)" in status.stdout
    assert "DEMO.QUEUE.WORK_QUEUE" in status.stdout
    everywhere = _sfp(real_cluster, "status", "-A")
    print(f"$ kubectl sfp status -A\n{everywhere.stdout}{everywhere.stderr}")
    assert everywhere.returncode == 0, everywhere.stderr
    assert watched in everywhere.stdout
    as_json = _sfp(real_cluster, "status", "-A", "-o", "json")
    assert as_json.returncode == 0, as_json.stderr
    processors = json.loads(as_json.stdout)["processors"]
    (listed,) = [p for p in processors if p["namespace"] == watched]
    assert (listed["name"], listed["ready"]) == (NAME, "True")
    # kubectl's --as and --as-group reach the real API server, which judges them: a service
    # account with no rights is refused in one line; the masters group may list.
    nobody = f"system:serviceaccount:{watched}:default"
    denied = _sfp(real_cluster, "status", "-A", "--as", nobody)
    print(f"$ kubectl sfp status -A --as {nobody}\n{denied.stderr}")
    assert denied.returncode == 1 and denied.stdout == ""
    (line,) = denied.stderr.strip().splitlines()
    assert line.startswith("error: the cluster refused to list SnowflakeProcessors in all "
                           "namespaces: 403 Forbidden")  # fmt: skip
    allowed = _sfp(real_cluster, "status", "-A", "--as", "jdoe", "--as-group", "system:masters")
    assert allowed.returncode == 0, allowed.stderr
    # Suspended: not broken. READY stays True, SUSPENDED says why nothing runs.
    commands.kubectl("patch", "sfp", NAME, "-n", watched, "--type", "merge",
                     "-p", '{"spec":{"suspend":true}}')  # fmt: skip
    wait_until(lambda: _ready(commands, watched, "Suspended"), 60, "Ready (Suspended)")
    suspended = commands.kubectl("get", "sfp", "-n", watched)
    print(f"$ kubectl get sfp -n {watched}   # after spec.suspend: true\n{suspended}")
    (columns,) = _rows(suspended)
    assert (columns["READY"], columns["SUSPENDED"]) == ("True", "true")
    figures.record(printer_columns_checked=True)


def _unknown_field_events(commands: Commands, namespace: str) -> list[dict[str, Any]]:
    """The UnknownFields warnings so far. After a CRD update the API server rebuilds its
    watch cache, and a watch may deliver a write made just then only with the object's
    next change: an annotation gives the operator's watch a fresh copy."""
    listed = json.loads(commands.kubectl("get", "events", "-n", namespace, "-o", "json"))
    found = [e for e in listed["items"] if e["reason"] == "UnknownFields"]
    if not found:
        commands.kubectl("annotate", "sfp", NAME, "-n", namespace, "--overwrite",
                         f"e2e.snowflake-processor.dev/nudged={time.monotonic_ns()}")  # fmt: skip
    return found


def _one_field_ahead(crd: dict[str, Any]) -> dict[str, Any]:
    """The CRD of a next version: a new section and a new field in spec.job."""
    ahead = copy.deepcopy(crd)
    (version,) = ahead["spec"]["versions"]
    spec = version["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["properties"]["rateLimit"] = {
        "type": "object",
        "description": "A section of a later version.",
        "properties": {"perSecond": {"type": "integer", "description": "A later field."}},
    }
    spec["properties"]["job"]["properties"]["spotFallback"] = {
        "type": "boolean",
        "description": "A field of a later version.",
    }
    return ahead


def test_an_operator_against_a_crd_one_field_ahead_keeps_processing(
    commands: Commands, demo_queue: DemoQueue, watched: str, local_operator: None
) -> None:
    """An upgrade must not stop processing. The API server keeps a field only when the
    installed CRD declares it (it prunes the rest), so a resource can hold fields its
    operator does not know only when the CRD is newer than the operator: during an
    upgrade, or after the operator alone was rolled back."""
    base = yaml.safe_load(CRD.read_text())
    try:
        commands.apply(_one_field_ahead(base), "--server-side", "--force-conflicts")
        wait_until(lambda: _established(commands), 60, "the newer CRD to be Established")
        resource = _demo_resource(demo_queue, watched, rateLimit={"perSecond": 20})
        resource["spec"]["job"]["spotFallback"] = True
        resource["metadata"]["name"] = NAME
        commands.apply(resource)
        stored = json.loads(commands.kubectl("get", "sfp", NAME, "-n", watched, "-o", "json"))
        assert stored["spec"]["rateLimit"] == {"perSecond": 20}  # the newer CRD keeps it
        commands.kubectl("patch", "sfp", NAME, "-n", watched, "--type", "merge",
                         "-p", '{"spec":{"suspend":false}}')  # fmt: skip
        wait_until(lambda: _ready(commands, watched, "Polling"), 60, "Ready, not InvalidSpec")
        events = wait_until(
            lambda: _unknown_field_events(commands, watched), 90, "the UnknownFields warning"
        )
    except AssertionError:
        print(commands.kubectl("get", "sfp", NAME, "-n", watched, "-o", "yaml"))
        print(commands.kubectl("get", "events", "-n", watched))
        raise
    finally:
        commands.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))
    (event,) = events
    print(f"\nUnknownFields event: {event['message']}")
    assert event["type"] == "Warning"
    assert "spec.rateLimit" in event["message"] and "spec.job.spotFallback" in event["message"]
    figures.record(crd_one_field_ahead_ready=True)
