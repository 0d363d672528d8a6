"""Snowflake's table lock, modelled for the emulator (fakesnow never makes a statement wait).

On a standard table Snowflake runs UPDATE, DELETE and MERGE one at a time: each takes the
table's lock for as long as its transaction lasts (one statement under autocommit), and the
others queue for it. A statement that would make more than ``waiters_limit`` waiters fails at
once with error 000625 ("the number of waiters for this lock exceeds the 20 statements
limit"); one that waits longer than its session's LOCK_TIMEOUT fails too.

One :class:`TableLocks` serves one event loop (the emulator's): every method runs on it, so
nothing here needs a thread lock. Owners are sessions; a session that already holds a
table's lock (an open transaction) takes it again without waiting.

Per table it counts the seconds the lock was held and waited for: the held seconds over a
stretch of wall time are the lock's utilization (the fleet benchmark reads them).
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

SNOWFLAKE_WAITERS_LIMIT = 20


class LockWaitersExceeded(Exception):
    """Too many statements already wait for this table's lock (Snowflake's 000625)."""


class LockWaitTimedOut(Exception):
    """The statement waited longer than its session's LOCK_TIMEOUT."""


@dataclass
class _TableLock:
    holder: str | None = None
    waiting: deque[tuple[str, asyncio.Future[None]]] = field(default_factory=deque)
    most_waiting: int = 0
    acquired: int = 0
    held_since: float = 0.0  # time.monotonic() when the holder took it
    held_seconds: float = 0.0  # by holders that let go
    waited_seconds: float = 0.0  # by statements that then took it

    def take(self, owner: str) -> None:
        self.holder = owner
        self.acquired += 1
        self.held_since = time.monotonic()

    def let_go(self) -> None:
        self.held_seconds += time.monotonic() - self.held_since
        self.holder = None

    def held_until_now(self) -> float:
        current = time.monotonic() - self.held_since if self.holder is not None else 0.0
        return self.held_seconds + current


@dataclass
class TableLocks:
    """Who holds each table's lock and who waits for it, with the figures a test reads."""

    waiters_limit: int = SNOWFLAKE_WAITERS_LIMIT
    waiters_exceeded: int = 0
    timed_out: int = 0
    _tables: dict[str, _TableLock] = field(default_factory=dict)

    async def acquire(self, table: str, owner: str, wait_seconds: float) -> None:
        """Return once ``owner`` holds ``table``'s lock; raise LockWaitersExceeded at once
        when the queue is full, LockWaitTimedOut after ``wait_seconds`` of waiting."""
        lock = self._tables.setdefault(table, _TableLock())
        if lock.holder == owner:
            return
        if lock.holder is None and not lock.waiting:
            lock.take(owner)
            return
        if len(lock.waiting) >= self.waiters_limit:
            self.waiters_exceeded += 1
            raise LockWaitersExceeded(
                f"A statement has locked table '{table}' and this lock has not yet been "
                "released. Your statement was aborted because the number of waiters for this "
                f"lock exceeds the {self.waiters_limit} statements limit."
            )
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        waiter = (owner, granted)
        lock.waiting.append(waiter)
        lock.most_waiting = max(lock.most_waiting, len(lock.waiting))
        arrived = time.monotonic()
        try:
            await asyncio.wait_for(granted, wait_seconds)
            lock.waited_seconds += time.monotonic() - arrived
        except TimeoutError:
            self._give_up(table, waiter)
            self.timed_out += 1
            raise LockWaitTimedOut(
                f"Your statement waited {wait_seconds:g} s (LOCK_TIMEOUT) for the lock on table "
                f"'{table}' and was aborted."
            ) from None
        except asyncio.CancelledError:  # the client went away while waiting
            self._give_up(table, waiter)
            raise

    def would_wait(self, table: str, owner: str) -> bool:
        """Whether ``owner`` asking for ``table``'s lock now would have to wait for it."""
        lock = self._tables.get(table)
        if lock is None or lock.holder == owner:
            return False
        return lock.holder is not None or bool(lock.waiting)

    def release(self, table: str, owner: str) -> None:
        """``owner`` lets go of ``table``'s lock; the longest waiter still waiting gets it."""
        lock = self._tables.get(table)
        if lock is None or lock.holder != owner:
            return
        lock.let_go()
        while lock.waiting:
            next_owner, granted = lock.waiting.popleft()
            if not granted.done():
                lock.take(next_owner)
                granted.set_result(None)
                return

    def _give_up(self, table: str, waiter: tuple[str, asyncio.Future[None]]) -> None:
        """A waiter stops waiting; if the lock reached it meanwhile, it passes it on."""
        lock = self._tables[table]
        if waiter in lock.waiting:
            lock.waiting.remove(waiter)
        elif lock.holder == waiter[0]:
            self.release(table, waiter[0])

    def release_all(self, owner: str) -> None:
        for table in [name for name, lock in self._tables.items() if lock.holder == owner]:
            self.release(table, owner)

    def holds(self, owner: str) -> list[str]:
        return sorted(name for name, lock in self._tables.items() if lock.holder == owner)

    def stats(self) -> dict[str, Any]:
        """Per table the statements waiting now and the most seen waiting at once, how many
        took the lock, and the seconds it was held (until now) and waited for."""
        return {
            "waiters_limit": self.waiters_limit,
            "waiters_exceeded": self.waiters_exceeded,
            "timed_out": self.timed_out,
            "tables": {
                name: {
                    "waiting": len(lock.waiting),
                    "most_waiting": lock.most_waiting,
                    "acquired": lock.acquired,
                    "held_seconds": round(lock.held_until_now(), 4),
                    "waited_seconds": round(lock.waited_seconds, 4),
                }
                for name, lock in sorted(self._tables.items())
            },
        }
