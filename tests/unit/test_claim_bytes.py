"""Claims capped by the size of the entries' data as well as by their count: a claim of
claimMax entries of large data would otherwise outgrow the pod's memory."""

from __future__ import annotations

import pytest

from snowflake_worker.batch_sizing import ClaimPolicy, mean_data_bytes
from snowflake_worker.settings import WorkerSettings

MIB = 1024 * 1024
POLICY = ClaimPolicy(
    first=200, seconds=15, maximum=10_000, lease_seconds=600, concurrency=32, data_bytes=64 * MIB
)


def _size(entry_bytes: float | None, pace: float | None = 500.0) -> int:
    return POLICY.size(pace, budget=100_000, seconds_left=3600, entry_bytes=entry_bytes)


def test_large_entries_make_a_smaller_claim() -> None:
    assert _size(None) == 7500  # 15 s at 500/s: count alone
    assert _size(100) == 7500  # 750 KB of data: well within 64 MiB
    assert _size(64 * 1024) == 1024  # 64 KiB each: 1,024 of them are 64 MiB
    assert _size(512 * 1024) == 128


def test_an_entry_larger_than_the_cap_is_still_claimed_alone() -> None:
    assert _size(100 * MIB) == 1


def test_the_first_claim_knows_no_sizes_yet() -> None:
    assert _size(None, pace=None) == 200


def test_mean_data_bytes_counts_the_json_text_the_connector_returns() -> None:
    assert mean_data_bytes(['{"n":1}', '{"pad":"' + "x" * 93 + '"}']) == pytest.approx(55)
    assert mean_data_bytes([]) is None


def test_the_cap_is_a_worker_setting() -> None:
    field = WorkerSettings.model_fields["claim_bytes"]
    assert field.default == 64 * MIB
