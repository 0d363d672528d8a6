"""A write-back batch changes each row once, through the real connector and the emulator:
two outcomes recorded for one claimed entry become one (the last), and the statement's
changed count matches the outcomes that landed."""

from __future__ import annotations

from snowflake_worker.queue import QueueClient, completed, dead_lettered, released
from tests.support.queues import fetch_rows, fill


def test_two_outcomes_for_one_row_land_as_the_last_one(queue: QueueClient) -> None:
    fill(queue, 3)
    a, b, c = queue.claim(3, max_attempts=3, processor_id="w")
    outcomes = [released(a), completed(b), dead_lettered(c, "HTTP 422"), completed(a)]
    landed = queue.apply_outcomes(outcomes, "w")
    assert landed == [completed(a), completed(b), dead_lettered(c, "HTTP 422")]
    rows = {r["id"]: r for r in fetch_rows(queue)}
    assert [rows[e.id]["status"] for e in (a, b, c)] == ["completed", "completed", "failed"]
    assert rows[a.id]["retry_count"] == 0  # the release's attempt was not charged too
    assert queue.statements["write_back_check"] == 0  # 3 rows changed for 3 outcomes
