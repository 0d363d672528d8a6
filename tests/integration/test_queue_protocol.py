"""The queue protocol against the Snowflake emulator, through the real connector."""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from snowflake_operator.queue_schema import SchemaTarget, ensure_queue_table
from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue import (
    QueueClient,
    Status,
    completed,
    dead_lettered,
    released,
)
from tests.support.queues import fetch_rows, fill
from tests.support.snowflake import location


def test_claim_stamps_one_token_and_respects_the_limit(queue: QueueClient) -> None:
    fill(queue, 30)
    first = queue.claim(10, max_attempts=3, processor_id="w1")
    second = queue.claim(10, max_attempts=3, processor_id="w2")
    assert len(first) == 10 and len(second) == 10
    assert len({e.claim_token for e in first}) == 1
    assert {e.id for e in first}.isdisjoint({e.id for e in second})
    assert [e.id for e in first] == [f"e{i:05d}" for i in range(10)]  # oldest first
    rows = {r["id"]: r for r in fetch_rows(queue, "status = 'processing'")}
    assert len(rows) == 20
    assert rows["e00000"]["processor_id"] == "w1"
    # the VARIANT comes back as JSON text
    assert first[3].data.replace(" ", "") == '{"n":3}'


def test_empty_claim_costs_one_statement(queue: QueueClient) -> None:
    assert queue.claim(10, max_attempts=3, processor_id="w") == []
    assert queue.statements == {"claim": 1}


def test_settled_by_counts_each_jobs_settled_rows_once(queue: QueueClient) -> None:
    """What the operator's totals read for finished Jobs: by Job name, in one statement;
    a row still in processing, or settled by a later Job, is not the first Job's."""
    fill(queue, 8)
    first = queue.claim(5, max_attempts=3, processor_id="job-a")
    second = queue.claim(3, max_attempts=3, processor_id="job-b")
    queue.write_back(
        [completed(first[0]), completed(first[1]), dead_lettered(first[2], "HTTP 422: no")]
    )
    queue.write_back([completed(second[0]), released(second[1])])
    again = queue.claim(1, max_attempts=3, processor_id="job-c")  # second[1], released
    queue.write_back([completed(again[0])])
    before = queue.statement_count
    assert queue.settled_by(["job-a", "job-b", "job-c", "job-d"]) == {
        "job-a": (2, 1),
        "job-b": (1, 0),
        "job-c": (1, 0),
    }
    assert queue.statement_count - before == 1
    assert queue.settled_by([]) == {}


def test_write_back_is_one_statement_for_mixed_outcomes(queue: QueueClient) -> None:
    fill(queue, 200)
    batch = queue.claim(200, max_attempts=3, processor_id="w")
    before = queue.statement_count
    outcomes = (
        [completed(e) for e in batch[:150]]
        + [dead_lettered(e, "HTTP 422: no") for e in batch[150:160]]
        + [released(e, error="HTTP 503", delay_seconds=3600) for e in batch[160:180]]
        + [released(e) for e in batch[180:]]
    )
    assert queue.write_back(outcomes) == 200
    assert queue.statement_count - before == 1
    counts = queue.counts(max_attempts=3)
    assert (counts.completed, counts.failed, counts.pending, counts.processing) == (150, 10, 40, 0)
    # released with a delay is pending but not eligible yet; released without one is
    assert counts.eligible == 20
    failed = fetch_rows(queue, "status = 'failed'")
    assert {r["error_message"] for r in failed} == {"HTTP 422: no"}
    delayed = fetch_rows(queue, "next_attempt_at > SYSDATE()")
    assert len(delayed) == 20 and all(r["retry_count"] == 1 for r in delayed)
    assert all(r["claim_token"] is None for r in fetch_rows(queue))


def test_write_back_after_lease_recovery_changes_nothing(queue: QueueClient) -> None:
    fill(queue, 5)
    stale = queue.claim(5, max_attempts=3, processor_id="slow")
    recovery = queue.recover_expired_leases(lease_seconds=0, max_attempts=3)
    assert recovery.requeued == 5 and recovery.dead_lettered == 0
    fresh = queue.claim(5, max_attempts=3, processor_id="fast")
    assert {e.id for e in fresh} == {e.id for e in stale}
    # the slow worker comes back and reports: guarded by its old token, nothing applies
    assert queue.write_back([completed(e) for e in stale]) == 0
    assert queue.write_back([dead_lettered(e, "late") for e in stale]) == 0
    rows = fetch_rows(queue)
    assert all(r["status"] == "processing" and r["processor_id"] == "fast" for r in rows)
    assert all(r["retry_count"] == 1 for r in rows)
    # the current holder can still finish them
    assert queue.write_back([completed(e) for e in fresh]) == 5


