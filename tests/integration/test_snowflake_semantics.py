"""What Snowflake does and the emulator alone does not, and the queue protocol under it.

The emulator runs behind the model of Snowflake's semantics (snowflake_model.py): primary
keys are not enforced, VARCHAR lengths are, UPDATE/DELETE/MERGE wait for the table's lock
(000625 past 20 waiters), a user can default AUTOCOMMIT to FALSE. The first tests check
the model itself; the others reproduce on it each way the queue protocol once broke on
Snowflake while passing on the bare emulator.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from snowflake.connector import errors as sf_errors

from snowflake_devtools.processes import ServerProcess
from snowflake_worker.connection import connect
from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue import QueueClient, Status, completed, dead_lettered
from snowflake_worker.queue_sql import statements_for
from snowflake_worker.snowflake_settings import SnowflakeSettings
from tests.support.polling import wait_for
from tests.support.queues import fetch_rows, fill
from tests.support.snowflake import (
    AUTOCOMMIT_OFF_USER,
    connect_to_emulator,
    emulator,
    location,
    model_stats,
    new_queue,
    query_texts,
)
from tests.support.sql_tables import query
from tests.support.worker_runs import WorkerWorld, make_spec

pytestmark = pytest.mark.integration


def lock_figures(port: int, table: TableRef) -> dict[str, Any]:
    figures: dict[str, Any] = model_stats(port)["locks"]["tables"].get(str(table), {})
    return figures


# -- the model: what Snowflake does -----------------------------------------------------


def test_a_declared_primary_key_does_not_stop_duplicate_ids(queue: QueueClient) -> None:
    """001 declares id PRIMARY KEY; Snowflake stores duplicates anyway (fakesnow refused).
    The queue's enqueue therefore merges on id: it adds only the ids that are not there,
    however many rows already carry one. A claim stamps every row of an id but hands the
    id out once, and one outcome settles all its rows: the write-back joins each row to
    exactly one outcome (no multi-joined row, so no ERROR_ON_NONDETERMINISTIC_UPDATE)."""
    for _ in range(2):
        query(queue._connection, f"INSERT INTO {queue.table.sql} (id) SELECT 'twice'")
    assert [r["id"] for r in fetch_rows(queue)] == ["twice", "twice"]  # the model
    assert queue.enqueue([("twice", {"n": 1}), ("new", {"n": 2})]) == 1  # the product
    assert [r["id"] for r in fetch_rows(queue)] == ["new", "twice", "twice"]
    assert queue.counts(max_attempts=3).pending == 3
    claimed = queue.claim(10, max_attempts=3, processor_id="w")
    assert sorted(e.id for e in claimed) == ["new", "twice"]
    landed = queue.apply_outcomes([completed(e) for e in claimed], "w")
    assert sorted(o.entry_id for o in landed) == ["new", "twice"]  # counted once each
    assert [r["status"] for r in fetch_rows(queue)] == ["completed"] * 3


def test_a_string_longer_than_its_column_is_refused(queue: QueueClient) -> None:
    fill(queue, 1)
    with pytest.raises(sf_errors.ProgrammingError, match="too long") as refused:
        query(queue._connection, f"UPDATE {queue.table.sql} SET processor_id = ?", ("p" * 256,))
    assert refused.value.errno == 100078
    with pytest.raises(sf_errors.ProgrammingError, match="too long"):
        queue.enqueue([("i" * 65, {})])
    query(queue._connection, f"UPDATE {queue.table.sql} SET processor_id = ?", ("p" * 255,))


def test_past_twenty_statements_waiting_for_the_lock_the_next_fails_with_000625(
    snowflake_server: ServerProcess, queue: QueueClient
) -> None:
    fill(queue, 1)
    port, table = snowflake_server.port, queue.table
    holder = connect_to_emulator(port, user=AUTOCOMMIT_OFF_USER, autocommit=None)
    query(holder, f"UPDATE {table.sql} SET processor_id = 'holder'")  # holds the lock
    outcomes: list[str] = []

    def statement() -> None:
        try:
            connection = connect_to_emulator(port, network_timeout=120)
            query(connection, f"UPDATE {table.sql} SET processor_id = 'waiter'")
            outcomes.append("done")
        except sf_errors.ProgrammingError as exc:
            outcomes.append(f"refused {exc.errno}")

    threads = [threading.Thread(target=statement) for _ in range(21)]
    for thread in threads:
        thread.start()
    wait_for(lambda: outcomes, 90, "a statement refused")
    wait_for(lambda: lock_figures(port, table).get("most_waiting") == 20, 90, "20 waiters")
    assert outcomes == ["refused 625"]  # none of the 20 ran while the lock was held
    holder.commit()
    for thread in threads:
        thread.join(120)
    assert sorted(outcomes) == ["done"] * 20 + ["refused 625"]


def test_locking_statements_run_one_at_a_time_each_holding_the_lock_its_hold_time(
    tmp_path: Path,
) -> None:
    """--lock-hold-ms 400: four claims from four sessions at once take the lock one after
    the other, each for 400 ms at least; SELECTs meanwhile never wait for it. The held
    seconds the model reports are what the fleet benchmark's lock utilization divides."""
    table = TableRef("HOLDS", "QUEUE", "WORK_QUEUE")
    hold = 0.4
    with emulator(tmp_path, "--lock-hold-ms", str(hold * 1000)) as server:
        fill(new_queue(server.port, table), 40)
        clients = [new_queue(server.port, table) for _ in range(5)]
        before = lock_figures(server.port, table)
        claimed: list[int] = []
        finished: dict[str, float] = {}
        started = time.monotonic()

        def claim(client: QueueClient) -> None:
            claimed.append(len(client.claim(10, max_attempts=3, processor_id="p")))
            finished["claims"] = time.monotonic() - started

        def count(client: QueueClient) -> None:
            time.sleep(0.1)  # the claims hold the lock by now
            client.counts(max_attempts=3)
            finished["select"] = time.monotonic() - started

        threads = [threading.Thread(target=claim, args=(c,)) for c in clients[:4]]
        threads.append(threading.Thread(target=count, args=(clients[4],)))
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        after = lock_figures(server.port, table)
    assert sorted(claimed) == [10, 10, 10, 10]
    assert finished["claims"] >= 4 * hold, finished  # one at a time, never side by side
    assert finished["select"] < 2 * hold, finished  # did not queue behind the claims
    assert after["acquired"] - before["acquired"] == 4  # the claim UPDATEs alone
    assert after["held_seconds"] - before["held_seconds"] >= 4 * hold
    assert after["waited_seconds"] > before["waited_seconds"]
    assert after["most_waiting"] >= 2


