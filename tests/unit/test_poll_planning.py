"""A poll's plan (poll/planning.py) and its Job count (poll/job_count.py), pure functions:
how many Jobs, what they are called, status and events."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from snowflake_operator.cronjob.reconcile_once import failure_reason
from snowflake_operator.poll.job_count import job_limit, jobs_to_launch, spec_lock_share_per_job
from snowflake_operator.poll.launch_backoff import BackoffState
from snowflake_operator.poll.planning import (
    MAX_JOB_NAME,
    Condition,
    Observation,
    PollPlan,
    job_names,
    poll_slot,
    status_fields,
)
from snowflake_operator.spec.model import ProcessorSpec
from snowflake_worker.queue_records import LeaseRecovery, QueueCounts
from tests.support.polls import plan_poll
from tests.support.specs import MINIMAL_SPEC, merged, processor_spec

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
NOW = datetime(2024, 5, 1, 12, 0, 30, tzinfo=UTC)

# -- jobs_to_launch -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("backlog", "entries_per_job", "unfinished", "max_active", "expected"),
    [
        pytest.param(0, 1000, 0, 10, 0, id="empty backlog"),
        pytest.param(-5, 1000, 0, 10, 0, id="negative backlog"),
        pytest.param(1, 1000, 0, 10, 1, id="one entry needs one job"),
        pytest.param(1000, 1000, 0, 10, 1, id="exactly one job's worth"),
        pytest.param(1001, 1000, 0, 10, 2, id="one over rounds up"),
        pytest.param(2001, 1000, 0, 10, 3, id="ceil(2001/1000)"),
        pytest.param(2001, 1000, 1, 10, 2, id="unfinished take their share"),
        pytest.param(2001, 1000, 3, 10, 0, id="unfinished already cover the backlog"),
        pytest.param(2001, 1000, 5, 10, 0, id="more unfinished than needed"),
        pytest.param(50_000, 1000, 0, 10, 10, id="capped by max active"),
        pytest.param(50_000, 1000, 4, 10, 6, id="cap counts unfinished"),
        pytest.param(50_000, 1000, 10, 10, 0, id="cap reached"),
        pytest.param(50_000, 1000, 12, 10, 0, id="unfinished above cap: never negative"),
        pytest.param(5, 1, 0, 500, 5, id="one entry per job"),
    ],
)
def test_jobs_to_launch(
    backlog: int, entries_per_job: int, unfinished: int, max_active: int, expected: int
) -> None:
    assert jobs_to_launch(backlog, entries_per_job, unfinished, max_active) == expected


# -- job_names ----------------------------------------------------------------------


def test_job_names_are_deterministic_per_slot() -> None:
    assert job_names("orders", 12345, 3) == job_names("orders", 12345, 3)


def test_job_names_differ_between_slots() -> None:
    first = set(job_names("orders", 12345, 3))
    second = set(job_names("orders", 12346, 3))
    assert first.isdisjoint(second)


def test_job_names_are_unique_within_a_poll() -> None:
    names = job_names("orders", 12345, 500)
    assert len(names) == 500
    assert len(set(names)) == 500


def test_job_names_count() -> None:
    assert job_names("orders", 1, 0) == []
    assert len(job_names("orders", 1, 4)) == 4


def test_job_names_for_short_processor_keep_the_name() -> None:
    names = job_names("orders", 0xABC, 2)
    assert names == ["orders-abc-0", "orders-abc-1"]


@pytest.mark.parametrize(
    "processor",
    [
        "orders",
        "a" * 60,
        "x" * 63,
        "long-processor-name-" * 5,
        "MixedCase-Processor",
        "p" * 253,
    ],
)
def test_job_names_are_dns_labels(processor: str) -> None:
    slot = poll_slot(datetime.now(UTC), 1)  # the largest realistic slot number
    for name in job_names(processor, slot, 500):
        assert len(name) <= MAX_JOB_NAME, name
        assert DNS_LABEL.fullmatch(name), name


def test_long_names_sharing_a_prefix_stay_apart() -> None:
    prefix = "p" * 60
    first = job_names(prefix + "-alpha", 99, 3)
    second = job_names(prefix + "-beta", 99, 3)
    assert set(first).isdisjoint(second)


def test_truncated_name_differs_from_its_untruncated_prefix() -> None:
    long_name = "q" * 70
    shortened = job_names(long_name, 99, 1)[0]
    # The longest name that is not truncated for this suffix.
    untruncated = "q" * (MAX_JOB_NAME - len("-63-0") - 7)
    assert job_names(untruncated, 99, 1)[0] == f"{untruncated}-63-0"
    assert shortened != job_names(untruncated, 99, 1)[0]


# -- poll_slot ----------------------------------------------------------------------


def test_poll_slot_is_stable_within_an_interval_and_changes_after() -> None:
    start = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    assert poll_slot(start, 60) == poll_slot(start + timedelta(seconds=59), 60)
    assert poll_slot(start + timedelta(seconds=60), 60) == poll_slot(start, 60) + 1
    assert poll_slot(start + timedelta(seconds=600), 60) == poll_slot(start, 60) + 10


def test_poll_slot_depends_on_the_interval() -> None:
    start = datetime(2024, 5, 1, 12, 0, 0, tzinfo=UTC)
    later = start + timedelta(seconds=30)
    assert poll_slot(start, 60) == poll_slot(later, 60)
    assert poll_slot(start, 10) != poll_slot(later, 10)


# -- plan_poll ----------------------------------------------------------------------


SPEC = merged(MINIMAL_SPEC, job={"entriesPerJob": 1000, "maxActiveJobs": 5}, pollIntervalSeconds=30)


def _spec(**changes: Any) -> ProcessorSpec:
    return processor_spec(SPEC, **changes)


def _counts(eligible: int, **others: int | None) -> QueueCounts:
    values: dict[str, Any] = {
        "pending": eligible + 3,
        "processing": 7,
        "completed": 100,
        "failed": 2,
        "oldest_pending_age_seconds": 42,
    }
    values.update(others)
    return QueueCounts(eligible=eligible, **values)


def _condition(plan: PollPlan, kind: str) -> Condition:
    matches = [c for c in plan.conditions if c.type == kind]
    assert len(matches) == 1, plan.conditions
    return matches[0]


def _reasons(plan: PollPlan) -> list[str]:
    return [reason for _, reason, _ in plan.events]


def test_a_poll_with_a_backlog_launches_the_expected_jobs() -> None:
    seen = Observation(now=NOW, unfinished_jobs=1, counts=_counts(2500))
    plan = plan_poll("orders", _spec(), seen)
    assert plan.launch == job_names("orders", poll_slot(NOW, 30), 2)
    assert _condition(plan, "Ready").status is True
    assert _condition(plan, "SnowflakeReachable").status is True
    assert _condition(plan, "Suspended").status is False
    assert plan.conditions[0].type == "Ready"
    launched = [e for e in plan.events if e[1] == "JobsLaunched"]
    assert len(launched) == 1
    kind, _, message = launched[0]
    assert kind == "Normal"
    assert "launched 2 Jobs" in message
    assert "2500 eligible" in message


def test_a_poll_with_nothing_to_do_emits_no_launch_event() -> None:
    seen = Observation(now=NOW, unfinished_jobs=0, counts=_counts(0))
    plan = plan_poll("orders", _spec(), seen)
    assert plan.launch == []
    assert "JobsLaunched" not in _reasons(plan)
    assert _condition(plan, "Ready").status is True


def test_a_poll_respects_max_active_jobs() -> None:
    seen = Observation(now=NOW, unfinished_jobs=3, counts=_counts(1_000_000))
    plan = plan_poll("orders", _spec(), seen)
    assert len(plan.launch) == 2  # maxActiveJobs 5 - 3 unfinished


def test_launches_stop_where_the_table_lock_would_be_overused() -> None:
    """Every Job sends a claim per claimSeconds and a write-back per flushSeconds, each
    holding the table's lock lockHoldSeconds: no more Jobs than lockShare of it allows."""
    spec = _spec(
        queue={"claimSeconds": 10, "lockHoldSeconds": 0.5, "lockShare": 0.5},
        job={"entriesPerJob": 1000, "maxActiveJobs": 19, "flushSeconds": 5, "flushEvery": 2000},
    )
    # One Job: 0.5 s x (1/10 + 1/5) = 15% of the lock (2,000 outcomes fit one write-back);
    # 50% allows 3 Jobs, not 19.
    assert spec_lock_share_per_job(spec) == pytest.approx(0.15)
    assert job_limit(spec) == 3
    plan = plan_poll("orders", spec, Observation(now=NOW, unfinished_jobs=1, counts=_counts(10**6)))
    assert len(plan.launch) == 2
    assert plan.status["jobLimit"] == 3
    assert plan.status["tableLockShare"] == pytest.approx(0.45)


