"""What platform engineers hit on day two, with the real operator against the
Kubernetes emulator: a CRD one field ahead of the operator, a service outage that fails
every Job, a warm minimum of Jobs, a suspended processor that must not look broken.

The emulator validates nothing against the CRD, like an API server whose CRD is newer
than the operator: fields the operator's model does not know reach it as they are."""

from __future__ import annotations

from typing import Any

import pytest

from tests.support.operator_world import OperatorWorld, Processor
from tests.support.polling import wait_for
from tests.support.queues import fill

pytestmark = pytest.mark.integration

FATAL = {"event": "fatal", "error": "the service at https://x is unreachable (ConnectError)"}


def _names(processor: Processor) -> set[str]:
    return {job.metadata.name for job in processor.jobs()}


def _new_jobs(processor: Processor, seen: list[Any]) -> list[Any] | None:
    """Its Jobs other than ``seen`` (those may still be there, about to be deleted)."""
    old = {job.metadata.name for job in seen}
    return [job for job in processor.jobs() if job.metadata.name not in old] or None


def _unknown_field_events(world: OperatorWorld) -> list[Any]:
    return [e for e in world.events("UnknownFields") if e.involved_object.name == "ahead"]


def test_fields_of_a_newer_crd_are_ignored_with_one_warning_per_change(
    world: OperatorWorld,
) -> None:
    """During an upgrade the CRD may be a version ahead of the operator: refusing the fields
    it does not know would make every resource Ready=False InvalidSpec until the operator
    catches up. It ignores them, and warns once per change of the fields, not per poll."""
    fill(world.queue, 250)
    ahead = world.create(
        "ahead",
        rateLimit={"perSecond": 20},  # a section this operator has never seen
        job={"maxActiveJobs": 2, "spotFallback": True},  # a new field beside known ones
    )
    with world.run():
        wait_for(lambda: len(ahead.jobs()) == 2, what="Jobs, within maxActiveJobs 2")
        ready = ahead.wait_for_condition("Ready", status="True")
        (event,) = wait_for(lambda: _unknown_field_events(world) or None, what="the warning")
        world.wait_for_polls("ahead", 3)  # more polls, the same fields: no second warning
        assert len(_unknown_field_events(world)) == 1
        ahead.patch_spec({"job": {"spotFallback": None, "preemptible": True}})
        wait_for(lambda: len(_unknown_field_events(world)) == 2, what="a warning for the change")
    assert ready["reason"] == "Polling"
    assert event.type == "Warning"
    assert "spec.rateLimit" in event.message and "spec.job.spotFallback" in event.message
    assert "ignored" in event.message
    assert len(ahead.jobs()) == 2  # the known maxActiveJobs still applied


def _fail(world: OperatorWorld, job: Any) -> None:
    """What a worker whose preflight finds the service unreachable leaves behind."""
    world.worker_pod(job, FATAL)
    world.finish(job, succeeded=False)


def test_jobs_failing_in_a_row_stop_the_launches(world: OperatorWorld) -> None:
    """During a service outage, launching at every poll would start Jobs that fail their
    preflight, each a billed Fargate start. The defaults (3 failed Jobs in a row, then 60 s
    and more without launches) hold launches back; nothing in the spec asks for it."""
    fill(world.queue, 1000)
    outage = world.create("outage")  # maxActiveJobs 4, 100 entries per Job
    with world.run():
        first = wait_for(lambda: len(outage.jobs()) == 4 and outage.jobs(), what="4 Jobs")
        for job in first:
            _fail(world, job)
        wait_for(lambda: len(world.events("JobFailed")) == 4, what="the failed Jobs counted")
        # A poll may count the first failures before the rest arrive and, below the
        # threshold, refill; once the backoff holds, nothing more may launch.
        wait_for(
            lambda: (outage.condition("LaunchBackoff") or {}).get("status") == "True",
            what="the launch backoff",
        )
        held = first + (_new_jobs(outage, first) or [])
        assert len(held) <= 4 + 2  # at most the refill of two failures under the threshold
        world.wait_for_polls("outage", 3)  # more polls with a backlog of 1,000: none may launch
        assert _new_jobs(outage, held) is None  # before: 4 more every poll
        status = outage.status()
        backoff = outage.condition("LaunchBackoff")
        ready = outage.condition("Ready")
        # One warning per poll that counted failures: the last says 4 (they may be
        # counted over two polls, as their pods' summaries arrive).
        (event,) = wait_for(
            lambda: [e for e in world.events("LaunchBackoff") if "4 Jobs failed" in e.message],
            what="its event",
        )
    assert status["consecutiveFailedJobs"] == 4
    assert status["launchBackoffUntil"]
    assert (backoff["status"], backoff["reason"]) == ("True", "JobsFailing")
    assert (ready["status"], ready["reason"]) == ("False", "LaunchBackoff")
    assert event.type == "Warning"
    assert "4 Jobs failed in a row" in event.message and "unreachable" in event.message
    assert len(world.events("JobFailed")) == 4