# -- 1. the claim: no LIMIT in a subquery (tests/unit/test_snowflake_strictness.py) -----


def test_the_claim_takes_the_oldest_eligible_rows_up_to_its_limit(queue: QueueClient) -> None:
    ids = fill(queue, 12)
    first = queue.claim(5, max_attempts=3, processor_id="w")
    assert [e.id for e in first] == ids[:5]
    assert [e.id for e in queue.claim(100, max_attempts=3, processor_id="w")] == ids[5:]


# -- 2. lease recovery: one statement, one clock -----------------------------------------


def test_a_lease_expiring_while_recovery_runs_is_never_left_pending_without_attempts(
    tmp_path: Path,
) -> None:
    """Each statement holds the table's lock 2 s (as under load on Snowflake). A lease on
    its last attempt expires 3 s after the last write: after the first statement of a
    two-statement recovery, before the second."""
    table = TableRef("LEASES", "QUEUE", "WORK_QUEUE")
    with emulator(tmp_path, "--lock-hold-ms", "2000") as server:
        queue = new_queue(server.port, table)
        fill(queue, 1)
        (entry,) = queue.claim(1, max_attempts=3, processor_id="w")
        query(
            queue._connection,
            f"UPDATE {table.sql} SET retry_count = 2, "
            "claimed_at = DATEADD(millisecond, 3000 - 60000, SYSDATE())",
        )
        queue.recover_expired_leases(lease_seconds=60, max_attempts=3)
        stranded = fetch_rows(queue, "status = 'pending' AND retry_count >= 3")
        assert stranded == [], "requeued with no attempt left: never claimable, never failed"
        time.sleep(1)
        recovery = queue.recover_expired_leases(lease_seconds=60, max_attempts=3)
        (row,) = fetch_rows(queue)
    assert (recovery.dead_lettered, recovery.requeued) == (1, 0)
    assert (row["id"], row["status"], row["retry_count"]) == (entry.id, Status.FAILED, 3)
    assert "lease expired after 60 s" in row["error_message"]


def test_lease_recovery_is_one_statement_when_nothing_expired(queue: QueueClient) -> None:
    fill(queue, 2)
    queue.claim(2, max_attempts=3, processor_id="w")
    before = queue.statement_count
    assert queue.recover_expired_leases(lease_seconds=3600, max_attempts=3).requeued == 0
    assert queue.statement_count - before == 1


# -- 3. enqueue: MERGE, since Snowflake enforces no primary key -------------------------


def test_two_sessions_enqueueing_the_same_ids_at_once_add_each_id_once(
    snowflake_connect: Callable[..., Any], queue: QueueClient
) -> None:
    """Two transactions at once (autocommit off makes the overlap certain): a plain INSERT
    in each finds the ids missing and both insert them; a MERGE waits for the other's lock
    and then sees its rows."""
    enqueue = statements_for(queue.table)["enqueue"]
    entries = json.dumps([{"id": f"dup-{n}", "data": {"n": n}} for n in range(20)])
    first, second = (
        snowflake_connect(**location(queue.table), autocommit=False, network_timeout=60)
        for _ in range(2)
    )
    query(first, enqueue.sql, enqueue.binds({"entries": entries}))
    late = threading.Thread(
        target=lambda: query(second, enqueue.sql, enqueue.binds({"entries": entries}))
    )
    late.start()
    time.sleep(1.0)
    first.commit()
    late.join(60)
    second.commit()
    rows = fetch_rows(queue)
    assert len(rows) == len({r["id"] for r in rows}) == 20


