"""Leader election against the Kubernetes API emulator: real Lease objects through the
kubernetes client, with the API server's optimistic locking (a write names the version it
read; 409 when someone wrote in between)."""

from __future__ import annotations

import threading
import time

import pytest
from kubernetes import client

from snowflake_operator.election.leader_election import (
    Candidate,
    ElectionTiming,
    keep_leading,
    wait_until_leading,
)
from snowflake_operator.election.lease_store import KubeLeaseStore
from tests.support.kube_fixtures import KubeApi
from tests.support.polling import wait_for

pytestmark = pytest.mark.integration

NAMESPACE, LEASE = "snowflake-processor-system", "snowflake-processor-operator"
FAST = ElectionTiming(lease_seconds=2.0, renew_deadline_seconds=1.5, retry_seconds=0.25)


def candidate(api: client.ApiClient, identity: str, timing: ElectionTiming = FAST) -> Candidate:
    return Candidate(identity, KubeLeaseStore(api, NAMESPACE, LEASE, request_timeout=1), timing)


def holder(api: client.ApiClient) -> str:
    lease = client.CoordinationV1Api(api).read_namespaced_lease(LEASE, NAMESPACE)
    return str(lease.spec.holder_identity or "")


def test_one_candidate_holds_the_lease_and_the_other_takes_it_once_released(
    kube_client: client.ApiClient,
) -> None:
    a, b = candidate(kube_client, "a"), candidate(kube_client, "b")
    assert a.try_acquire_or_renew() and a.leading()
    assert not b.try_acquire_or_renew() and not b.leading()
    assert a.try_acquire_or_renew()  # renewing: one conditional write
    assert holder(kube_client) == "a"

    a.step_down()
    assert not a.leading()
    assert holder(kube_client) == ""
    assert b.try_acquire_or_renew() and b.leading()
    lease = client.CoordinationV1Api(kube_client).read_namespaced_lease(LEASE, NAMESPACE)
    assert (lease.spec.holder_identity, lease.spec.lease_transitions) == ("b", 1)
    assert not a.try_acquire_or_renew()  # stepped down for good


def test_a_silent_holder_stops_acting_before_anyone_else_may_take_over(
    kube_client: client.ApiClient,
) -> None:
    """The holder stops renewing (a hung process, a lost node): it fences itself off after
    the renew deadline, and the standby takes the Lease only after the lease duration."""
    a, b = candidate(kube_client, "a"), candidate(kube_client, "b")
    assert a.try_acquire_or_renew()
    began = time.monotonic()
    assert not b.try_acquire_or_renew()  # b now watches the record for changes
    wait_for(lambda: not a.leading(), 5, what="a to stop acting", interval=0.05)
    a_stopped = time.monotonic() - began
    wait_for(b.try_acquire_or_renew, 5, what="b to take the lease", interval=0.05)
    b_took = time.monotonic() - began
    assert a_stopped < FAST.renew_deadline_seconds + 0.3
    assert b_took >= FAST.lease_seconds
    assert a_stopped < b_took
    assert holder(kube_client) == "b"
    assert not a.try_acquire_or_renew() and not a.leading()  # b holds it now


def test_two_candidates_racing_for_a_free_lease_cannot_both_win(
    kube_client: client.ApiClient,
) -> None:
    candidates = [candidate(kube_client, f"c{i}") for i in range(4)]
    start = threading.Barrier(len(candidates))
    won: list[str] = []

    def race(c: Candidate) -> None:
        start.wait()
        if c.try_acquire_or_renew():
            won.append(c.identity)

    threads = [threading.Thread(target=race, args=(c,)) for c in candidates]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(won) == 1, won
    assert holder(kube_client) == won[0]
    assert [c.identity for c in candidates if c.leading()] == won


def test_a_stale_write_is_refused_by_the_api_server(kube_client: client.ApiClient) -> None:
    store = KubeLeaseStore(kube_client, NAMESPACE, LEASE)
    a = candidate(kube_client, "a")
    assert a.try_acquire_or_renew()
    found = store.read()
    assert found is not None
    record, version = found
    assert store.update(record, version) is not None
    assert store.update(record, version) is None  # that version is gone: 409


def test_a_holder_cut_off_from_the_api_server_stops_within_the_renew_deadline(
    kube_api: KubeApi, kube_client: client.ApiClient
) -> None:
    a = candidate(kube_client, "a")
    stop, lost = threading.Event(), threading.Event()
    assert wait_until_leading(a, stop)
    renewer = threading.Thread(target=keep_leading, args=(a, stop, lost.set), daemon=True)
    renewer.start()
    renewals = kube_api.count(method="PATCH", resource="leases")
    wait_for(
        lambda: kube_api.count(method="PATCH", resource="leases") >= renewals + 3,
        10,
        what="three renewals of the Lease",
        interval=0.05,
    )
    assert a.leading() and not lost.is_set()  # renewing while the API server answers
    kube_api.server.stop()
    cut = time.monotonic()
    wait_for(lost.is_set, 10, what="the holder to give up", interval=0.05)
    assert not a.leading()
    # Request timeouts (1 s here) may end a failed renewal after the deadline itself.
    assert time.monotonic() - cut < FAST.renew_deadline_seconds + FAST.retry_seconds + 1.5
    renewer.join(5)
    stop.set()


def test_a_standby_stops_waiting_when_asked(kube_client: client.ApiClient) -> None:
    a, b = candidate(kube_client, "a"), candidate(kube_client, "b")
    assert a.try_acquire_or_renew()
    stop = threading.Event()
    threading.Timer(0.5, stop.set).start()
    assert wait_until_leading(b, stop) is False