def test_after_the_wait_one_job_at_a_time_until_one_succeeds(world: OperatorWorld) -> None:
    fill(world.queue, 1000)
    backoff = {"afterFailedJobs": 2, "initialSeconds": 2, "maxSeconds": 4}
    flaky = world.create("flaky", job={"launchBackoff": backoff})
    with world.run():
        first = wait_for(lambda: len(flaky.jobs()) == 4 and flaky.jobs(), what="4 Jobs")
        for job in first:
            _fail(world, job)
        # 4 failed in a row: 2 s, doubled twice, capped at 4 s; then one probe Job.
        (probe,) = wait_for(lambda: _new_jobs(flaky, first), timeout=30, what="a probe Job")
        world.wait_for_polls("flaky")  # polls while the probe runs
        assert _new_jobs(flaky, first) == [probe]  # only the probe while it runs
        _fail(world, probe)
        (second,) = wait_for(
            lambda: _new_jobs(flaky, [*first, probe]), timeout=30, what="the next probe"
        )
        assert flaky.status()["consecutiveFailedJobs"] == 5
        world.worker_pod(second, {"event": "summary", "claimed": 100, "completed": 100})
        world.finish(second)
        wait_for(
            lambda: len(_new_jobs(flaky, [*first, probe, second]) or []) == 4,
            what="launching as the backlog asks again",
        )
        ended = flaky.wait_for_condition("LaunchBackoff", status="False")
        (event,) = wait_for(lambda: world.events("LaunchBackoffEnded"), what="its event")
    assert flaky.status()["consecutiveFailedJobs"] == 0
    assert flaky.status().get("launchBackoffUntil") is None
    assert ended["reason"] == "JobsSucceeding"
    assert event.type == "Normal" and second.metadata.name in event.message


def test_min_active_jobs_keep_warm_workers_while_the_queue_is_busy(world: OperatorWorld) -> None:
    fill(world.queue, 10)  # one Job's worth by the backlog alone
    warm = world.create("warm", job={"minActiveJobs": 3, "entriesPerJob": 1000})
    with world.run():
        jobs = wait_for(lambda: len(warm.jobs()) == 3 and warm.jobs(), what="3 warm Jobs")
        world.wait_for_polls("warm")  # more polls: the 3 warm Jobs are enough
        assert len(warm.jobs()) == 3
        (launched,) = wait_for(lambda: world.events("JobsLaunched"), what="its event")
    env = {e.name: e.value for e in jobs[0].spec.template.spec.containers[0].env}
    assert env["SFP_IDLE_WAIT_SECONDS"] == "60"  # they wait for new entries, not exit
    assert "launched 3 Jobs for 10 eligible entries" in launched.message


def test_an_idle_queue_gets_no_warm_jobs(world: OperatorWorld) -> None:
    warm = world.create("warm", job={"minActiveJobs": 3})
    with world.run():
        warm.wait_for_condition("Ready", status="True")
        world.wait_for_polls("warm")  # more polls of the empty queue
    assert warm.jobs() == []


def test_a_suspended_processor_is_ready_not_broken(world: OperatorWorld) -> None:
    """Suspending is an operator's choice, not a fault: READY stays True (reason
    Suspended) and no warning is posted, so alerts on READY False do not fire."""
    paused = world.create("paused", suspend=True)
    with world.run():
        ready = paused.wait_for_condition("Ready", reason="Suspended")
        suspended = paused.wait_for_condition("Suspended", status="True")
    assert ready["status"] == "True"
    assert suspended["reason"] == "Suspended"
    assert world.events("Suspended") == []  # no warning either
