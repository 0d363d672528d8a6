"""Workers racing for the same rows, under both readings of a claim that waited for the
queue table's lock.

Snowflake's documentation does not settle whether an UPDATE that waited for the lock
chooses its rows from the data committed when it arrived (the unsafe reading) or when it
got the lock (the safe one, what the emulator's model does by default). Under the unsafe
reading two claims can stamp the same rows; the protocol still loses nothing: the later
token wins, the earlier worker's write-back is guarded by its token and changes nothing
(its summary counts it as not_applied), and the service sees the entry twice. These tests
run real workers against an emulator of their own, with ``--arrival-snapshot-updates`` for
the unsafe reading, and hold the protocol to those bounds.
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import snowflake.connector

from snowflake_devtools.mtls_service import fetch_stats
from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue_sql import statements_for
from tests.support.queues import fill
from tests.support.snowflake import (
    connect_to_emulator,
    emulator,
    location,
    model_stats,
    new_queue,
)
from tests.support.worker_runs import WorkerWorld, make_spec

pytestmark = pytest.mark.integration

ENTRIES = 400
WORKERS = 4
ROUNDS = 3  # Jobs launched again while entries are left (see the race test)
READINGS = {"safe": (), "unsafe": ("--arrival-snapshot-updates",)}
TABLE = TableRef("RACE", "QUEUE", "WORK_QUEUE")
RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "snowflake-checks.md"


def runbook_claim_race() -> str:
    """The day-one runbook's claim-race script, without its last line (the call with the
    account's PARAMS)."""
    blocks = re.findall(r"```python\n(.*?)```", RUNBOOK.read_text(), flags=re.DOTALL)
    script = next(block for block in blocks if "def claim_race" in block)
    return script.rsplit("print(", 1)[0]