def test_the_lock_limit_never_stops_a_fleet_entirely() -> None:
    spec = _spec(queue={"lockHoldSeconds": 10, "lockShare": 0.1})
    assert job_limit(spec) == 1


def test_with_the_defaults_the_lock_allows_six_jobs() -> None:
    # A flush of 5,000 outcomes with ids of up to 64 characters is two write-backs:
    # 6 Jobs x 0.35 s x (1/15 + 2/10) = 56% of the lock, within the default 60%; 7 would not be
    assert job_limit(processor_spec(MINIMAL_SPEC)) == 6
    spec = processor_spec(MINIMAL_SPEC, job={"maxActiveJobs": 4})
    assert job_limit(spec) == 4
    seen = Observation(now=NOW, unfinished_jobs=0, counts=_counts(0))
    assert plan_poll("orders", spec, seen).status["tableLockShare"] == 0


def test_suspended_spec_launches_nothing() -> None:
    seen = Observation(now=NOW, unfinished_jobs=0, counts=_counts(10_000))
    plan = plan_poll("orders", _spec(suspend=True), seen)
    assert plan.launch == []
    suspended = _condition(plan, "Suspended")
    assert suspended.status is True
    assert suspended.reason == "Suspended"
    # Not broken: Ready, with the reason saying why nothing runs.
    ready = _condition(plan, "Ready")
    assert (ready.status, ready.reason) == (True, "Suspended")
    assert "JobsLaunched" not in _reasons(plan)
    assert plan.status["activeJobs"] == 0
    assert plan.status["backlog"] == 10_000  # still measured and reported


