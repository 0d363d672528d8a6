"""The operator's lease recovery racing the statements it meets on the queue table, under
both readings of an UPDATE that waited for the table's lock.

Lease recovery is one UPDATE: rows in ``processing`` whose lease expired go back to
``pending`` with ``retry_count + 1``, or to ``failed`` when that was their last attempt
(they keep the recovery's token, by which it counts them). What the protocol promises
(/work/shared/DESIGN.md, "Queue protocol") whatever order the table's lock gives them:

- a write-back and a recovery of the same expired lease: whichever runs first decides. A
  write-back that ran first lands, and the recovery leaves the settled rows alone; a
  recovery that ran first takes the lease, and the write-back (guarded by the claim token
  and ``status = 'processing'``) changes nothing;
- a claim takes only rows pending when it chooses them, never a dead letter;
- two recoveries of the same leases count each attempt once: the first recovers, the
  second finds nothing.

Under the unsafe reading (``--arrival-snapshot-updates``) a recovery that waited chooses
its rows from the data committed when it arrived, and writes them once granted. Each
column it sets is therefore guarded by the same "still processing, lease still expired"
test as its WHERE (queue_sql.LEASE_RECOVERY), so a row settled while it waited is written
back unchanged. Such a recovery counts the rows it rewrote unchanged among the requeued
ones (Snowflake counts every row an UPDATE chose): only its reported figures can be high,
never the table's ``retry_count``.

The tests run statements in a known order: the first takes the lock (every locking
statement holds it ``HOLD_MS``), each next one arrives while it is held and waits.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from snowflake_devtools.mtls_service import fetch_stats
from snowflake_devtools.processes import ServerProcess
from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue import (
    ClaimedEntry,
    Outcome,
    QueueClient,
    completed,
    dead_lettered,
    released,
)
from snowflake_worker.queue_records import LeaseRecovery
from tests.support.queues import fetch_rows, fill
from tests.support.snowflake import (
    connect_to_emulator,
    emulator,
    location,
    model_stats,
    new_queue,
)
from tests.support.worker_runs import WorkerWorld, make_spec

pytestmark = pytest.mark.integration

READINGS = {"safe": (), "unsafe": ("--arrival-snapshot-updates",)}
TABLE = TableRef("LEASES", "QUEUE", "WORK_QUEUE")
HOLD_MS = 700  # each locking statement holds the table's lock this long
MAX_ATTEMPTS = 3
LEASE_SECONDS = 900
LEASE_ERROR = f"lease expired after {LEASE_SECONDS} s; attempts exhausted"
# The expired batch: e0-e3 on their first attempt, e4 and e5 on their last.
EXPIRED = [f"e{i:05d}" for i in range(6)]
LAST_ATTEMPT = EXPIRED[4:]


# -- set-up and ordering -----------------------------------------------------------------


@contextmanager
def queue_under(reading: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, QueueClient]]:
    with emulator(tmp_path, "--lock-hold-ms", str(HOLD_MS), *READINGS[reading]) as server:
        yield server, new_queue(server.port, TABLE)


def client(port: int) -> QueueClient:
    """A queue client on a session of its own (one per racing statement)."""
    connection = connect_to_emulator(port, **location(TABLE), network_timeout=60)
    return QueueClient(connection, TABLE)


def expired_batch(queue: QueueClient, pending: int = 0) -> dict[str, ClaimedEntry]:
    """EXPIRED claimed by worker-1, their leases an hour old, LAST_ATTEMPT on their last
    attempt; then ``pending`` entries p00000, ... that nobody claimed."""
    fill(queue, len(EXPIRED))
    _set(queue, f"retry_count = {MAX_ATTEMPTS - 1}", "id IN ('e00004', 'e00005')")
    batch = queue.claim(len(EXPIRED), max_attempts=MAX_ATTEMPTS, processor_id="worker-1")
    assert sorted(e.id for e in batch) == EXPIRED
    _set(queue, "claimed_at = DATEADD(second, -3600, SYSDATE())", "status = 'processing'")
    if pending:
        fill(queue, pending, prefix="p")
    return {entry.id: entry for entry in batch}


def _set(queue: QueueClient, assignment: str, where: str) -> None:
    queue._connection.cursor().execute(f"UPDATE {TABLE.sql} SET {assignment} WHERE {where}")


def in_order(port: int, *steps: Callable[[], Any]) -> list[Any]:
    """Run each step on a thread of its own: the first once it holds the table's lock,
    each next one once it waits behind the ones before. Their results, in that order."""
    results: list[Any] = [None] * len(steps)
    errors: list[BaseException] = []

    def run(index: int) -> None:
        try:
            results[index] = steps[index]()
        except BaseException as exc:  # reported below, on the test's thread
            errors.append(exc)

    acquired_before = _lock(port).get("acquired", 0)
    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(steps))]
    for index, thread in enumerate(threads):
        thread.start()
        if index == 0:
            _wait_for(port, lambda lock: lock.get("acquired", 0) > acquired_before, "first")
        else:
            _wait_for(port, lambda lock, n=index: lock.get("waiting", 0) >= n, f"step {index}")
    for thread in threads:
        thread.join(timeout=60)
    assert not errors, errors
    return results


def _lock(port: int) -> dict[str, Any]:
    found: dict[str, Any] = model_stats(port)["locks"]["tables"].get(str(TABLE), {})
    return found


def _wait_for(port: int, condition: Callable[[dict[str, Any]], bool], what: str) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        if condition(_lock(port)):
            return
        time.sleep(0.01)
    raise AssertionError(f"{what}: never took or waited for the lock ({_lock(port)})")


def recover(port: int) -> Callable[[], LeaseRecovery]:
    queue = client(port)
    return lambda: queue.recover_expired_leases(
        lease_seconds=LEASE_SECONDS, max_attempts=MAX_ATTEMPTS
    )


def apply(port: int, outcomes: list[Outcome]) -> Callable[[], list[Outcome]]:
    queue = client(port)
    return lambda: queue.apply_outcomes(outcomes, "worker-1")


def rows(queue: QueueClient) -> dict[str, tuple[str, int]]:
    """Each entry's (status, retry_count), by id."""
    return {r["id"]: (r["status"], r["retry_count"]) for r in fetch_rows(queue)}


