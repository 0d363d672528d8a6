"""The CRD on a real API server: its structural schema and CEL rules compiled and
cost-checked by the server, the examples accepted, invalid resources refused with the
field and the message, `kubectl explain` and the printer columns as served."""

from __future__ import annotations

import copy
import re
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.e2e import figures
from tests.e2e.commands import Commands
from tests.e2e.helpers import wait_until

ROOT = Path(__file__).resolve().parents[2]
CRD = ROOT / "crds" / "snowflakeprocessors.yaml"
EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
CRD_NAME = "snowflakeprocessors.snowflake-processor.dev"


@pytest.fixture(scope="module")
def crd(commands: Commands, kube_version: str) -> str:
    """The CRD applied with kubectl, as docs/install.md does; Established by the server."""
    commands.kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRD))

    def established() -> bool:
        out = commands.kubectl(
            "get", "crd", CRD_NAME, "-o",
            "jsonpath={.status.conditions[?(@.type=='Established')].status}",
        )  # fmt: skip
        return out == "True"

    wait_until(established, 60, "the CRD to be Established")
    figures.record(crd_accepted=True)
    return CRD_NAME


@pytest.fixture
def scratch_namespace(commands: Commands) -> Iterator[str]:
    """A namespace no Fargate profile selects: resources here are only checked by the
    server (the operator polls them, and gets nowhere, which is fine)."""
    name = f"e2e-crd-{uuid.uuid4().hex[:6]}"
    commands.kubectl("create", "namespace", name)
    yield name
    commands.kubectl("delete", "namespace", name, "--wait=false")


def test_every_example_is_created_with_kubectl_apply(
    crd: str, commands: Commands, scratch_namespace: str
) -> None:
    assert EXAMPLES
    created = []
    for path in EXAMPLES:
        resource = yaml.safe_load(path.read_text())
        # The examples name production namespaces; apply each one here instead.
        resource["metadata"]["namespace"] = scratch_namespace
        out = commands.apply(resource)
        assert "snowflakeprocessor.snowflake-processor.dev/" in out and "created" in out, out
        created.append(resource["metadata"]["name"])
    listed = commands.kubectl(
        "get", "sfp", "-n", scratch_namespace, "-o", "jsonpath={.items[*].metadata.name}"
    )
    assert sorted(listed.split()) == sorted(created)


def minimal() -> dict[str, Any]:
    resource: dict[str, Any] = yaml.safe_load(
        (ROOT / "examples" / "processor-minimal.yaml").read_text()
    )
    return resource


