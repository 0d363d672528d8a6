"""The launch backoff's decisions (poll/launch_backoff.py): pure functions of the finished Jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from snowflake_operator.poll.job_history import JobReport
from snowflake_operator.poll.launch_backoff import (
    BACKING_OFF,
    BACKOFF_ENDED,
    BackoffState,
    after_finished_jobs,
    job_failed,
    launch_limit,
    wait_after,
)
from snowflake_operator.spec.model import LaunchBackoff

NOW = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)
DEFAULTS = LaunchBackoff()  # 3 in a row, then 60 s doubling up to 1800 s


def _failed(name: str = "job-f", error: str = "the service is unreachable") -> JobReport:
    return JobReport(name, succeeded=False, completed=0, failed=0, summary_seen=True, error=error)


def _succeeded(name: str = "job-s", claimed: int = 10, completed: int = 10) -> JobReport:
    return JobReport(name, True, completed, 0, True, claimed=claimed)


@pytest.mark.parametrize(
    ("report", "failed"),
    [
        pytest.param(_failed(), True, id="the Job failed: preflight, login, deadline"),
        pytest.param(_succeeded(), False, id="completed entries"),
        pytest.param(_succeeded(claimed=0, completed=0), False, id="nothing to claim"),
        pytest.param(
            JobReport("j", True, 0, 0, True, claimed=50, released=50),
            True,
            id="every call failed for a passing reason",
        ),
        pytest.param(
            JobReport("j", True, 0, 50, True, claimed=50), False, id="the service said 4xx"
        ),
    ],
)
def test_what_counts_as_a_failed_job(report: JobReport, failed: bool) -> None:
    assert job_failed(report) is failed


def test_the_wait_doubles_from_the_threshold_up_to_the_maximum() -> None:
    assert [wait_after(DEFAULTS, n) for n in (3, 4, 5, 8, 9, 50)] == [
        60,
        120,
        240,
        1800,
        1800,
        1800,
    ]


def test_the_threshold_starts_the_backoff_with_one_warning() -> None:
    state, events = after_finished_jobs(BackoffState(), [_failed("a"), _failed("b")], DEFAULTS, NOW)
    assert (state, events) == (BackoffState(2), [])
    assert launch_limit(state, DEFAULTS, NOW, 0) is None
    state, events = after_finished_jobs(state, [_failed("c")], DEFAULTS, NOW)
    assert state == BackoffState(3, NOW + timedelta(seconds=60))
    ((kind, reason, message),) = events
    assert (kind, reason) == ("Warning", BACKING_OFF)
    assert "3 Jobs failed in a row (the last, c: the service is unreachable)" in message
    assert "2026-11-26T10:01:00Z" in message
    assert launch_limit(state, DEFAULTS, NOW + timedelta(seconds=59), 0) == 0
    assert launch_limit(state, DEFAULTS, NOW + timedelta(seconds=60), 0) == 1  # a probe
    assert launch_limit(state, DEFAULTS, NOW + timedelta(seconds=60), 1) == 0  # one at a time


def test_a_success_ends_it_and_the_streak_restarts() -> None:
    backing_off = BackoffState(4, NOW)
    state, events = after_finished_jobs(backing_off, [_succeeded("probe")], DEFAULTS, NOW)
    assert state == BackoffState()
    ((kind, reason, message),) = events
    assert (kind, reason) == ("Normal", BACKOFF_ENDED)
    assert "probe succeeded after 4 failed Jobs" in message
    # Oldest first: a success between failures breaks the streak.
    state, _ = after_finished_jobs(
        BackoffState(), [_failed(), _failed(), _succeeded(), _failed()], DEFAULTS, NOW
    )
    assert state == BackoffState(1)


def test_a_short_streak_ends_quietly() -> None:
    state, events = after_finished_jobs(BackoffState(2), [_succeeded()], DEFAULTS, NOW)
    assert (state, events) == (BackoffState(), [])


def test_disabled_or_a_raised_threshold_lifts_the_wait() -> None:
    backing_off = BackoffState(3, NOW + timedelta(seconds=600))
    off = LaunchBackoff(after_failed_jobs=0)
    assert launch_limit(backing_off, off, NOW, 0) is None
    state, events = after_finished_jobs(backing_off, [], LaunchBackoff(after_failed_jobs=5), NOW)
    assert state == BackoffState(3) and events == []


def test_the_state_round_trips_through_the_status() -> None:
    state = BackoffState(5, NOW + timedelta(seconds=240))
    status = state.as_status()
    assert status == {"consecutiveFailedJobs": 5, "launchBackoffUntil": "2026-11-26T10:04:00Z"}
    assert BackoffState.from_status(status) == state
    assert BackoffState.from_status({}) == BackoffState()
    assert BackoffState().as_status() == {"consecutiveFailedJobs": 0, "launchBackoffUntil": None}
    assert BackoffState.from_status({"launchBackoffUntil": "garbage"}) == BackoffState()


def test_jobs_whose_pods_were_taken_away_neither_fail_nor_succeed() -> None:
    """A node drain evicts every running worker at once (or they are force-deleted, or
    their node is lost): their Jobs fail, but no worker failed. Counted as failures they
    started a backoff on the real cluster (no launch for 120 s after a drain); they leave
    the streak as it was."""
    taken = [
        JobReport(f"evicted-{i}", succeeded=False, completed=0, failed=0, summary_seen=False,
                  pod_gone=True)
        for i in range(4)
    ]  # fmt: skip
    assert not any(job_failed(report) for report in taken)
    assert after_finished_jobs(BackoffState(), taken, DEFAULTS, NOW) == (BackoffState(), [])
    state, events = after_finished_jobs(BackoffState(2), [*taken, _failed("c")], DEFAULTS, NOW)
    assert state == BackoffState(3, NOW + timedelta(seconds=60)) and events
    assert after_finished_jobs(BackoffState(2), taken, DEFAULTS, NOW) == (BackoffState(2), [])