def one_row_each(queue: QueueClient, ids: list[str]) -> None:
    """No entry lost or doubled: exactly these ids, one row each."""
    assert sorted(r["id"] for r in fetch_rows(queue)) == sorted(ids)


def arrival_reads(port: int) -> int:
    return int(model_stats(port)["arrival_snapshots"]["statements"])


# The recovered batch, as the protocol leaves it: first attempts back to pending with one
# attempt counted, last attempts dead-lettered with the lease's error.
RECOVERED = {
    **{entry_id: ("pending", 1) for entry_id in EXPIRED[:4]},
    **{entry_id: ("failed", MAX_ATTEMPTS) for entry_id in LAST_ATTEMPT},
}


def the_workers_outcomes(batch: dict[str, ClaimedEntry]) -> list[Outcome]:
    """What worker-1 writes back for its expired batch: three completed, one released for a
    retry (an attempt counted), e4 completed on its last attempt, e5 failed for good."""
    return [
        *(completed(batch[entry_id]) for entry_id in EXPIRED[:3]),
        released(batch[EXPIRED[3]], error="HTTP 503", delay_seconds=0),
        completed(batch[EXPIRED[4]]),
        dead_lettered(batch[EXPIRED[5]], "HTTP 400: refused"),
    ]


WRITTEN_BACK = {
    **{entry_id: ("completed", 0) for entry_id in EXPIRED[:3]},
    EXPIRED[3]: ("pending", 1),
    EXPIRED[4]: ("completed", MAX_ATTEMPTS - 1),
    EXPIRED[5]: ("failed", MAX_ATTEMPTS),
}


# -- (a) a worker's write-back of entries whose lease just expired -------------------------


