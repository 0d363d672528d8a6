"""Queue table contents for tests: filling it, and reading it back in ways the protocol
module has no statement for (it has no 'dump')."""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from typing import Any

from snowflake_worker.queue import QueueClient, completed, dead_lettered, released

ROW_COLUMNS = ("id", "status", "retry_count", "claim_token", "error_message", "processor_id")


def fill(queue: QueueClient, count: int, prefix: str = "e") -> list[str]:
    """Enqueue ``count`` entries ``e00000``, ``e00001``, ... with data ``{"n": i}``."""
    ids = [f"{prefix}{i:05d}" for i in range(count)]
    assert queue.enqueue((entry_id, {"n": i}) for i, entry_id in enumerate(ids)) == count
    return ids


def fetch_rows(queue: QueueClient, where: str = "TRUE") -> list[dict[str, Any]]:
    """The rows matching ``where``, ordered by id, as dicts of :data:`ROW_COLUMNS`."""
    cursor = queue._connection.cursor()
    cursor.execute(
        f"SELECT {', '.join(ROW_COLUMNS)} FROM {queue.table.sql} WHERE {where} ORDER BY id"
    )
    return [dict(zip(ROW_COLUMNS, row, strict=True)) for row in cursor.fetchall()]


def statuses(queue: QueueClient) -> dict[str, str]:
    """Each entry's status, by id."""
    return {row["id"]: row["status"] for row in fetch_rows(queue)}


def entry_data(queue: QueueClient, entry_id: str) -> Any:
    """One entry's data, parsed from the JSON text the VARIANT comes back as."""
    cursor = queue._connection.cursor()
    cursor.execute(f"SELECT data FROM {queue.table.sql} WHERE id = ?", (entry_id,))
    (row,) = cursor.fetchall()
    return json.loads(row[0])


def settle(
    queue: QueueClient,
    *,
    failed: Sequence[tuple[str, str]] = (),
    done: Sequence[str] = (),
    keep: Sequence[str] = (),
) -> None:
    """Claim every pending entry, then dead-letter (one statement each, in order, so their
    failed_at differ), complete, or keep processing; the rest go back to pending."""
    batch = {e.id: e for e in queue.claim(10_000, max_attempts=3, processor_id="test")}
    for entry_id, error in failed:
        assert queue.write_back([dead_lettered(batch.pop(entry_id), error)]) == 1
    queue.write_back([completed(batch.pop(entry_id)) for entry_id in done])
    for entry_id in keep:
        batch.pop(entry_id)
    queue.write_back([released(e) for e in batch.values()])


def steady_processing_count(queue: QueueClient, settle_seconds: float = 1.0) -> int:
    """Entries in processing, read until two reads ``settle_seconds`` apart agree."""
    count = queue.counts(max_attempts=3).processing
    while True:
        time.sleep(settle_seconds)
        again = queue.counts(max_attempts=3).processing
        if again == count:
            return count
        count = again
