"""An operator that works only when there is work, so that a fleet of idle resources costs
next to nothing: an idle poll writes nothing to the API server, certificates are listed
again only when a Job needs them (or after a while), and a spec change is acted on at once
rather than at the next interval.

How much CPU and how many writes that saves is measured by `make bench`
(benchmarks/operator_idle.py), never here."""

from __future__ import annotations

import pytest

from tests.support.operator_world import OperatorWorld
from tests.support.polling import wait_for
from tests.support.queues import fill

pytestmark = pytest.mark.integration

WRITES = {"POST", "PUT", "PATCH", "DELETE"}


def test_an_idle_poll_writes_nothing_to_the_api_server(world: OperatorWorld) -> None:
    quiet = world.create("quiet-idle")  # an empty queue, polled every second
    with world.run():
        wait_for(lambda: quiet.status().get("idle") is True, what="the queue seen idle")
        world.wait_for_polls("quiet-idle")  # the write that recorded the change has landed
        world.kube.reset_requests()
        world.wait_for_polls("quiet-idle", 4)
        requests = world.kube.requests()
    writes = [f"{r['method']} {r['path']}" for r in requests if r["method"] in WRITES]
    assert writes == []
    assert quiet.condition("Ready")["status"] == "True"


def test_certificates_are_listed_again_only_when_a_job_needs_them(
    world: OperatorWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With nothing to launch, a file deleted from S3 goes unnoticed until the recheck
    interval; as soon as a Job is wanted the listing runs and blocks the launch."""
    monkeypatch.setenv("SFP_OPERATOR_CERTIFICATES_RECHECK_SECONDS", "3600")
    lazy = world.create("lazy")
    with world.run():
        wait_for(lambda: lazy.condition("CertificatesSynced").get("status") == "True")
        world.delete_certificate("ca-cert.pem")
        world.wait_for_polls("lazy", 3)  # polls, none of which needs a Job
        assert lazy.condition("CertificatesSynced")["status"] == "True"
        fill(world.queue, 100)  # now a Job is wanted: the listing runs first
        blocked = lazy.wait_for_condition("CertificatesSynced", status="False")
        world.wait_for_polls("lazy")  # more polls that want a Job: none may launch
    assert "ca-cert.pem" in blocked["message"]
    assert lazy.jobs() == []


def test_a_spec_change_is_acted_on_at_once(world: OperatorWorld) -> None:
    """A resource polled once a minute: resuming it launches within seconds, not at the
    next interval."""
    fill(world.queue, 100)
    slow = world.create("slow", suspend=True, pollIntervalSeconds=60)
    with world.run():
        wait_for(lambda: slow.condition("Suspended").get("status") == "True")
        slow.patch_spec({"suspend": False})
        wait_for(lambda: len(slow.jobs()) == 1, timeout=15, what="a Job soon after resuming")
