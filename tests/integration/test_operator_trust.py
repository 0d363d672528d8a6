"""What creating a SnowflakeProcessor lets its author do, and what the operator refuses:
Secrets it does not own, references outside its allow-lists, a second resource on a
table; and probes that must tell when the operator cannot work. Whoever may create a
resource in a namespace must not get the operator's rights through it.

The real operator (kopf, the handlers module) against the Kubernetes emulator, the
Snowflake emulator and moto's S3, as in test_operator.py."""

from __future__ import annotations

import base64
import socket
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from snowflake_operator.constants import GROUP, PLURAL, VERSION
from snowflake_operator.kube.development import EMULATOR_LOGIN_REFUSED, allow_emulator_login
from snowflake_worker.identifiers import TableRef
from tests.support.cert_bundles import make_bundle
from tests.support.operator_world import NAMESPACE, OperatorWorld
from tests.support.polling import wait_for
from tests.support.ports import closed_port, free_port
from tests.support.queues import fill

pytestmark = pytest.mark.integration


def http_status(url: str) -> int | None:
    """The HTTP status of a GET, or None when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=3) as response:  # noqa: S310 (local http)
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def refusals(caplog: pytest.LogCaptureFixture, name: str) -> int:
    """How often the operator refused resource ``name`` so far: a refused resource is not
    polled (no poll metric), but each refusal is logged."""
    key = f"{NAMESPACE}/{name}"
    return sum(
        1
        for record in caplog.records
        if record.getMessage() == "resource refused" and getattr(record, "processor", "") == key
    )


# --- a Secret the operator does not own -------------------------------------------------


def test_a_secret_it_does_not_own_is_never_taken_over(world: OperatorWorld) -> None:
    """Another team's Secret happens to be named <resource>-certificates: the operator
    leaves it as it is (active or suspended), reports SecretConflict and launches nothing."""
    foreign = {}
    for name in ("orders", "paused"):
        secret = world.core.create_namespaced_secret(
            NAMESPACE,
            {
                "metadata": {"name": f"{name}-certificates", "labels": {"team": "payments"}},
                "stringData": {"token": f"payments-{name}"},
            },
        )
        foreign[secret.metadata.name] = secret
    fill(world.queue, 100)
    world.kube.reset_requests()
    orders = world.create("orders")
    paused = world.create("paused", table=world.table.sibling("_PAUSED"), suspend=True)
    with world.run():
        certificates = orders.wait_for_condition("CertificatesSynced", reason="SecretConflict")
        paused.wait_for_condition("Suspended", status="True")
        events = wait_for(lambda: world.events("SecretConflict"), what="a SecretConflict event")
        world.wait_for_polls("orders")  # more polls: still nothing written, nothing launched
        world.wait_for_polls("paused")
    ready = orders.condition("Ready")
    assert (ready["status"], certificates["status"]) == ("False", "False")
    assert "orders-certificates" in certificates["message"]
    assert "orders-certificates" in events[0].message
    assert orders.jobs() == [] and paused.jobs() == []
    for name, before in foreign.items():
        after = world.core.read_namespaced_secret(name, NAMESPACE)
        assert after.metadata.resource_version == before.metadata.resource_version, name
        assert after.metadata.owner_references is None, name
        assert after.metadata.labels == {"team": "payments"}, name
        assert after.data == before.data, name
    writes = world.kube.requests(resource="secrets")
    assert [r for r in writes if r["method"] != "GET"] == []


# --- probes ------------------------------------------------------------------------------


def test_probes_fail_while_the_api_server_cannot_be_reached(
    world: OperatorWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Readiness follows the API connection; liveness fails once a poll could not be
    completed (its status not written) for longer than the configured time."""
    port = free_port()
    monkeypatch.setenv("SFP_OPERATOR_HEALTH_PORT", str(port))
    monkeypatch.setenv("SFP_OPERATOR_LIVENESS_SECONDS", "3")
    monkeypatch.setenv("SFP_OPERATOR_STATUS_HEARTBEAT_SECONDS", "1")
    liveness, readiness = (f"http://127.0.0.1:{port}/{path}" for path in ("healthz", "readyz"))
    watched = world.create("watched")
    with world.run(clean_exit=False):
        wait_for(lambda: watched.condition("Ready").get("status") == "True")
        wait_for(lambda: http_status(liveness) == http_status(readiness) == 200, what="200s")
        world.kube.server.kill()  # the API server is gone
        wait_for(lambda: http_status(readiness) == 503, timeout=15, what="/readyz failing")
        wait_for(lambda: http_status(liveness) == 503, timeout=30, what="/healthz failing")