def with_changes(name: str, change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    resource = copy.deepcopy(minimal())
    resource["metadata"] = {"name": name}
    change(resource["spec"])
    return resource


def put(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """Set spec.<path> (dotted) to value; None removes it."""

    def change(spec: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        node = spec
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value

    return change


def both(*changes: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], None]:
    def change(spec: dict[str, Any]) -> None:
        for one in changes:
            one(spec)

    return change


# (name, change, the field the server names, a fragment of its message)
INVALID: list[tuple[str, Callable[[dict[str, Any]], None], str, str]] = [
    ("no-snowflake", put("snowflake", None), "spec.snowflake", "Required value"),
    ("no-endpoint", put("endpoint", None), "spec.endpoint", "Required value"),
    ("no-table", put("snowflake.table", None), "spec.snowflake.table", "Required value"),
    ("plain-http", put("endpoint.url", "http://x.example"), "spec.endpoint.url", "^https://"),
    ("bad-database", put("snowflake.database", "my-db"), "spec.snowflake.database", "should match"),
    (
        "bad-auth-mode",
        put("snowflake.auth.mode", "kerberos"),
        "spec.snowflake.auth.mode",
        "Unsupported value",
    ),
    (
        "key-pair-no-secret",
        both(put("snowflake.auth.mode", "key_pair"), put("snowflake.user", "SVC")),
        "spec.snowflake.auth",
        "auth.mode key_pair needs auth.privateKeySecret",
    ),
    (
        "password-no-user",
        both(
            put("snowflake.auth.mode", "password"),
            put("snowflake.auth.passwordSecret", {"name": "s", "key": "k"}),
        ),
        "spec.snowflake",
        "auth.mode key_pair and password need snowflake.user",
    ),
    (
        "emulator-no-host",
        put("snowflake.auth.mode", "emulator"),
        "spec.snowflake",
        "auth.mode emulator needs snowflake.host and snowflake.port",
    ),
    (
        "port-too-big",
        put("snowflake.port", 70000),
        "spec.snowflake.port",
        "should be less than 65536",
    ),
    (
        "two-cert-sources",
        put("certificates.s3", {"bucket": "my-bucket"}),
        "spec.certificates",
        "certificates needs exactly one of s3 or existingSecret",
    ),
    (
        "bad-bucket",
        both(put("certificates.existingSecret", None), put("certificates.s3", {"bucket": "A_B"})),
        "spec.certificates.s3.bucket",
        "should match",
    ),
    (
        "short-lease",
        put("queue.leaseSeconds", 30),
        "spec.queue.leaseSeconds",
        "greater than or equal to 60",
    ),
    (
        "no-attempts",
        put("queue.maxAttempts", 0),
        "spec.queue.maxAttempts",
        "greater than or equal to 1",
    ),
    (
        "too-many-jobs",
        put("job.maxActiveJobs", 20),
        "spec.job.maxActiveJobs",
        "less than or equal to 19",
    ),
    ("odd-cpu", put("job.cpu", "3"), "spec.job.cpu", "Unsupported value"),
    (
        "not-a-fargate-size",
        both(put("job.cpu", "0.25"), put("job.memory", "4Gi")),
        "spec.job",
        "job.cpu 0.25 allows job.memory 256Mi, 768Mi or 1792Mi, billed as 0.25 vCPU",
    ),
    ("memory-in-gb", put("job.memory", "1G"), "spec.job.memory", "should match"),
    (
        "deadline-past-lease",
        both(put("queue.leaseSeconds", 600), put("job.activeDeadlineSeconds", 600)),
        "spec",
        "job.activeDeadlineSeconds must stay below queue.leaseSeconds",
    ),
    (
        "bad-pull-policy",
        put("job.imagePullPolicy", "Sometimes"),
        "spec.job.imagePullPolicy",
        "Unsupported value",
    ),
    ("bad-log-level", put("logLevel", "TRACE"), "spec.logLevel", "Unsupported value"),
    ("unknown-field", put("job.replicas", 3), "spec.job", 'unknown field "spec.job.replicas"'),
]


def refusal_lines(output: str) -> dict[str, str]:
    """kubectl's error for each refused resource, by the resource's name."""
    return {
        match.group(1): match.group(2)
        for match in re.finditer(
            r'SnowflakeProcessor(?:\.[\w.-]+)? "([\w-]+)" is invalid: (.*)', output
        )
    }


def refusal_of(name: str, message: str, output: str) -> str | None:
    """The line refusing `name`; a strict-decoding error (unknown field) names no
    resource, only the field, so that one is found by its message."""
    refused = refusal_lines(output)
    if name in refused:
        return refused[name]
    if not message.startswith("unknown field"):
        return None
    return next((line for line in output.splitlines() if message in line), None)


def test_invalid_resources_are_refused_by_the_server_naming_field_and_reason(
    crd: str, commands: Commands, scratch_namespace: str
) -> None:
    assert len(INVALID) >= 15
    documents = [with_changes(f"bad-{name}", change) for name, change, _, _ in INVALID]
    # One kubectl apply for all of them: kubectl reports each refusal and goes on.
    result = commands.run(
        "kubectl", "apply", "-n", scratch_namespace, "-f", "-",
        stdin=yaml.safe_dump_all(documents), check=False,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0
    shown, wrong = [], []
    for name, _change, field, message in INVALID:
        line = refusal_of(f"bad-{name}", message, output)
        if line is None or field not in line or message not in line:
            wrong.append(f"bad-{name}: wanted {field} / {message!r}, got {line}")
        shown.append(f"bad-{name}: {line}")
    print("\n".join(shown))
    assert not wrong, "\n".join(wrong) + "\n\nkubectl said:\n" + output
    remaining = commands.kubectl("get", "sfp", "-n", scratch_namespace, "-o", "name")
    assert remaining.strip() == "", f"refused resources exist: {remaining}"
    figures.record(invalid_refused=len(shown))


def test_kubectl_explain_answers_from_the_served_schema(crd: str, commands: Commands) -> None:
    out = commands.kubectl("explain", "sfp.spec.job")
    assert "KIND:" in out and "SnowflakeProcessor" in out
    for field in ("entriesPerJob", "maxActiveJobs", "podLabels", "ttlSecondsAfterFinished"):
        assert field in out, out
    deep = commands.kubectl("explain", "sfp.spec.job.maxActiveJobs")
    assert "<integer>" in deep and "Jobs" in deep, deep


def test_kubectl_get_shows_the_printer_columns(
    crd: str, commands: Commands, scratch_namespace: str
) -> None:
    resource = minimal()
    resource["metadata"]["namespace"] = scratch_namespace
    resource["spec"]["suspend"] = True
    commands.apply(resource)
    header = commands.kubectl("get", "sfp", "-n", scratch_namespace).splitlines()[0]
    assert header.split() == ["NAME", "BACKLOG", "ACTIVE", "FAILED", "READY", "AGE"]
