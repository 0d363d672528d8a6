"""CronJob mode's status ConfigMap read back: only valid fields are trusted."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

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