def test_apply_outcomes_reports_what_landed_at_no_extra_cost(queue: QueueClient) -> None:
    fill(queue, 6)
    batch = queue.claim(6, max_attempts=3, processor_id="w")
    outcomes = [completed(e) for e in batch[:3]] + [dead_lettered(e, "HTTP 422") for e in batch[3:]]
    before = queue.statements.copy()
    assert queue.apply_outcomes(outcomes, "w") == outcomes
    assert queue.statements - before == {"write_back": 1}  # no read-back when all landed


def test_apply_outcomes_after_leases_were_taken_over(queue: QueueClient) -> None:
    """A mixed batch where only some outcomes still hold their lease: one read-back tells
    which landed, including rows lease recovery dead-lettered (same status, not ours)."""
    queue.enqueue([("last-chance", {"n": 0})])
    queue.claim(1, max_attempts=3, processor_id="earlier")  # two attempts already spent
    queue.recover_expired_leases(lease_seconds=0, max_attempts=3)
    queue.claim(1, max_attempts=3, processor_id="earlier")
    queue.recover_expired_leases(lease_seconds=0, max_attempts=3)
    fill(queue, 4)
    lost = queue.claim(10, max_attempts=3, processor_id="slow")  # all five
    recovery = queue.recover_expired_leases(lease_seconds=0, max_attempts=3)
    assert (recovery.requeued, recovery.dead_lettered) == (4, 1)
    taken = queue.claim(2, max_attempts=3, processor_id="fast")  # two of the requeued
    kept = queue.claim(2, max_attempts=3, processor_id="slow")  # the other two, again
    by_id = {e.id: e for e in lost}
    outcomes = [
        dead_lettered(by_id["last-chance"], "HTTP 422: late"),  # lease dead-lettered it
        *[completed(by_id[e.id]) for e in taken],  # another worker holds them now
        *[released(e, error="HTTP 503", delay_seconds=60) for e in kept],  # still ours
    ]
    before = queue.statements.copy()
    assert queue.apply_outcomes(outcomes, "slow") == outcomes[-2:]
    assert queue.statements - before == {"write_back": 1, "write_back_check": 1}


def test_expired_leases_are_dead_lettered_past_max_attempts(queue: QueueClient) -> None:
    fill(queue, 4)
    for attempt in range(1, 4):
        claimed = queue.claim(10, max_attempts=3, processor_id=f"w{attempt}")
        assert len(claimed) == 4
        recovery = queue.recover_expired_leases(lease_seconds=0, max_attempts=3)
        if attempt < 3:
            assert (recovery.requeued, recovery.dead_lettered) == (4, 0)
        else:
            assert (recovery.requeued, recovery.dead_lettered) == (0, 4)
    rows = fetch_rows(queue)
    assert all(r["status"] == Status.FAILED for r in rows)
    assert all("lease expired" in r["error_message"] for r in rows)
    assert queue.claim(10, max_attempts=3, processor_id="w") == []


def test_recent_leases_are_left_alone(queue: QueueClient) -> None:
    fill(queue, 3)
    queue.claim(3, max_attempts=3, processor_id="w")
    recovery = queue.recover_expired_leases(lease_seconds=3600, max_attempts=3)
    assert (recovery.requeued, recovery.dead_lettered) == (0, 0)
    assert queue.counts(max_attempts=3).processing == 3


def test_enqueue_is_idempotent_by_id_and_bulk(queue: QueueClient) -> None:
    fill(queue, 3000)
    assert queue.statements["enqueue"] == 1
    assert queue.enqueue([("e00001", {"other": True}), ("new", None)]) == 1
    assert queue.counts(max_attempts=3).pending == 3001


