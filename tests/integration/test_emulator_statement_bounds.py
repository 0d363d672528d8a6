"""The emulator's model bounds a wait for the table's lock as Snowflake does: by the
session's LOCK_TIMEOUT (000625) and STATEMENT_TIMEOUT_IN_SECONDS (000630), and by the
connector's own timer, whose cancel (an abort-request) ends the wait with 000604.

Each test holds the queue table's lock in an open transaction of its own session, as a
long purge or a migration would, and runs one UPDATE through the real connector."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from snowflake.connector.errors import ProgrammingError

from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue import QueueClient
from tests.support.queues import fetch_rows, fill
from tests.support.snowflake import (
    connect_to_emulator,
    emulator,
    location,
    model_stats,
    new_queue,
)

pytestmark = pytest.mark.integration

LOCKING_UPDATE = "UPDATE {table} SET processor_id = processor_id WHERE 1 = 0"


@contextmanager
def lock_held(connect: Callable[..., Any], queue: QueueClient) -> Iterator[None]:
    """The table's lock, held by an open transaction until the block ends."""
    holder = connect(**location(queue.table), autocommit=False)
    holder.cursor().execute(LOCKING_UPDATE.format(table=queue.table.sql))
    try:
        yield
    finally:
        holder.cursor().execute("COMMIT")


def waiting_update(connect: Callable[..., Any], queue: QueueClient, **options: Any) -> None:
    """Run one UPDATE that must wait for the lock, in a session opened with ``options``."""
    session = connect(**location(queue.table), **options)
    session.cursor().execute(LOCKING_UPDATE.format(table=queue.table.sql))


def test_the_connectors_timer_cancels_a_statement_waiting_for_the_lock_with_000604(
    snowflake_connect: Callable[..., Any], queue: QueueClient
) -> None:
    with lock_held(snowflake_connect, queue), pytest.raises(ProgrammingError) as failed:
        waiting_update(snowflake_connect, queue, network_timeout=1)
    assert failed.value.errno == 604
    # The connector words it "cancelled by the client due to a timeout" only when its timer
    # has marked itself done before the answer arrives (a race); the number is certain.
    assert "canceled" in str(failed.value).lower() or "cancelled" in str(failed.value).lower()


def test_a_wait_longer_than_lock_timeout_fails_with_000625(
    snowflake_connect: Callable[..., Any], queue: QueueClient
) -> None:
    params = {"CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False, "LOCK_TIMEOUT": 1}
    with lock_held(snowflake_connect, queue), pytest.raises(ProgrammingError) as failed:
        waiting_update(snowflake_connect, queue, session_parameters=params, network_timeout=30)
    assert failed.value.errno == 625
    assert "LOCK_TIMEOUT" in str(failed.value)


def test_a_wait_longer_than_the_statement_timeout_fails_with_000630(
    snowflake_connect: Callable[..., Any], queue: QueueClient
) -> None:
    params = {
        "CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False,
        "LOCK_TIMEOUT": 60,
        "STATEMENT_TIMEOUT_IN_SECONDS": 1,
    }
    with lock_held(snowflake_connect, queue), pytest.raises(ProgrammingError) as failed:
        waiting_update(snowflake_connect, queue, session_parameters=params, network_timeout=30)
    assert failed.value.errno == 630
    assert "timeout of 1 second(s)" in str(failed.value)


def test_a_cancelled_waiter_leaves_the_queue_and_the_next_statement_runs(
    snowflake_connect: Callable[..., Any], queue: QueueClient
) -> None:
    """The cancelled statement changed nothing and holds nothing: once the holder commits,
    a new statement of the same session takes the lock at once."""
    session = snowflake_connect(**location(queue.table), network_timeout=1)
    with lock_held(snowflake_connect, queue), pytest.raises(ProgrammingError):
        session.cursor().execute(LOCKING_UPDATE.format(table=queue.table.sql))
    started = time.monotonic()
    session.cursor().execute(LOCKING_UPDATE.format(table=queue.table.sql))
    assert time.monotonic() - started < 1


def test_a_statement_waiting_longer_than_an_answer_may_take_is_polled_for(
    tmp_path: Path,
) -> None:
    """Snowflake answers a long statement "query in progress" (after about 45 s; here
    0.3 s) and the connector polls for its result: a wait of minutes never meets the
    client's 60 s socket timeout, and the statement runs once."""
    with emulator(tmp_path, "--in-progress-seconds", "0.3") as server:
        queue = new_queue(server.port, TableRef("POLLED", "QUEUE", "WORK"))
        fill(queue, 3)

        def connect(**options: Any) -> Any:
            return connect_to_emulator(server.port, **options)

        waiter = connect(**location(queue.table), network_timeout=30)
        started = time.monotonic()
        with lock_held(connect, queue):
            done = threading.Thread(
                target=waiter.cursor().execute,
                args=(f"UPDATE {queue.table.sql} SET retry_count = retry_count + 1",),
            )
            done.start()
            time.sleep(2)
        done.join(timeout=30)
        assert time.monotonic() - started >= 2
        assert [r["retry_count"] for r in fetch_rows(queue)] == [1, 1, 1]  # ran once
        assert model_stats(server.port)["in_progress_answers"] >= 3
