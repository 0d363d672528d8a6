"""The Snowflake-like table lock the benchmarks put between the worker and the emulator
(issue 12, part 1): DML on one table runs one statement at a time, each holding the lock
for the configured time; SELECTs do not wait; a full lock queue answers error 000625."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from snowflake.connector.errors import ProgrammingError

from snowflake_devtools.lock_proxy import fetch_lock_stats, start_lock_proxy
from snowflake_devtools.processes import ServerProcess
from snowflake_operator.queue_schema import SchemaTarget, ensure_queue_table
from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue import QueueClient
from tests.support.queues import fill
from tests.support.snowflake import connect_to_emulator

HOLD = 0.4


@pytest.fixture
def proxy(snowflake_server: ServerProcess, tmp_path: Path) -> Iterator[ServerProcess]:
    server = start_lock_proxy(snowflake_server.port, tmp_path / "proxy.log", hold_seconds=HOLD)
    yield server
    server.stop()


@pytest.fixture
def through_proxy(
    proxy: ServerProcess, snowflake_connect: Callable[..., Any], database_name: str
) -> Iterator[Callable[[], QueueClient]]:
    """Queue clients whose connections go through the lock proxy."""
    table = TableRef(database_name, "QUEUE", "WORK_QUEUE")
    ensure_queue_table(snowflake_connect(), SchemaTarget(table=table))
    opened: list[Any] = []

    def client() -> QueueClient:
        connection = connect_to_emulator(proxy.port, database=database_name)
        opened.append(connection)
        return QueueClient(connection, table, retry_attempts=1)

    yield client
    for connection in opened:
        connection.close()


def _timed(jobs: list[Callable[[], Any]]) -> float:
    """Run the callables side by side; how long until the last one ended."""
    threads = [threading.Thread(target=job) for job in jobs]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.monotonic() - started


def test_updates_on_one_table_run_one_at_a_time_and_hold_the_lock(
    proxy: ServerProcess, through_proxy: Callable[[], QueueClient]
) -> None:
    fill(through_proxy(), 40)
    clients = [through_proxy() for _ in range(4)]
    claimed: list[int] = []
    seconds = _timed(
        [
            lambda c=c: claimed.append(len(c.claim(10, max_attempts=3, processor_id="p")))  # type: ignore[misc]
            for c in clients
        ]
    )
    assert sorted(claimed) == [10, 10, 10, 10]
    # Four claim UPDATEs one after another, each holding the lock HOLD seconds.
    assert seconds >= 4 * HOLD, seconds
    (table,) = fetch_lock_stats(proxy.port)["tables"].values()
    assert table["statements"] == 4
    assert table["held_seconds"] >= 4 * HOLD
    assert table["max_waiters"] >= 2
    assert table["waited_seconds"] > 0


def test_selects_do_not_take_the_lock(
    proxy: ServerProcess, through_proxy: Callable[[], QueueClient]
) -> None:
    fill(through_proxy(), 5)
    clients = [through_proxy() for _ in range(4)]
    seconds = _timed([lambda c=c: c.counts(max_attempts=3) for c in clients])  # type: ignore[misc]
    assert seconds < HOLD * 2, seconds
    assert fetch_lock_stats(proxy.port)["tables"] == {}  # the INSERTs of fill passed too


def test_a_full_lock_queue_is_snowflakes_error_000625(
    snowflake_server: ServerProcess,
    snowflake_connect: Callable[..., Any],
    database_name: str,
    tmp_path: Path,
) -> None:
    table = TableRef(database_name, "QUEUE", "WORK_QUEUE")
    ensure_queue_table(snowflake_connect(), SchemaTarget(table=table))
    proxy = start_lock_proxy(
        snowflake_server.port, tmp_path / "proxy.log", hold_seconds=1.0, max_waiters=1
    )
    errors: list[int] = []
    try:
        clients = [
            QueueClient(
                connect_to_emulator(proxy.port, database=database_name), table, retry_attempts=1
            )
            for _ in range(3)
        ]

        def claim(client: QueueClient) -> None:
            try:
                client.claim(1, max_attempts=3, processor_id="p")
            except ProgrammingError as exc:
                errors.append(exc.errno)

        _timed([lambda c=c: claim(c) for c in clients])  # type: ignore[misc]
        (stats,) = fetch_lock_stats(proxy.port)["tables"].values()
    finally:
        proxy.stop()
    assert errors == [625]  # one holds the lock, one waits, the third is refused
    assert stats["rejected"] == 1