def test_unreachable_snowflake_launches_nothing_and_warns() -> None:
    seen = Observation(
        now=NOW,
        unfinished_jobs=2,
        counts=None,
        snowflake_error="250001: Could not connect to Snowflake backend",
    )
    plan = plan_poll("orders", _spec(), seen)
    assert plan.launch == []
    ready = _condition(plan, "Ready")
    assert ready.status is False
    assert ready.reason == "Blocked"
    reachable = _condition(plan, "SnowflakeReachable")
    assert reachable.status is False
    assert reachable.reason == "QueryFailed"
    assert reachable.message == "250001: Could not connect to Snowflake backend"
    assert (
        "Warning",
        "SnowflakeUnreachable",
        "250001: Could not connect to Snowflake backend",
    ) in plan.events
    assert plan.status["activeJobs"] == 2
    assert "backlog" not in plan.status  # not measured this poll: not reported


def test_unreachable_without_message_still_says_something() -> None:
    plan = plan_poll("orders", _spec(), Observation(now=NOW, unfinished_jobs=0))
    assert _condition(plan, "SnowflakeReachable").message
    assert any(kind == "Warning" and msg for kind, _, msg in plan.events)


def test_a_failed_poll_is_explained_by_the_condition_that_failed_it() -> None:
    """Suspended False (Active) comes before CertificatesSynced in the list, and is healthy:
    the one line a CronJob run prints must name the certificates, not it."""
    seen = Observation(
        now=NOW,
        unfinished_jobs=0,
        counts=_counts(10_000),
        certificates_ready=False,
        certificates_checked=True,
        certificates_message="client.pem has expired",
    )
    conditions = plan_poll("orders", _spec(), seen).conditions
    assert failure_reason(True, conditions) == (
        "CertificatesSynced is False (Invalid): client.pem has expired"
    )
    unreachable = Observation(now=NOW, unfinished_jobs=0, snowflake_error="login refused")
    conditions = plan_poll("orders", _spec(), unreachable).conditions
    assert failure_reason(True, conditions) == (
        "SnowflakeReachable is False (QueryFailed): login refused"
    )
    assert failure_reason(False, conditions) is None


def test_certificates_not_ready_launches_nothing() -> None:
    seen = Observation(
        now=NOW,
        unfinished_jobs=0,
        counts=_counts(10_000),
        certificates_ready=False,
        certificates_message="client.pem has expired",
    )
    plan = plan_poll("orders", _spec(), seen)
    assert plan.launch == []
    assert _condition(plan, "Ready").status is False
    certs = _condition(plan, "CertificatesSynced")
    assert certs.status is False
    assert certs.reason == "Invalid"
    assert certs.message == "client.pem has expired"
    assert _condition(plan, "SnowflakeReachable").status is True


def test_lease_recovery_events() -> None:
    seen = Observation(
        now=NOW,
        unfinished_jobs=0,
        counts=_counts(0),
        recovery=LeaseRecovery(requeued=4, dead_lettered=2),
    )
    plan = plan_poll("orders", _spec(queue={"maxAttempts": 3}), seen)
    by_reason = {reason: (kind, message) for kind, reason, message in plan.events}
    assert by_reason["LeasesRecovered"][0] == "Normal"
    assert by_reason["LeasesRecovered"][1].startswith("4 ")
    assert by_reason["DeadLettered"][0] == "Warning"
    assert by_reason["DeadLettered"][1].startswith("2 ")
    assert "3 attempts" in by_reason["DeadLettered"][1]