def test_an_id_given_twice_in_one_enqueue_is_added_once_with_its_first_data(
    queue: QueueClient,
) -> None:
    assert queue.enqueue([("same", {"first": True}), ("other", 1), ("same", {"first": False})]) == 2
    rows = query(queue._connection, f"SELECT data FROM {queue.table.sql} WHERE id = 'same'")
    assert [json.loads(r[0]) for r in rows] == [{"first": True}]


def test_a_migrated_legacy_table_takes_ids_of_64_characters(legacy_queue: QueueClient) -> None:
    """The legacy design made id VARCHAR(36); Snowflake refuses longer strings, enqueue
    takes 64."""
    assert legacy_queue.enqueue([("x" * 64, {"n": 1})]) == 1
    claimed = legacy_queue.claim(1, max_attempts=3, processor_id="w")
    assert [e.id for e in claimed] == ["x" * 64]


# -- 4. values bound on the server, never in the query text -----------------------------


def test_entry_data_and_errors_never_reach_the_query_text(
    snowflake_server: ServerProcess, queue: QueueClient
) -> None:
    secrets = ("4111-1111-1111-1111", "jane.doe@example.com", "private-entry-7")
    queue.enqueue([(secrets[2], {"card": secrets[0]})])
    (entry,) = queue.claim(1, max_attempts=3, processor_id="w")
    assert queue.write_back([dead_lettered(entry, f"HTTP 422: {secrets[1]} refused")]) == 1
    texts = [q["text"] for q in query_texts(snowflake_server.port)]
    assert any(queue.table.sql in text for text in texts)  # the history is this test's
    assert [s for s in secrets if any(s in text for text in texts)] == []


def test_a_connection_that_binds_on_the_client_is_refused(
    snowflake_connect: Callable[..., Any], queue_table: TableRef
) -> None:
    with pytest.raises(ValueError, match="paramstyle='qmark'"):
        QueueClient(snowflake_connect(paramstyle="pyformat"), queue_table)


def test_a_write_back_near_the_bind_budget_keeps_its_statement_text_small(
    snowflake_server: ServerProcess, queue: QueueClient
) -> None:
    """Errors of 1,000 backslashes: JSON doubles them and SQL escaping would double them
    again, past Snowflake's 1 MB statement guidance; a bound value is sent as counted."""
    fill(queue, 300)
    batch = queue.claim(300, max_attempts=3, processor_id="w")
    error = "\\" * 1000
    assert queue.write_back([dead_lettered(e, error) for e in batch]) == 300
    sizes = [q["length"] for q in query_texts(snowflake_server.port)[-5:]]
    assert max(sizes) < 4096, sizes
    stored = query(queue._connection, f"SELECT DISTINCT error_message FROM {queue.table.sql}")
    assert stored == [(error,)]


# -- 5. autocommit set by the client, whatever the user's default ----------------------


def test_claims_commit_for_a_user_whose_sessions_default_to_no_autocommit(
    snowflake_server: ServerProcess, queue: QueueClient
) -> None:
    fill(queue, 5)
    table = queue.table
    settings = SnowflakeSettings(
        account="local",
        user=AUTOCOMMIT_OFF_USER,
        database=table.database,
        schema_name=table.schema,
        table=table.table,
        auth="emulator",
        host="127.0.0.1",
        port=snowflake_server.port,
        lock_timeout_seconds=10,
        statement_timeout_seconds=20,
        network_timeout_seconds=30,
    )
    worker = QueueClient(connect(settings), table)
    assert len(worker.claim(5, max_attempts=3, processor_id="nocommit-worker")) == 5
    observer = QueueClient(
        connect_to_emulator(
            snowflake_server.port,
            **location(table),
            session_parameters={"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False, "LOCK_TIMEOUT": 3},
        ),
        table,
        retry_attempts=1,
    )
    assert observer.counts(max_attempts=3).processing == 5  # committed, seen by others
    observer.recover_expired_leases(lease_seconds=3600, max_attempts=3)  # no lock left held


# -- 7. workers never make more lock waiters than the arithmetic says --------------------


def test_each_worker_has_at_most_one_statement_waiting_for_the_lock(
    workers: WorkerWorld, tmp_path: Path
) -> None:
    """3 workers, each statement holding the lock 100 ms, the model refusing a third
    waiter: one statement per worker at most, so at most 2 ever wait and none is refused."""
    table = TableRef("LOCKS", "QUEUE", "WORK_QUEUE")
    with emulator(tmp_path, "--lock-hold-ms", "100", "--lock-waiters", "2") as server:
        queue = new_queue(server.port, table)
        fill(queue, 300)
        service = workers.start_service(latency_ms=5)
        spec = make_spec(server.port, service.port, table, claim_batch=20, flush_every=20)
        runs = [workers.start(spec, name=f"job-{i}") for i in range(3)]
        for run in runs:
            code, stderr = run.wait(300)
            assert code == 0, stderr
        figures = lock_figures(server.port, table)
        refused = model_stats(server.port)["locks"]["waiters_exceeded"]
        counts = queue.counts(max_attempts=3)
    assert counts.completed == 300
    assert refused == 0
    assert 1 <= figures["most_waiting"] <= 2, figures
