"""The operator's probes (daemon/health.py) and when a poll writes its status
(poll/status_write.py)."""

from __future__ import annotations

from snowflake_operator.daemon.health import Health, overdue
from snowflake_operator.poll.status_write import status_changed, write_due

STATUS = {"backlog": 0, "idle": True, "conditions": [{"type": "Ready", "status": "True"}]}


def test_alive_without_resources_and_while_polls_are_on_time() -> None:
    assert overdue({}, now=1000, limit=60) == (True, "no resources")
    ok, _ = overdue({"ns/a": 990, "ns/b": 2000}, now=1000, limit=60)
    assert ok


def test_not_alive_once_a_poll_is_due_for_longer_than_the_limit() -> None:
    ok, message = overdue({"ns/late": 900, "ns/b": 990}, now=1000, limit=60)
    assert not ok
    assert message == "the poll of ns/late has been due for 100 s (limit 60 s)"


def test_health_follows_due_times_and_forgets_deleted_resources() -> None:
    now = [1000.0]
    health = Health(liveness_seconds=60, api_check=lambda: None, clock=lambda: now[0])
    health.due("ns/a", 1000)
    now[0] = 1061
    assert health.liveness()[0] is False
    health.due("ns/a", 1100)  # its poll completed
    assert health.liveness()[0] is True
    now[0] = 1200
    health.forget("ns/a")
    assert health.liveness() == (True, "no resources")


def test_readiness_asks_the_api_server_at_most_every_few_seconds() -> None:
    now, answers, calls = [0.0], ["down", None], []

    def check() -> str | None:
        calls.append(now[0])
        return answers[len(calls) - 1]

    health = Health(liveness_seconds=60, api_check=check, api_check_seconds=5, clock=lambda: now[0])
    assert health.readiness() == (False, "down")
    now[0] = 4
    assert health.readiness() == (False, "down")  # not asked again yet
    now[0] = 5
    assert health.readiness() == (True, "API server reachable")
    assert calls == [0, 5]


def test_an_unchanged_status_is_not_written_until_the_heartbeat() -> None:
    assert status_changed(None, STATUS)
    same = {**STATUS, "lastPollTime": "2026-11-26T10:00:00Z"}
    assert not status_changed({**STATUS, "lastPollTime": "2026-11-26T09:00:00Z"}, same)
    assert status_changed(STATUS, {**STATUS, "backlog": 1})
    assert status_changed(STATUS, {**STATUS, "conditions": []})
    assert not write_due(STATUS, same, seconds_since_write=299, heartbeat_seconds=300)
    assert write_due(STATUS, same, seconds_since_write=300, heartbeat_seconds=300)
    assert write_due(
        STATUS, {**STATUS, "idle": False}, seconds_since_write=1, heartbeat_seconds=300
    )