def test_empty_lease_recovery_emits_nothing() -> None:
    seen = Observation(
        now=NOW,
        unfinished_jobs=0,
        counts=_counts(0),
        recovery=LeaseRecovery(requeued=0, dead_lettered=0),
    )
    plan = plan_poll("orders", _spec(), seen)
    assert "LeasesRecovered" not in _reasons(plan)
    assert "DeadLettered" not in _reasons(plan)


def test_only_requeued_emits_only_leases_recovered() -> None:
    seen = Observation(
        now=NOW,
        unfinished_jobs=0,
        counts=_counts(0),
        recovery=LeaseRecovery(requeued=1, dead_lettered=0),
    )
    reasons = _reasons(plan_poll("orders", _spec(), seen))
    assert "LeasesRecovered" in reasons
    assert "DeadLettered" not in reasons


def test_status_fields_in_a_plan() -> None:
    counts = _counts(2500, pending=2600, processing=11, completed=5, failed=1)
    seen = Observation(now=NOW, unfinished_jobs=1, counts=counts)
    plan = plan_poll("orders", _spec(), seen)
    assert plan.status["backlog"] == 2500
    assert plan.status["pending"] == 2600
    assert plan.status["processing"] == 11
    assert plan.status["completed"] == 5
    assert plan.status["failed"] == 1
    assert plan.status["oldestPendingAgeSeconds"] == 42
    assert plan.status["activeJobs"] == 1 + len(plan.launch) == 3


def test_status_fields_time_is_utc_z() -> None:
    plus_two = datetime(2024, 5, 1, 12, 0, 30, tzinfo=timezone(timedelta(hours=2)))
    status = status_fields(Observation(now=plus_two, unfinished_jobs=0), 0)
    assert status["lastPollTime"].endswith("Z")
    assert status["lastPollTime"].startswith("2024-05-01T10:00:30")


def test_condition_as_dict() -> None:
    as_dict = Condition("Ready", False, "Blocked", "why").as_dict(NOW)
    assert as_dict == {
        "type": "Ready",
        "status": "False",
        "reason": "Blocked",
        "message": "why",
        "lastTransitionTime": "2024-05-01T12:00:30Z",
    }


def test_idle_decisions_with_reliable_and_unreliable_metadata() -> None:
    from snowflake_operator.poll.idle_gate import full_poll_due, is_idle, signature_changed
    from snowflake_worker.queue_records import QueueCounts, TableSignature

    assert is_idle(QueueCounts(0, 0, 0, 5, 1, None), 0)
    # Pending but not claimable (waiting out a retry delay, or every attempt used): idle.
    assert is_idle(QueueCounts(0, 3, 0, 5, 1, 60, stranded=1, next_attempt_seconds=300), 0)
    assert not is_idle(QueueCounts(1, 3, 0, 5, 1, 60), 0)  # claimable now
    assert not is_idle(QueueCounts(0, 0, 2, 5, 1, None), 0)  # leases to watch
    assert not is_idle(QueueCounts(0, 0, 0, 5, 1, None), 1)
    # Snowflake: bytes move when an UPDATE rewrites micro-partitions
    before, rewritten = TableSignature(10, 4096, 10), TableSignature(10, 5120, 10)
    assert signature_changed(before, rewritten)
    assert not signature_changed(before, TableSignature(10, 4096, 10))
    # the emulator reports 0 rows and 0 bytes: only COUNT(*) is compared
    emulated, same = TableSignature(0, 0, 10), TableSignature(0, 0, 10)
    assert not emulated.metadata_reliable
    assert not signature_changed(emulated, same)
    assert signature_changed(emulated, TableSignature(0, 0, 11))
    assert not full_poll_due(emulated, same, 1e9, 0)  # 0 disables the safety net
    assert full_poll_due(emulated, same, 60, 60)
    assert not full_poll_due(emulated, same, 59, 60)
    # A row waiting out a retry delay: the full poll comes when it is claimable.
    assert not full_poll_due(emulated, same, 119, 1800, next_attempt_seconds=120)
    assert full_poll_due(emulated, same, 120, 1800, next_attempt_seconds=120)
    assert full_poll_due(emulated, same, 120, 0, next_attempt_seconds=120)  # net off: still


