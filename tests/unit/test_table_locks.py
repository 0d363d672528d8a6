"""The emulator's model of Snowflake's table lock (snowflake_devtools/table_locks.py)."""

from __future__ import annotations

import asyncio

import pytest

from snowflake_devtools.table_locks import LockWaitersExceeded, LockWaitTimedOut, TableLocks


def test_statements_queue_in_order_and_the_one_past_the_limit_fails_at_once() -> None:
    async def scenario() -> tuple[list[str], int]:
        locks = TableLocks(waiters_limit=2)
        await locks.acquire("T", "holder", 60)
        order: list[str] = []

        async def statement(owner: str) -> None:
            await locks.acquire("T", owner, 60)
            order.append(owner)
            locks.release("T", owner)

        waiters = [asyncio.create_task(statement(f"w{i}")) for i in range(2)]
        await asyncio.sleep(0.01)
        with pytest.raises(LockWaitersExceeded, match="exceeds the 2 statements limit"):
            await locks.acquire("T", "third", 60)
        assert order == []  # nobody ran while the holder held the lock
        locks.release("T", "holder")
        await asyncio.gather(*waiters)
        return order, locks.stats()["tables"]["T"]["most_waiting"]

    order, most_waiting = asyncio.run(scenario())
    assert order == ["w0", "w1"]
    assert most_waiting == 2


def test_a_wait_longer_than_the_lock_timeout_fails_and_leaves_the_queue() -> None:
    async def scenario() -> TableLocks:
        locks = TableLocks(waiters_limit=1)
        await locks.acquire("T", "holder", 60)
        with pytest.raises(LockWaitTimedOut):
            await locks.acquire("T", "patient", 0.05)
        await locks.acquire("U", "other", 60)  # another table is free
        locks.release("T", "holder")
        await locks.acquire("T", "next", 0.05)  # the timed-out waiter is gone
        return locks

    locks = asyncio.run(scenario())
    assert locks.timed_out == 1
    assert locks.holds("next") == ["T"]


def test_a_transaction_takes_its_own_lock_again_and_releases_all_at_the_end() -> None:
    async def scenario() -> TableLocks:
        locks = TableLocks()
        await locks.acquire("T", "tx", 60)
        await locks.acquire("T", "tx", 0.01)  # no wait for a lock it holds
        await locks.acquire("U", "tx", 60)
        locks.release_all("tx")
        return locks

    locks = asyncio.run(scenario())
    assert locks.holds("tx") == []


def test_held_and_waited_seconds_are_counted_per_table_the_current_hold_included() -> None:
    async def scenario() -> tuple[dict[str, float], dict[str, float]]:
        locks = TableLocks()
        await locks.acquire("T", "first", 60)
        waiter = asyncio.create_task(locks.acquire("T", "second", 60))
        await asyncio.sleep(0.05)
        during = locks.stats()["tables"]["T"]  # "first" still holds it
        locks.release("T", "first")
        await waiter
        await asyncio.sleep(0.05)
        locks.release("T", "second")
        return during, locks.stats()["tables"]["T"]

    during, after = asyncio.run(scenario())
    assert during["held_seconds"] >= 0.05
    assert during["waited_seconds"] == 0  # the waiter has not taken the lock yet
    assert after["acquired"] == 2
    assert after["held_seconds"] >= 0.1
    assert after["waited_seconds"] >= 0.05