def test_requeue_dead_letters_by_id_and_by_error_text(queue: QueueClient) -> None:
    fill(queue, 6)
    batch = queue.claim(6, max_attempts=3, processor_id="w")
    queue.write_back(
        [dead_lettered(e, "HTTP 422: bad address") for e in batch[:3]]
        + [dead_lettered(e, "HTTP 400: no such customer") for e in batch[3:]]
    )
    assert queue.requeue_dead_letters(ids=["e00000", "missing"]) == 1
    assert queue.requeue_dead_letters(error_contains="ADDRESS") == 2
    assert queue.requeue_dead_letters(error_contains="nothing like it") == 0
    counts = queue.counts(max_attempts=3)
    assert (counts.pending, counts.failed) == (3, 3)
    assert all(r["retry_count"] == 0 for r in fetch_rows(queue, "status = 'pending'"))


def test_concurrent_claimers_never_share_an_entry(
    snowflake_connect: Callable[..., Any], queue_table: TableRef, queue: QueueClient
) -> None:
    ids = fill(queue, 600)
    claimed: dict[str, list[str]] = {}
    errors: list[BaseException] = []

    def claimer(name: str) -> None:
        client = QueueClient(snowflake_connect(**location(queue_table)), queue_table)
        mine: list[str] = []
        try:
            while batch := client.claim(25, max_attempts=3, processor_id=name):
                mine.extend(e.id for e in batch)
        except BaseException as exc:  # surfaced below
            errors.append(exc)
        claimed[name] = mine

    threads = [threading.Thread(target=claimer, args=(f"w{i}",)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert not errors
    everything = [entry_id for mine in claimed.values() for entry_id in mine]
    assert len(everything) == len(set(everything)) == 600
    assert set(everything) == set(ids)
    owners = {r["id"]: r["processor_id"] for r in fetch_rows(queue)}
    assert all(owners[entry_id] == name for name, mine in claimed.items() for entry_id in mine)


def test_rows_a_legacy_writer_adds_after_migration_are_still_claimed(
    legacy_queue: QueueClient,
) -> None:
    """A table of the legacy design, migrated in place, then a legacy producer inserts NULL
    attempts."""
    queue = legacy_queue
    queue._connection.cursor().execute(
        f"INSERT INTO {queue.table.sql} (id, data, status, retry_count) "
        "SELECT 'legacy-1', PARSE_JSON('{\"a\": 1}'), 'pending', NULL"
    )
    assert queue.counts(max_attempts=3).eligible == 1
    (entry,) = queue.claim(5, max_attempts=3, processor_id="w")
    assert entry.id == "legacy-1" and entry.retry_count == 0
    assert queue.write_back([released(entry, error="HTTP 503")]) == 1
    assert fetch_rows(queue)[0]["retry_count"] == 1


def test_a_lost_session_is_replaced_and_the_statement_retried(tmp_path: Path) -> None:
    """The emulator restarts (data on disk): the old session is gone, as after expiry."""
    from snowflake_devtools.processes import start_snowflake_emulator
    from snowflake_worker.connection import connect, reconnect
    from snowflake_worker.snowflake_settings import SnowflakeSettings

    server = start_snowflake_emulator(tmp_path / "data", tmp_path / "emulator.log")
    try:
        settings = SnowflakeSettings(
            account="local",
            database="RECONNECT",
            schema_name="QUEUE",
            table="WORK_QUEUE",
            auth="emulator",
            host="127.0.0.1",
            port=server.port,
        )
        connection = connect(settings)
        connection.cursor().execute("CREATE DATABASE IF NOT EXISTS RECONNECT")
        connection.cursor().execute("CREATE SCHEMA IF NOT EXISTS RECONNECT.QUEUE")
        ensure_queue_table(connection, SchemaTarget(table=settings.table_ref))
        queue = QueueClient(connection, settings.table_ref, reconnect=lambda: reconnect(settings))
        fill(queue, 10)
        port = server.port
        server.kill()
        server = start_snowflake_emulator(tmp_path / "data", tmp_path / "emulator.log", port=port)
        batch = queue.claim(10, max_attempts=3, processor_id="w")
        assert len(batch) == 10  # the rows survived the restart, the session did not
        assert queue.reconnects == 1
        assert queue.write_back([completed(e) for e in batch]) == 10
    finally:
        server.stop()