@pytest.mark.parametrize("reading", sorted(READINGS))
def test_a_write_back_that_runs_first_lands_and_the_waiting_recovery_leaves_it(
    tmp_path: Path, reading: str
) -> None:
    """The worker's write-back holds the lock; the recovery arrives meanwhile, when every
    row of the batch is still processing with an expired lease. The write-back lands
    whole; the recovery then finds nothing to recover: no completed entry goes back to
    pending or to the dead letters, and no attempt is counted for it."""
    with queue_under(reading, tmp_path) as (server, queue):
        batch = expired_batch(queue)
        landed, recovery = in_order(
            server.port, apply(server.port, the_workers_outcomes(batch)), recover(server.port)
        )
        after = rows(queue)
        errors = {r["id"]: r["error_message"] for r in fetch_rows(queue)}
        one_row_each(queue, EXPIRED)
        read_at_arrival = arrival_reads(server.port)
    assert len(landed) == len(EXPIRED)
    assert after == WRITTEN_BACK, after
    assert errors[EXPIRED[5]] == "HTTP 400: refused"
    if reading == "safe":
        assert recovery == LeaseRecovery(requeued=0, dead_lettered=0)
        assert read_at_arrival == 0
    else:
        # it chose the six rows on arrival and rewrote them unchanged: only its figure
        # counts them (see the module's docstring)
        assert recovery.dead_lettered == 0, recovery
        assert read_at_arrival == 1


@pytest.mark.parametrize("reading", sorted(READINGS))
def test_a_recovery_that_runs_first_takes_the_lease_and_the_write_back_changes_nothing(
    tmp_path: Path, reading: str
) -> None:
    """The recovery holds the lock; the worker's write-back arrives meanwhile. The
    recovery requeues four and dead-letters two; the write-back, guarded by worker-1's
    token, changes nothing and reports that none of its outcomes landed."""
    with queue_under(reading, tmp_path) as (server, queue):
        batch = expired_batch(queue)
        recovery, landed = in_order(
            server.port, recover(server.port), apply(server.port, the_workers_outcomes(batch))
        )
        after = rows(queue)
        dead = fetch_rows(queue, "status = 'failed'")
        requeued = fetch_rows(queue, "status = 'pending'")
        one_row_each(queue, EXPIRED)
    assert recovery == LeaseRecovery(requeued=4, dead_lettered=2)
    assert landed == []
    assert after == RECOVERED, after
    assert {r["error_message"] for r in dead} == {LEASE_ERROR}
    assert {(r["claim_token"], r["processor_id"]) for r in requeued} == {(None, None)}


# -- (b) a claim -------------------------------------------------------------------------


@pytest.mark.parametrize("reading", sorted(READINGS))
def test_a_claim_that_runs_first_keeps_its_rows_from_the_waiting_recovery(
    tmp_path: Path, reading: str
) -> None:
    """worker-2's claim of 4 holds the lock, stamping the 4 pending entries; the recovery
    arrives meanwhile. It recovers only the expired batch: the fresh claims are not
    expired, whenever it chose its rows."""
    with queue_under(reading, tmp_path) as (server, queue):
        expired_batch(queue, pending=4)
        claimer = client(server.port)
        claimed, recovery = in_order(
            server.port,
            lambda: claimer.claim(4, max_attempts=MAX_ATTEMPTS, processor_id="worker-2"),
            recover(server.port),
        )
        after = rows(queue)
        one_row_each(queue, [*EXPIRED, *(f"p{i:05d}" for i in range(4))])
    fresh = [f"p{i:05d}" for i in range(4)]
    assert sorted(e.id for e in claimed) == fresh
    assert recovery == LeaseRecovery(requeued=4, dead_lettered=2)
    assert after == {**RECOVERED, **{entry_id: ("processing", 0) for entry_id in fresh}}, after