@pytest.mark.parametrize("reading", sorted(READINGS))
def test_the_runbooks_claim_race_tells_the_readings_apart(
    tmp_path: Path, reading: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """docs/snowflake-checks.md's two claims at once, run as written on a 10-row scratch
    table: what it prints is what the runbook says each reading shows."""
    table = TableRef("CHECKS", "SFP_CHECKS", "SFP_CHECK")
    monkeypatch.setattr(snowflake.connector, "paramstyle", snowflake.connector.paramstyle)
    namespace: dict[str, Any] = {}
    exec(runbook_claim_race(), namespace)  # noqa: S102 - the runbook's own script
    with emulator(tmp_path, *READINGS[reading]) as server:
        fill(new_queue(server.port, table), 10)
        stamped, rows = namespace["claim_race"](
            lambda: connect_to_emulator(server.port, **location(table)), arrive_seconds=1
        )
    tokens = dict(rows)
    assert stamped == {"race-1": 3, "race-2": 3}
    if reading == "safe":
        assert tokens == {"race-1": 3, "race-2": 3, None: 4}, tokens
    else:
        assert len(tokens) == 2 and tokens[None] == 7, tokens


def _claim_twice_at_once(port: int, claim: Callable[[Any, str], int]) -> tuple[int, int]:
    """Hold the lock in an open transaction, start two claims of the same 3 rows (both wait,
    both arrive before anything changed), let go; the rows each claim stamped."""
    holder = connect_to_emulator(port, **location(TABLE), autocommit=False)
    holder.cursor().execute(f"UPDATE {TABLE.sql} SET processor_id = processor_id WHERE 1 = 0")
    stamped: dict[str, int] = {}

    def run(token: str) -> None:
        connection = connect_to_emulator(port, **location(TABLE))
        stamped[token] = claim(connection, token)

    threads = [threading.Thread(target=run, args=(token,)) for token in ("first", "second")]
    for thread in threads:
        thread.start()
        _wait_until_waiting(port, thread_count=threads.index(thread) + 1)
    holder.cursor().execute("COMMIT")
    for thread in threads:
        thread.join(timeout=30)
    return stamped["first"], stamped["second"]


def _wait_until_waiting(port: int, thread_count: int) -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        tables = model_stats(port)["locks"]["tables"]
        if tables.get(str(TABLE), {}).get("waiting", 0) >= thread_count:
            return
        time.sleep(0.02)
    raise AssertionError(f"{thread_count} claims never waited for the lock")


@pytest.mark.parametrize("reading", sorted(READINGS))
def test_two_waiting_claims_take_the_same_rows_only_under_the_unsafe_reading(
    tmp_path: Path, reading: str
) -> None:
    """The project's claim statement, twice, both waiting behind a held lock: the safe
    reading gives the second claim the next rows; the unsafe one gives it the same rows,
    and its token replaces the first's."""
    with emulator(tmp_path, *READINGS[reading]) as server:
        queue = new_queue(server.port, TABLE)
        fill(queue, 6)
        claim_sql = statements_for(TABLE)["claim"]

        def claim(connection: Any, token: str) -> int:
            binds = claim_sql.binds(
                {"token": token, "processor": token, "limit": 3, "max_attempts": 3}
            )
            cursor = connection.cursor()
            cursor.execute(claim_sql.sql, binds)
            return int(cursor.rowcount or 0)

        stamped = _claim_twice_at_once(server.port, claim)
        tokens = _rows_by_token(queue)
        snapshots = model_stats(server.port)["arrival_snapshots"]
    assert stamped == (3, 3)
    if reading == "safe":
        assert tokens == {"first": 3, "second": 3}, tokens
        assert snapshots["statements"] == 0
    else:
        assert tokens == {"second": 3, None: 3}, tokens
        assert snapshots["statements"] == 2, snapshots


def test_a_claim_that_takes_the_lock_first_is_safe_under_the_unsafe_reading(
    tmp_path: Path,
) -> None:
    """The remedy if a real account reads at arrival: a transaction whose first statement
    only takes the lock (an UPDATE of no rows), then the claim, then COMMIT. The claim
    begins once the lock is held, so the data it reads already has the other claim's
    tokens: the two claims take different rows."""
    with emulator(tmp_path, *READINGS["unsafe"]) as server:
        queue = new_queue(server.port, TABLE)
        fill(queue, 6)
        claim_sql = statements_for(TABLE)["claim"]

        def claim(connection: Any, token: str) -> int:
            connection.autocommit(False)
            cursor = connection.cursor()
            cursor.execute(f"UPDATE {TABLE.sql} SET id = id WHERE 1 = 0")  # waits here
            binds = claim_sql.binds(
                {"token": token, "processor": token, "limit": 3, "max_attempts": 3}
            )
            cursor.execute(claim_sql.sql, binds)
            stamped = int(cursor.rowcount or 0)
            cursor.execute("COMMIT")
            return stamped

        stamped = _claim_twice_at_once(server.port, claim)
        tokens = _rows_by_token(queue)
        snapshots = model_stats(server.port)["arrival_snapshots"]
    assert stamped == (3, 3)
    assert tokens == {"first": 3, "second": 3}, tokens
    assert snapshots["statements"] == 2, snapshots  # the lock-taking UPDATEs, not the claims


def _rows_by_token(queue: Any) -> dict[str | None, int]:
    cursor = queue._connection.cursor()
    cursor.execute(f"SELECT claim_token, COUNT(*) FROM {TABLE.sql} GROUP BY claim_token ORDER BY 1")
    return {token: count for token, count in cursor.fetchall()}


@pytest.mark.parametrize("reading", sorted(READINGS))
def test_racing_workers_lose_nothing_and_count_every_duplicate(
    workers: WorkerWorld, tmp_path: Path, reading: str
) -> None:
    """4 workers, claims of 20, every locking statement holding the lock 200 ms (as on
    Snowflake), so claims queue behind claims. Every entry ends completed once; the
    service's duplicate calls are exactly the rows handed to two workers, and each of
    those left one write-back that changed nothing."""
    with emulator(tmp_path, "--lock-hold-ms", "200", *READINGS[reading]) as server:
        queue = new_queue(server.port, TABLE)
        fill(queue, ENTRIES)
        service = workers.start_service(latency_ms=5)
        spec = make_spec(server.port, service.port, TABLE, claim_batch=20, claim_max=20)
        # Rounds of Jobs, as the operator launches more while entries are left: under the
        # unsafe reading a worker whose claimed rows were all re-stamped by a later claim
        # reads back none, takes the queue for drained and stops early.
        results, summaries = [], []
        for round_number in range(ROUNDS):
            runs = [workers.start(spec, name=f"race-{round_number}-{i}") for i in range(WORKERS)]
            results += [run.wait(timeout=240) for run in runs]
            summaries += [run.summary() for run in runs]
            counts = queue.counts(max_attempts=3)
            if counts.completed == ENTRIES:
                break
        calls = fetch_stats(service.port, workers.certs)
        snapshots = model_stats(server.port)["arrival_snapshots"]
    handed_out = sum(s["claimed"] for s in summaries)
    record = {
        "reading": reading,
        "entries": ENTRIES,
        "workers": WORKERS,
        "rounds": len(results) // WORKERS,
        # entries a worker read back after another already had them (one per extra worker)
        "extra_hand_outs": handed_out - ENTRIES,
        "duplicate_calls": calls["duplicates"],
        "write_backs_not_applied": sum(s["not_applied"] for s in summaries),
        "completed": counts.completed,
        "lost": ENTRIES - counts.completed,
        "claims_read_at_arrival": snapshots["statements"],
    }
    print(json.dumps(record))  # the numbers (pytest -s shows them)
    assert [code for code, _ in results] == [0] * len(results), [err[-2000:] for _, err in results]
    assert (counts.completed, counts.pending, counts.processing, counts.failed) == (
        ENTRIES,
        0,
        0,
        0,
    ), record
    assert record["duplicate_calls"] == record["extra_hand_outs"], record
    assert record["write_backs_not_applied"] == record["extra_hand_outs"], record
    if reading == "safe":
        assert record["duplicate_calls"] == 0, record
        assert record["claims_read_at_arrival"] == 0, record
    else:
        assert record["claims_read_at_arrival"] > 0, record
        assert record["duplicate_calls"] > 0, record
        # bounded: each of the other workers may call an entry once more
        assert record["duplicate_calls"] <= (WORKERS - 1) * ENTRIES, record