def test_stranded_entries_raise_their_condition_and_keep_ready() -> None:
    def seen(counts: QueueCounts | None) -> Observation:
        return Observation(now=NOW, unfinished_jobs=0, counts=counts, snowflake_error="down")

    stranded = plan_poll("orders", _spec(), seen(_counts(0, stranded=4)))
    condition = _condition(stranded, "StrandedEntries")
    assert condition.status and condition.reason == "AttemptsUsed"
    assert condition.message.startswith("4 pending entries have used all 5 attempts")
    assert _condition(stranded, "Ready").status  # the operator works; the rows need a hand
    none = _condition(plan_poll("orders", _spec(), seen(_counts(0))), "StrandedEntries")
    assert not none.status and none.reason == "NoneStranded"
    unreachable = plan_poll("orders", _spec(), seen(None))
    assert not [c for c in unreachable.conditions if c.type == "StrandedEntries"]  # kept


# -- minActiveJobs and the launch backoff -----------------------------------------------


@pytest.mark.parametrize(
    ("eligible", "processing", "unfinished", "expected"),
    [
        pytest.param(10, 0, 0, 3, id="busy: the backlog wants 1, the minimum 3"),
        pytest.param(10, 0, 2, 1, id="unfinished count towards the minimum"),
        pytest.param(0, 5, 0, 3, id="entries held by workers: still busy"),
        pytest.param(0, 0, 0, 0, id="idle: no warm Jobs"),
        pytest.param(9000, 0, 0, 5, id="the backlog wants more: maxActiveJobs"),
    ],
)
def test_min_active_jobs_while_the_queue_is_busy(
    eligible: int, processing: int, unfinished: int, expected: int
) -> None:
    spec = _spec(job={"minActiveJobs": 3})
    seen = Observation(
        now=NOW, unfinished_jobs=unfinished, counts=_counts(eligible, processing=processing)
    )
    assert len(plan_poll("orders", spec, seen).launch) == expected


def test_min_active_jobs_never_pass_max_active_jobs() -> None:
    spec = _spec(job={"minActiveJobs": 5, "maxActiveJobs": 5})
    seen = Observation(now=NOW, unfinished_jobs=4, counts=_counts(1))
    assert len(plan_poll("orders", spec, seen).launch) == 1


def test_finished_jobs_not_yet_counted_keep_their_place() -> None:
    seen = Observation(now=NOW, unfinished_jobs=0, uncounted_jobs=2, counts=_counts(5000))
    plan = plan_poll("orders", _spec(), seen)
    assert len(plan.launch) == 3  # 5 wanted, 2 still to be counted
    assert plan.status["activeJobs"] == 3  # they are not unfinished


def test_backing_off_launches_nothing_and_is_not_ready() -> None:
    until = NOW + timedelta(seconds=60)
    seen = Observation(
        now=NOW, unfinished_jobs=0, counts=_counts(5000), backoff=BackoffState(3, until)
    )
    plan = plan_poll("orders", _spec(), seen)
    assert plan.launch == []
    ready, backoff = _condition(plan, "Ready"), _condition(plan, "LaunchBackoff")
    assert (ready.status, ready.reason) == (False, "LaunchBackoff")
    assert (backoff.status, backoff.reason) == (True, "JobsFailing")
    assert "2024-05-01T12:01:30Z" in backoff.message
    assert plan.status["consecutiveFailedJobs"] == 3
    assert plan.status["launchBackoffUntil"] == "2024-05-01T12:01:30Z"


def test_after_the_wait_one_probe_job_at_a_time() -> None:
    waited = BackoffState(3, NOW - timedelta(seconds=1))
    first = Observation(now=NOW, unfinished_jobs=0, counts=_counts(5000), backoff=waited)
    plan = plan_poll("orders", _spec(), first)
    assert len(plan.launch) == 1
    assert "one at a time" in next(m for _, r, m in plan.events if r == "JobsLaunched")
    running = Observation(now=NOW, unfinished_jobs=1, counts=_counts(5000), backoff=waited)
    assert plan_poll("orders", _spec(), running).launch == []


def test_a_streak_below_the_threshold_limits_nothing() -> None:
    seen = Observation(now=NOW, unfinished_jobs=0, counts=_counts(5000), backoff=BackoffState(2))
    plan = plan_poll("orders", _spec(), seen)
    assert len(plan.launch) == 5
    backoff = _condition(plan, "LaunchBackoff")
    assert (backoff.status, backoff.reason) == (False, "JobsSucceeding")
    assert _condition(plan, "Ready").status is True
