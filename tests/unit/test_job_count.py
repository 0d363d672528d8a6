"""How many Jobs: the arithmetic that keeps a fleet's statements within Snowflake's 20 lock
waiters, and the launch count."""

from __future__ import annotations

import pytest

from snowflake_operator.constants import MAX_ACTIVE_JOBS, SNOWFLAKE_LOCK_WAITERS_LIMIT
from snowflake_operator.poll.job_count import (
    fixed_batch_ceiling,
    jobs_within_lock_share,
    lock_share_per_job,
    most_waiting,
)
from snowflake_operator.spec.model import JobSettings


def test_the_most_jobs_allowed_never_make_more_than_twenty_waiters() -> None:
    assert MAX_ACTIVE_JOBS == 19
    assert most_waiting(MAX_ACTIVE_JOBS) == SNOWFLAKE_LOCK_WAITERS_LIMIT
    assert most_waiting(MAX_ACTIVE_JOBS + 1) > SNOWFLAKE_LOCK_WAITERS_LIMIT


def test_the_spec_refuses_more_jobs_than_the_lock_allows() -> None:
    field = JobSettings.model_fields["max_active_jobs"]
    assert any(getattr(rule, "le", None) == MAX_ACTIVE_JOBS for rule in field.metadata)


def test_fixed_batches_cap_any_fleet_at_the_locks_pace() -> None:
    """Claims and write-backs of a fixed 200 entries each, at 0.2-0.5 s per statement:
    the lock, not the fleet's size, sets the pace."""
    assert fixed_batch_ceiling(0.2, 200, 200) == pytest.approx(500)
    assert fixed_batch_ceiling(0.5, 200, 200) == pytest.approx(200)
    assert fixed_batch_ceiling(0.35, 200, 200) == pytest.approx(285.7, abs=0.1)


def test_time_sized_batches_hold_a_share_of_the_lock_per_job_whatever_its_pace() -> None:
    # one claim per 15 s and one write-back per 10 s, each holding the lock 0.35 s
    assert lock_share_per_job(0.35, 15, 10) == pytest.approx(0.35 / 6)
    assert jobs_within_lock_share(0.6, 0.35, 15, 10) == 10  # 58% of the lock
    assert jobs_within_lock_share(0.5, 0.35, 15, 10) == 8
    assert jobs_within_lock_share(0.5, 0.5, 10, 5) == 3  # 15% each: exactly 3, not 2
    assert jobs_within_lock_share(0.01, 1, 1, 1) == 1  # never none