@pytest.mark.parametrize("reading", sorted(READINGS))
def test_a_claim_that_waits_behind_a_recovery_takes_pending_rows_never_dead_letters(
    tmp_path: Path, reading: str
) -> None:
    """The recovery holds the lock; worker-2's claim of 4 arrives meanwhile. The safe
    reading lets the claim see the four entries just requeued (the oldest); the unsafe one
    has it take the four that were pending when it arrived. Either way it takes four
    pending rows, reads back exactly those, and no dead letter is claimed."""
    with queue_under(reading, tmp_path) as (server, queue):
        expired_batch(queue, pending=4)
        claimer = client(server.port)
        recovery, claimed = in_order(
            server.port,
            recover(server.port),
            lambda: claimer.claim(4, max_attempts=MAX_ATTEMPTS, processor_id="worker-2"),
        )
        after = rows(queue)
        tokens = {r["id"]: r["claim_token"] for r in fetch_rows(queue, "status = 'processing'")}
        one_row_each(queue, [*EXPIRED, *(f"p{i:05d}" for i in range(4))])
    taken = EXPIRED[:4] if reading == "safe" else [f"p{i:05d}" for i in range(4)]
    assert recovery == LeaseRecovery(requeued=4, dead_lettered=2)
    assert sorted(e.id for e in claimed) == taken
    assert set(tokens) == set(taken) and len({*tokens.values()}) == 1
    assert {after[i][0] for i in LAST_ATTEMPT} == {"failed"}
    for entry_id in EXPIRED[:4]:  # one attempt counted, claimed again or not
        assert after[entry_id][1] == 1, after


# -- (c) a second lease recovery -----------------------------------------------------------


@pytest.mark.parametrize("reading", sorted(READINGS))
def test_two_recoveries_at_once_count_each_attempt_once(tmp_path: Path, reading: str) -> None:
    """Two operators' polls (a leadership hand-over, or the CronJob next to a running
    operator) recover at once: the second arrives while the first holds the lock, when
    every lease of the batch is still expired. The first recovers the batch; the second
    counts no attempt again and dead-letters nothing again: requeued rows keep
    retry_count 1 and stay pending, the dead letters keep the first recovery's token, so
    its count of them is right."""
    with queue_under(reading, tmp_path) as (server, queue):
        expired_batch(queue)
        first, second = in_order(server.port, recover(server.port), recover(server.port))
        after = rows(queue)
        dead_tokens = {r["claim_token"] for r in fetch_rows(queue, "status = 'failed'")}
        one_row_each(queue, EXPIRED)
    assert first == LeaseRecovery(requeued=4, dead_lettered=2)
    assert after == RECOVERED, after
    assert len(dead_tokens) == 1 and None not in dead_tokens
    if reading == "safe":
        assert second == LeaseRecovery(requeued=0, dead_lettered=0)
    else:
        assert second.dead_lettered == 0, second  # only its figure counts the batch


# -- real workers, their leases recovered under them ------------------------------------

ENTRIES = 240
WORKERS = 3
RACE_LEASE_SECONDS = 2
RACE_MAX_ATTEMPTS = 4


