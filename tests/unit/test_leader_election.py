"""Leader election's decisions (election/leader_election.py): who may write the Lease, and when."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from snowflake_operator.election.leader_election import (
    ElectionTiming,
    LeaseRecord,
    next_record,
    released,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
EARLIER = NOW - timedelta(seconds=30)


def held_by(holder: str, transitions: int = 3) -> LeaseRecord:
    return LeaseRecord(holder, 15, EARLIER, EARLIER, transitions)


def test_the_first_candidate_creates_the_record() -> None:
    assert next_record(None, "a", NOW, 0, 15) == LeaseRecord("a", 15, NOW, NOW, 0)


def test_the_holder_renews_keeping_its_acquire_time() -> None:
    renewed = next_record(held_by("a"), "a", NOW, 0, 15)
    assert renewed == LeaseRecord("a", 15, EARLIER, NOW, 3)


@pytest.mark.parametrize("unchanged_for", [0, 5, 14.9])
def test_a_lease_another_holds_is_left_alone_until_it_expires(unchanged_for: float) -> None:
    assert next_record(held_by("a"), "b", NOW, unchanged_for, 15) is None


def test_an_expired_lease_is_taken_and_the_transition_counted() -> None:
    taken = next_record(held_by("a"), "b", NOW, 15, 15)
    assert taken == LeaseRecord("b", 15, NOW, NOW, 4)


def test_expiry_is_the_records_own_duration_not_the_candidates() -> None:
    """A holder configured with a longer lease keeps it that long, whatever the others use."""
    long_lease = LeaseRecord("a", 60, EARLIER, EARLIER, 0)
    assert next_record(long_lease, "b", NOW, 30, 15) is None
    assert next_record(long_lease, "b", NOW, 60, 15) is not None


def test_a_released_lease_is_taken_at_once() -> None:
    free = released(held_by("a"), NOW)
    assert free.holder == "" and not free.held and free.transitions == 3
    assert next_record(free, "b", NOW, 0, 15) == LeaseRecord("b", 15, NOW, NOW, 4)


def test_client_go_defaults_are_safe() -> None:
    assert ElectionTiming().problem() is None
    assert (ElectionTiming().lease_seconds, ElectionTiming().renew_deadline_seconds) == (15, 10)


@pytest.mark.parametrize(
    ("lease", "deadline", "retry", "named"),
    [
        (10, 10, 2, "must exceed the renew deadline"),
        (15, 2, 2, "1.2 x the retry period"),
    ],
)
def test_unsafe_timings_are_refused(
    lease: float, deadline: float, retry: float, named: str
) -> None:
    problem = ElectionTiming(lease, deadline, retry).problem()
    assert problem is not None and named in problem
