"""The arithmetic that keeps a fleet's statements within Snowflake's 20 lock waiters."""

from __future__ import annotations

from snowflake_operator.spec import JobSettings
from snowflake_worker.lock_budget import (
    MAX_ACTIVE_JOBS,
    SNOWFLAKE_LOCK_WAITERS_LIMIT,
    most_waiting,
)


def test_the_most_jobs_allowed_never_make_more_than_twenty_waiters() -> None:
    assert MAX_ACTIVE_JOBS == 19
    assert most_waiting(MAX_ACTIVE_JOBS) == SNOWFLAKE_LOCK_WAITERS_LIMIT
    assert most_waiting(MAX_ACTIVE_JOBS + 1) > SNOWFLAKE_LOCK_WAITERS_LIMIT


def test_the_spec_refuses_more_jobs_than_the_lock_allows() -> None:
    field = JobSettings.model_fields["max_active_jobs"]
    assert any(getattr(rule, "le", None) == MAX_ACTIVE_JOBS for rule in field.metadata)