@pytest.mark.parametrize("reading", sorted(READINGS))
def test_workers_whose_leases_are_recovered_under_them_lose_nothing(
    workers: WorkerWorld, tmp_path: Path, reading: str
) -> None:
    """3 real workers (claims of 30, a service answering in 250 ms, 8 calls at a time) and
    an operator recovering leases older than 2 s every 0.3 s, every locking statement
    holding the lock 150 ms: workers' entries expire in their inboxes and are recovered,
    claimed again and called again. Every entry ends completed or dead-lettered, once;
    every attempt the table counts is one a recovery counted; the service's duplicate calls
    are exactly the extra hand-outs, and each extra hand-out is a recovered lease or (unsafe
    reading) a claim that took rows another claim had."""
    with emulator(tmp_path, "--lock-hold-ms", "150", *READINGS[reading]) as server:
        queue = new_queue(server.port, TABLE)
        fill(queue, ENTRIES)
        service = workers.start_service(latency_ms=250)
        spec = make_spec(
            server.port,
            service.port,
            TABLE,
            claim_batch=30,
            claim_max=30,
            max_attempts=RACE_MAX_ATTEMPTS,
        )
        operator = client(server.port)
        recoveries: list[LeaseRecovery] = []
        stop = threading.Event()

        def poll_recovery() -> None:
            while not stop.is_set():
                recoveries.append(
                    operator.recover_expired_leases(
                        lease_seconds=RACE_LEASE_SECONDS, max_attempts=RACE_MAX_ATTEMPTS
                    )
                )
                stop.wait(0.3)

        poller = threading.Thread(target=poll_recovery)
        poller.start()
        results, summaries = [], []
        try:
            for round_number in range(8):  # more Jobs while entries are left, as the operator
                runs = [workers.start(spec, name=f"r{round_number}-{i}") for i in range(WORKERS)]
                results += [run.wait(timeout=240) for run in runs]
                summaries += [run.summary() for run in runs]
                counts = queue.counts(max_attempts=RACE_MAX_ATTEMPTS)
                if counts.pending == 0 and counts.processing == 0:
                    break
                time.sleep(RACE_LEASE_SECONDS + 0.5)  # let what a worker left expire
        finally:
            stop.set()
            poller.join(timeout=60)
        calls = fetch_stats(service.port, workers.certs)
        table = fetch_rows(queue)
        read_at_arrival = arrival_reads(server.port)
    recovered = sum(r.requeued + r.dead_lettered for r in recoveries)
    record = {
        "reading": reading,
        "entries": ENTRIES,
        "jobs": len(results),
        "recovery_polls": len(recoveries),
        "recovered_reported": recovered,
        "dead_lettered_reported": sum(r.dead_lettered for r in recoveries),
        "attempts_counted": sum(int(r["retry_count"] or 0) for r in table),
        "extra_hand_outs": sum(s["claimed"] for s in summaries) - ENTRIES,
        "duplicate_calls": calls["duplicates"],
        "write_backs_not_applied": sum(s["not_applied"] for s in summaries),
        "completed": sum(r["status"] == "completed" for r in table),
        "failed": sum(r["status"] == "failed" for r in table),
        "read_at_arrival": read_at_arrival,
    }
    print(json.dumps(record))  # the figures (pytest -s shows them)
    assert [code for code, _ in results] == [0] * len(results), [e[-2000:] for _, e in results]
    assert sorted(r["id"] for r in table) == [f"e{i:05d}" for i in range(ENTRIES)], record
    assert record["completed"] + record["failed"] == ENTRIES, record
    assert record["attempts_counted"] > 0, record  # leases really were recovered
    dead_by_lease = [r for r in table if r["status"] == "failed"]
    assert all(r["error_message"] == _race_lease_error() for r in dead_by_lease), record
    assert all(r["retry_count"] == RACE_MAX_ATTEMPTS for r in dead_by_lease), record
    assert record["duplicate_calls"] == record["extra_hand_outs"], record
    # each hand-out but the last of an entry was recovered under its worker, and the
    # last of a dead-lettered one too: their write-backs changed nothing
    assert record["write_backs_not_applied"] == record["extra_hand_outs"] + record["failed"]
    if reading == "safe":
        assert record["attempts_counted"] == record["recovered_reported"], record
        assert record["dead_lettered_reported"] == record["failed"], record
        # every extra hand-out is a requeued lease handed out again
        requeued = record["recovered_reported"] - record["dead_lettered_reported"]
        assert record["extra_hand_outs"] == requeued, record
    else:
        # a recovery's figure may count rows settled while it waited, the table never
        assert record["attempts_counted"] <= record["recovered_reported"], record
        assert record["dead_lettered_reported"] == record["failed"], record
        # bounded: each time an entry is pending (once, then once per recovery that
        # requeued it) each worker's claim may take it, as in test_claim_race.py
        bound = (WORKERS - 1) * ENTRIES + WORKERS * record["attempts_counted"]
        assert record["extra_hand_outs"] <= bound, record


def _race_lease_error() -> str:
    return f"lease expired after {RACE_LEASE_SECONDS} s; attempts exhausted"
