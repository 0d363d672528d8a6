"""Launch backoff: after spec.job.launchBackoff.afterFailedJobs Jobs in a row failed, launch
nothing for a while, then one Job at a time until one succeeds. Pure.

Every failed Job is a billed pod start that did nothing: during a service outage each poll
would launch Jobs whose workers fail their preflight and exit. The wait doubles with every
further failure (initialSeconds up to maxSeconds); one succeeded Job ends it. The state is
kept in the resource's status (consecutiveFailedJobs, launchBackoffUntil), so a restarted
operator carries on where the last one stopped.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from snowflake_operator.spec.model import LaunchBackoff

from .job_history import JobReport

Event = tuple[str, str, str]  # (type, reason, message)
BACKING_OFF, BACKOFF_ENDED = "LaunchBackoff", "LaunchBackoffEnded"


@dataclass(frozen=True)
class BackoffState:
    failed_in_a_row: int = 0  # finished Jobs that failed since the last one that succeeded
    until: datetime | None = None  # no launch before this (set once the streak is long enough)

    @classmethod
    def from_status(cls, status: Mapping[str, Any]) -> BackoffState:
        until = status.get("launchBackoffUntil")
        try:
            when = datetime.fromisoformat(str(until).replace("Z", "+00:00")) if until else None
        except ValueError:
            when = None
        return cls(int(status.get("consecutiveFailedJobs") or 0), when)

    def as_status(self) -> dict[str, Any]:
        until = None if self.until is None else _timestamp(self.until)
        return {"consecutiveFailedJobs": self.failed_in_a_row, "launchBackoffUntil": until}

    def active(self, settings: LaunchBackoff) -> bool:
        """Enough Jobs failed in a row that launches are held back."""
        threshold = settings.after_failed_jobs
        return threshold > 0 and self.failed_in_a_row >= threshold


def job_failed(report: JobReport) -> bool:
    """The Job failed (its worker exited non-zero: the service or Snowflake unreachable at
    start, a refused login, a fatal error; or Kubernetes' deadline), or it succeeded but
    every call it made failed for a passing reason: it claimed entries, completed none and
    released some. Entries dead-lettered by the service's own 4xx answers are no outage."""
    if taken_away(report):
        return False
    if not report.succeeded:
        return True
    return report.claimed > 0 and report.completed == 0 and report.released > 0


def taken_away(report: JobReport) -> bool:
    """Its pod was taken away (a node drain's eviction, a forced delete, a lost node)
    before its worker's summary was read: no worker failed, so it neither extends nor ends
    a streak of failures."""
    return report.pod_gone and not report.summary_seen and not report.succeeded


def wait_after(settings: LaunchBackoff, failed_in_a_row: int) -> int:
    """Seconds without launches after this many failures in a row: initialSeconds at the
    threshold, doubled for each failure beyond it, at most maxSeconds."""
    beyond = max(0, failed_in_a_row - settings.after_failed_jobs)
    return min(settings.max_seconds, settings.initial_seconds * (1 << min(beyond, 30)))


def after_finished_jobs(
    state: BackoffState, reports: Iterable[JobReport], settings: LaunchBackoff, now: datetime
) -> tuple[BackoffState, list[Event]]:
    """The state after this poll's newly finished Jobs (oldest first), and the events that
    say the backoff began, went on or ended."""
    before = state
    last_failure: JobReport | None = None
    ended_by: JobReport | None = None
    for report in reports:
        if taken_away(report):
            continue
        if job_failed(report):
            state = BackoffState(state.failed_in_a_row + 1, state.until)
            last_failure = report
        else:
            if state.active(settings):
                ended_by = report
            state, last_failure = BackoffState(), None
    if state.active(settings) and last_failure is not None:
        wait = wait_after(settings, state.failed_in_a_row)
        state = BackoffState(state.failed_in_a_row, now + timedelta(seconds=wait))
        return state, [("Warning", BACKING_OFF, _backing_off(state, last_failure, wait))]
    if ended_by is not None:
        message = (
            f"Job {ended_by.name} succeeded after {before.failed_in_a_row} failed Jobs in a "
            "row: launching as the backlog asks again"
        )
        return state, [("Normal", BACKOFF_ENDED, message)]
    if not state.active(settings) and state.until is not None:
        state = BackoffState(state.failed_in_a_row)  # the threshold was raised or disabled
    return state, []


def launch_limit(
    state: BackoffState, settings: LaunchBackoff, now: datetime, unfinished: int
) -> int | None:
    """At most this many launches now; None: no limit. While backing off none; after the
    wait one probe Job at a time, until one succeeds."""
    if not state.active(settings):
        return None
    if state.until is not None and now < state.until:
        return 0
    return max(0, 1 - unfinished)


def condition_fields(
    state: BackoffState, settings: LaunchBackoff, now: datetime
) -> tuple[bool, str, str]:
    """(status, reason, message) of the LaunchBackoff condition."""
    if not state.active(settings):
        if settings.after_failed_jobs == 0:
            return False, "Disabled", "launchBackoff.afterFailedJobs is 0"
        return (
            False,
            "JobsSucceeding",
            (
                f"{state.failed_in_a_row} Jobs failed in a row since the last success "
                f"(backoff after {settings.after_failed_jobs})"
            ),
        )
    if state.until is not None and now < state.until:
        return (
            True,
            "JobsFailing",
            (
                f"{state.failed_in_a_row} Jobs failed in a row: no Job is launched before "
                f"{_timestamp(state.until)}, then one at a time until one succeeds"
            ),
        )
    return (
        True,
        "JobsFailing",
        (f"{state.failed_in_a_row} Jobs failed in a row: one Job at a time until one succeeds"),
    )


def _backing_off(state: BackoffState, last: JobReport, wait: int) -> str:
    detail = f": {last.error}" if last.error else ""
    assert state.until is not None
    return (
        f"{state.failed_in_a_row} Jobs failed in a row (the last, {last.name}{detail}); no "
        f"Job is launched before {_timestamp(state.until)} ({wait} s), then one at a time "
        "until one succeeds"
    )


def _timestamp(when: datetime) -> str:
    return when.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
