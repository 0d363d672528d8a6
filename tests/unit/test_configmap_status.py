"""CronJob mode's status ConfigMap read back: only valid fields are trusted."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from snowflake_operator.cronjob.configmap_status import status_data, trusted_status

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def _at(delta: timedelta) -> str:
    return (NOW + delta).isoformat().replace("+00:00", "Z")


def test_what_a_run_writes_reads_back_whole() -> None:
    status = {
        "totals": {"completed": 40, "failed": 2},
        "consecutiveFailedJobs": 3,
        "launchBackoffUntil": _at(timedelta(minutes=5)),
        "conditions": [{"type": "Ready", "status": "True", "reason": "Polling", "message": ""}],
        "lastPollTime": _at(timedelta(0)),
        "backlog": 250,
    }
    stored = trusted_status(status_data(status), NOW)
    assert stored.invalid == ()
    assert stored.status == status


def test_invalid_fields_are_dropped_and_named() -> None:
    data = {
        "totals": "[1]",
        "consecutiveFailedJobs": "-1",
        "launchBackoffUntil": _at(timedelta(days=2)),  # longer than any backoff
        "conditions": "[" * 10_000 + "]" * 10_000,  # deeper than the JSON parser goes
        "lastPollTime": "yesterday",
        "backlog": "250",
    }
    stored = trusted_status(data, NOW)
    assert set(stored.invalid) == set(data) - {"backlog"}
    assert stored.status == {"backlog": 250}  # compared with the next status, never obeyed


def test_a_backoff_of_at_most_a_day_is_kept() -> None:
    data = {"launchBackoffUntil": _at(timedelta(hours=23)), "consecutiveFailedJobs": "4"}
    assert trusted_status(data, NOW).invalid == ()


# -- anything a user may write into the ConfigMap ------------------------------------------

JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner),
    max_leaves=30,
)
FIELDS = st.sampled_from(
    ["totals", "consecutiveFailedJobs", "launchBackoffUntil", "conditions", "lastPollTime"]
)
VALUES = (
    JSON.map(lambda value: json.dumps(value))
    | st.text(max_size=40)
    | st.integers(min_value=1, max_value=5_000).map(lambda depth: "[" * depth + "]" * depth)
    | st.datetimes(timezones=st.just(UTC)).map(lambda when: when.isoformat())
)


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(FIELDS | st.text(max_size=12), VALUES, max_size=8))
def test_the_reader_survives_any_data_and_trusts_only_valid_fields(data: dict[str, str]) -> None:
    stored = trusted_status(data, NOW)  # never raises
    status = stored.status
    assert set(stored.invalid).isdisjoint(status)
    if "totals" in status:
        assert all(isinstance(status["totals"].get(k, 0), int) for k in ("completed", "failed"))
    if "consecutiveFailedJobs" in status:
        assert isinstance(status["consecutiveFailedJobs"], int)
        assert status["consecutiveFailedJobs"] >= 0
    until = status.get("launchBackoffUntil")
    if until is not None:
        parsed = datetime.fromisoformat(str(until).replace("Z", "+00:00"))
        assert parsed.tzinfo is not None and parsed <= NOW + timedelta(days=1)
    if "conditions" in status:
        assert all(isinstance(c, dict) and "type" in c for c in status["conditions"])
