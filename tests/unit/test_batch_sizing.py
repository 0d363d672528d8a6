"""Claims sized by time at the observed pace, not by count: each claim holds the table's
lock, so a fixed count is too small for fast services and too large for slow ones."""

from __future__ import annotations

import pytest

from snowflake_worker.batch_sizing import BatchStats, ClaimPolicy, Pace

POLICY = ClaimPolicy(first=200, seconds=15, maximum=10_000, lease_seconds=900, concurrency=32)


def size(pace: float | None, *, budget: int = 1_000_000, seconds_left: float = 1800) -> int:
    return POLICY.size(pace, budget=budget, seconds_left=seconds_left)


def test_the_first_claim_is_the_configured_batch() -> None:
    assert size(None) == 200
    assert size(None, budget=50) == 50


def test_later_claims_hold_claim_seconds_of_work_at_the_pace() -> None:
    assert size(100.0) == 1500
    assert size(320.0) == 4800
    # Faster workers claim more per statement: their statements per second stay the same.
    assert size(640.0) / 640.0 == size(320.0) / 320.0 == 15


def test_claims_stay_within_the_maximum_the_budget_and_the_lease() -> None:
    assert size(2000.0) == 10_000  # 30,000 entries of work, capped
    assert size(320.0, budget=700) == 700
    short_lease = ClaimPolicy(
        first=200, seconds=15, maximum=10_000, lease_seconds=40, concurrency=4
    )
    # A quarter of the lease's worth at most: 10 s of work, not 15.
    assert short_lease.size(10.0, budget=10_000, seconds_left=1800) == 100


def test_slow_claims_make_claims_larger_so_they_never_run_back_to_back() -> None:
    # Claims that wait 4 s for the table's lock: 12 s kept in hand, so 24 s per claim.
    assert POLICY.size(100.0, budget=10**6, seconds_left=1800, claim_seconds=4.0) == 2400
    assert POLICY.size(100.0, budget=10**6, seconds_left=1800, claim_seconds=1.0) == 1500


def test_near_the_deadline_a_claim_holds_only_what_can_be_done_before_it() -> None:
    assert size(100.0, seconds_left=3) == 300 + 32
    assert size(100.0, seconds_left=-5) == 32
    assert size(100.0, seconds_left=0, budget=10) == 10


def test_a_claim_is_never_empty() -> None:
    tiny = ClaimPolicy(first=1, seconds=1, maximum=10, lease_seconds=60, concurrency=1)
    assert tiny.size(0.01, budget=5, seconds_left=1) == 1


def test_the_next_claim_starts_before_the_inbox_runs_dry() -> None:
    assert POLICY.low_water(None, 0.0) == 32  # no pace yet: one entry per caller
    assert POLICY.low_water(100.0, 0.1) == 200  # at least 2 s of work in hand
    # A claim that waited 1.5 s for the table's lock: three such claims' worth in hand.
    assert POLICY.low_water(100.0, 1.5) == 450
    assert POLICY.low_water(1.0, 0.1) == 32


def test_pace_is_concurrency_over_the_time_one_entry_takes() -> None:
    pace = Pace(concurrency=32)
    assert pace.per_second is None
    pace.record(0.05)
    assert pace.per_second == pytest.approx(640)
    for _ in range(1000):
        pace.record(0.1)
    assert pace.per_second == pytest.approx(320, rel=0.01)


def test_batch_stats_report_the_sizes_chosen() -> None:
    stats = BatchStats()
    for claimed in (200, 4800, 3000):
        stats.claimed(claimed)
    stats.wrote_back(100)
    stats.wrote_back(300)
    assert stats.as_summary(321.04) == {
        "claims": 3,
        "claim_size_first": 200,
        "claim_size_last": 3000,
        "claim_size_max": 4800,
        "write_backs": 2,
        "write_back_size_mean": 200.0,
        "write_back_size_max": 300,
        "entries_per_second": 321.0,
    }
    assert BatchStats().as_summary(None)["entries_per_second"] is None