def test_liveness_holds_without_resources_and_while_polls_keep_up(
    world: OperatorWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No resource: nothing can be late. Polls that report Snowflake errors still
    complete: restarting the operator would not mend Snowflake. (A failed connection
    attempt takes about 3 s here: the limit is above that.)"""
    port = free_port()
    monkeypatch.setenv("SFP_OPERATOR_HEALTH_PORT", str(port))
    monkeypatch.setenv("SFP_OPERATOR_LIVENESS_SECONDS", "8")
    liveness = f"http://127.0.0.1:{port}/healthz"
    with world.run():
        wait_for(lambda: http_status(liveness) == 200, what="alive with no resources")
        unreachable = world.create("unreachable", snowflake={"port": closed_port()})
        wait_for(lambda: unreachable.condition("SnowflakeReachable").get("status") == "False")
        failing = world.polls("unreachable")
        deadline = time.monotonic() + 60
        while world.polls("unreachable") < failing + 3:  # three more failing polls
            assert http_status(liveness) == 200
            assert time.monotonic() < deadline, "no three more polls within a minute"
            time.sleep(0.5)
        assert http_status(liveness) == 200


# --- what a resource may reference --------------------------------------------------------

# Secrets of another team in the namespace: a resource may not make the operator read them
# or mount them into a pod.
PAYMENTS_TLS, PAYMENTS_DB = "payments-tls", "payments-db"


@pytest.mark.parametrize(
    ("field", "spec"),
    [
        ("spec.job.image", {"job": {"image": "attacker.example.com/miner:1"}}),
        ("spec.job.serviceAccountName", {"job": {"serviceAccountName": "deployer"}}),
        (
            "spec.certificates.existingSecret",
            {"certificates": {"s3": None, "existingSecret": PAYMENTS_TLS}},
        ),
        (
            "spec.snowflake.auth.passwordSecret",
            {
                "snowflake": {
                    "user": "PAYMENTS",
                    "auth": {
                        "mode": "password",
                        "passwordSecret": {"name": PAYMENTS_DB, "key": "password"},
                    },
                }
            },
        ),
    ],
    ids=["image", "service-account", "certificates-secret", "password-secret"],
)
def test_references_outside_the_allow_lists_are_refused(
    world: OperatorWorld, field: str, spec: dict[str, object], caplog: pytest.LogCaptureFixture
) -> None:
    """Image, service account and Secrets not allowed by the operator's settings: Ready
    False with reason NotAllowed naming the field; no Job, no Secret read."""
    data = {name: base64.b64encode(blob).decode() for name, blob in make_bundle(world.ca).items()}
    world.core.create_namespaced_secret(
        NAMESPACE, {"metadata": {"name": PAYMENTS_TLS}, "data": data}
    )
    world.core.create_namespaced_secret(
        NAMESPACE, {"metadata": {"name": PAYMENTS_DB}, "stringData": {"password": "s3cret"}}
    )
    fill(world.queue, 100)
    greedy = world.create("greedy", **spec)
    with world.run():
        ready = greedy.wait_for_condition("Ready", reason="NotAllowed")
        wait_for(lambda: world.events("NotAllowed"), what="a NotAllowed event")
        # Looked at again (after the error backoff): still refused, nothing launched or read.
        wait_for(lambda: refusals(caplog, "greedy") >= 2, what="greedy refused again")
    assert ready["status"] == "False"
    assert field in ready["message"], ready["message"]
    assert greedy.jobs() == []
    for secret in (PAYMENTS_TLS, PAYMENTS_DB):
        assert world.kube.count(method="GET", resource="secrets", name=secret) == 0


# --- two resources on one table ----------------------------------------------------------


def test_a_second_resource_on_a_table_is_refused_until_the_first_is_gone(
    world: OperatorWorld,
) -> None:
    """The later resource (by creation time, whatever its name) is refused with reason
    DuplicateTable naming the earlier one; the earlier one works alone. Table names match
    the way Snowflake resolves them (unquoted: case-insensitive)."""
    fill(world.queue, 250)
    zeta = world.create("zeta")
    time.sleep(1.1)  # creationTimestamp counts seconds: zeta is the earlier one
    table = world.table
    alpha = world.create(
        "alpha",
        snowflake={"database": table.database.lower(), "table": table.table.lower()},
    )
    with world.run():
        refused = alpha.wait_for_condition("Ready", reason="DuplicateTable")
        wait_for(lambda: len(zeta.jobs()) == 3, what="the earlier resource's Jobs")
        wait_for(lambda: world.events("DuplicateTable"), what="a DuplicateTable event")
        world.wait_for_polls("zeta")  # the earlier one polls on: 3 Jobs are its share
        assert alpha.jobs() == []
        assert len(zeta.jobs()) == 3
        assert refused["status"] == "False"
        assert f"{NAMESPACE}/zeta" in refused["message"], refused["message"]
        # the earlier one goes: the later one takes the table over
        world.delete("zeta")
        alpha.wait_for_condition("Ready", timeout=60, status="True")
        wait_for(lambda: len(alpha.jobs()) == 3, what="Jobs of the remaining resource")


def test_only_an_admitted_resource_holds_its_table(world: OperatorWorld) -> None:
    """A resource refused for its own spec (an image outside the allow-list) holds no
    table: created first, it cannot keep the legitimate resource of the same table out."""
    fill(world.queue, 250)
    table = world.table
    squatter = world.create("squatter", job={"image": "registry.example.com/not-allowed:1"})
    time.sleep(1.1)  # creationTimestamp counts seconds: the squatter is the earlier one
    owner = world.create("owner", snowflake={"table": table.table.lower()})
    with world.run():
        squatter.wait_for_condition("Ready", reason="NotAllowed")
        owner.wait_for_condition("Ready", status="True")
        wait_for(lambda: len(owner.jobs()) == 3, what="the admitted resource's Jobs")
        assert squatter.jobs() == []
        assert not world.events("DuplicateTable")


def test_two_spellings_of_one_account_are_one_table(world: OperatorWorld) -> None:
    """account local.elsewhere logs in to the account local: the same table."""
    fill(world.queue, 250)
    first = world.create("first")
    time.sleep(1.1)
    second = world.create("second", snowflake={"account": "LOCAL.elsewhere"})
    with world.run():
        refused = second.wait_for_condition("Ready", reason="DuplicateTable")
        assert f"{NAMESPACE}/first" in refused["message"]
        wait_for(lambda: len(first.jobs()) == 3, what="the first resource's Jobs")
        assert second.jobs() == []


def test_without_the_development_flag_emulator_login_connects_nowhere(
    world: OperatorWorld,
) -> None:
    """A production operator (no --development-emulator-login) never sends a resource's
    plain-HTTP emulator login to the host:port it names: nothing to tell an open port
    from a closed one by."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    probe = world.create("probe", snowflake={"host": "127.0.0.1", "port": port})
    allow_emulator_login(False)
    try:
        with world.run():
            reachable = probe.wait_for_condition("SnowflakeReachable", status="False")
            world.wait_for_polls("probe")
    finally:
        allow_emulator_login()
    assert reachable["message"] == EMULATOR_LOGIN_REFUSED
    with pytest.raises(TimeoutError):  # socket.timeout: nobody ever connected
        listener.accept()
    listener.close()
    assert probe.jobs() == []


def test_one_namespace_cannot_take_every_poll_thread(world: OperatorWorld) -> None:
    """Forty resources of another namespace name a Snowflake host that accepts connections
    and never answers: each poll waits out the login timeout in one of the operator's 32
    threads. They get at most a quarter of them; this namespace's resource is polled as
    usual meanwhile."""
    black_hole = socket.socket()  # the kernel completes each handshake; nobody answers
    black_hole.bind(("127.0.0.1", 0))
    black_hole.listen(128)
    port = black_hole.getsockname()[1]
    for index in range(40):
        table = TableRef(world.table.database, world.table.schema, f"HOSTILE_{index}")
        body = world.manifest(
            f"hang-{index}", table=table, snowflake={"host": "127.0.0.1", "port": port}
        )
        body["metadata"]["namespace"] = "hostile"
        world.custom.create_namespaced_custom_object(GROUP, VERSION, "hostile", PLURAL, body)
    fill(world.queue, 250)
    with world.run():
        try:
            # Hostile polls are stuck in their logins before the resource here appears.
            wait_for(lambda: waiting_connections(port) >= 8, what="hostile polls under way")
            orders = world.create("orders")
            orders.wait_for_condition("Ready", timeout=20, status="True")
            wait_for(lambda: len(orders.jobs()) == 3, what="the resource's Jobs")
        finally:
            black_hole.close()  # the stuck logins fail at once: the operator stops cleanly


def waiting_connections(port: int) -> int:
    """Connections to 127.0.0.1:port that the kernel accepted and nobody took (the
    listening socket's queue), from /proc/net/tcp."""
    local = f"0100007F:{port:04X}"
    rows = Path("/proc/net/tcp").read_text().splitlines()[1:]
    return sum(1 for row in rows if row.split()[1] == local and row.split()[3] == "01")
