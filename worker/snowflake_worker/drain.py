"""The worker's drain loop: claim batches, call the service, write outcomes back in batches.

Three kinds of task share one event loop: a claimer that keeps a small backlog of
claimed entries in memory, ``concurrency`` callers, and a flusher that writes outcomes
back every ``flush_every`` results or ``flush_seconds``. Snowflake calls are blocking,
so they run one at a time on a dedicated thread and never stall the HTTP calls.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any, TypeVar

import httpx

from .constants import ERROR_TEXT_LIMIT
from .errors import one_line
from .outcomes import (
    BadData,
    CallResult,
    Summary,
    backoff_delay,
    classify_exception,
    classify_status,
    parse_entry_data,
    release_delay,
)
from .queue import ClaimedEntry, Outcome, QueueClient, completed, dead_lettered, released
from .settings import WorkerSettings

log = logging.getLogger("snowflake_worker")
T = TypeVar("T")


class Drainer:
    def __init__(
        self, settings: WorkerSettings, queue: QueueClient, clients: list[httpx.AsyncClient]
    ) -> None:
        self.settings = settings
        self.queue = queue
        self.clients = clients  # caller k uses clients[k % len]: see http_clients.py
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snowflake")
        self._inbox: asyncio.Queue[ClaimedEntry | None] = asyncio.Queue()
        self._in_flight: dict[str, ClaimedEntry] = {}
        self._buffer: list[Outcome] = []
        self._first_buffered = 0.0
        self._stopping = asyncio.Event()
        self._closing = False
        self._stop_reason = "queue_empty"
        self.fatal_error: str | None = None
        self.claimed = self.completed = self.failed = self.released = 0
        self.not_applied = self.http_calls = self.http_retries = 0
        self.unwritten: list[Outcome] = []

    # -- control ----------------------------------------------------------------------

    def request_stop(self, reason: str = "sigterm") -> None:
        if not self._stopping.is_set():
            log.info("stop requested: claiming no more entries", extra={"reason": reason})
            self._stop_reason = reason
            self._stopping.set()

    def _fail_fatally(self, message: str) -> None:
        if self.fatal_error is None:
            self.fatal_error = message
            log.error(message)
        self.request_stop("fatal")

    async def _db_call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db, lambda: fn(*args, **kwargs))

    # -- the three loops --------------------------------------------------------------

    async def _claim_loop(self, deadline: float) -> None:
        s = self.settings
        while not self._stopping.is_set():
            if self.claimed >= s.max_entries:
                self._stop_reason = "budget"
                return
            if time.monotonic() >= deadline:
                self._stop_reason = "deadline"
                return
            if self._inbox.qsize() > s.concurrency:  # enough in hand: keep leases short
                await asyncio.sleep(0.01)
                continue
            size = min(s.claim_batch, s.max_entries - self.claimed)
            batch = await self._db_call(
                self.queue.claim, size, max_attempts=s.max_attempts, processor_id=s.processor_id
            )
            if not batch:
                self._stop_reason = "queue_empty"
                return
            self.claimed += len(batch)
            log.debug("claimed", extra={"entries": len(batch)})
            for entry in batch:
                self._inbox.put_nowait(entry)

    async def _call_loop(self, client: httpx.AsyncClient) -> None:
        while (entry := await self._inbox.get()) is not None:
            if self._stopping.is_set():
                self._record(released(entry))  # never started: hand it back untouched
                continue
            self._in_flight[entry.id] = entry
            try:
                outcome = await self._process(entry, client)
            except Exception as exc:  # a bug must not strand the entry: hand it back
                log.exception("unexpected error processing an entry", extra={"id": entry.id})
                outcome = released(entry, error=f"worker error: {type(exc).__name__}: {exc}")
            finally:
                self._in_flight.pop(entry.id, None)
            self._record(outcome)

    async def _flush_loop(self) -> None:
        """Never cancelled mid-write: a cancelled write-back could be lost or left uncounted."""
        s = self.settings
        while not self._closing:
            await asyncio.sleep(min(0.1, s.flush_seconds))
            due = self._buffer and time.monotonic() - self._first_buffered >= s.flush_seconds
            if len(self._buffer) >= s.flush_every or due:
                await self._flush()

    # -- one entry --------------------------------------------------------------------

    async def _process(self, entry: ClaimedEntry, client: httpx.AsyncClient) -> Outcome:
        s = self.settings
        try:
            data = parse_entry_data(entry.data)
        except BadData as exc:
            return dead_lettered(entry, str(exc))
        payload = {
            "entry_id": entry.id,
            "data": data,
            "processor_id": s.processor_id,
            "timestamp": datetime.now(UTC).isoformat(),
        }
        # Stable per entry, so a retried or re-delivered call is recognisable downstream.
        headers = {"Idempotency-Key": f"{self.queue.table}/{entry.id}"}
        attempt = 0
        while True:
            attempt += 1
            self.http_calls += 1
            try:
                response = await client.post(s.endpoint_url, json=payload, headers=headers)
                result = classify_status(response.status_code)
                detail = f"HTTP {response.status_code}: {response.text[:ERROR_TEXT_LIMIT]}"
            except httpx.HTTPError as exc:
                result = classify_exception(exc)
                detail = f"{type(exc).__name__}: {exc}"[:500]
            if result is CallResult.SUCCESS:
                return completed(entry)
            if result is CallResult.PERMANENT:
                return dead_lettered(entry, detail)
            if result is CallResult.FATAL:
                self._fail_fatally(
                    f"the service at {s.endpoint_url} rejected the TLS connection ({detail}); "
                    "check that client.pem is signed by a CA the service trusts and that "
                    "ca-cert.pem is the CA of the service's certificate"
                )
                return released(entry)
            if attempt > s.request_retries or self._stopping.is_set():
                if entry.retry_count + 1 >= s.max_attempts:
                    gave_up = f"gave up after {s.max_attempts} attempts: {detail}"
                    return dead_lettered(entry, gave_up)
                delay = release_delay(entry.retry_count, s.release_delay_seconds)
                return released(entry, error=detail, delay_seconds=delay)
            self.http_retries += 1
            await asyncio.sleep(random.uniform(0, backoff_delay(attempt, s.retry_backoff_seconds)))  # noqa: S311

    def _record(self, outcome: Outcome) -> None:
        if not self._buffer:
            self._first_buffered = time.monotonic()
        self._buffer.append(outcome)

    async def _flush(self) -> None:
        batch, self._buffer = self._buffer, []
        if not batch:
            return
        try:
            changed = await self._db_call(self.queue.write_back, batch)
        except Exception as exc:
            # Keep them: the next flush retries. If Snowflake never comes back, the lease
            # expires and the operator hands the entries out again (at-least-once).
            log.warning("write-back failed; will retry", extra={"error": one_line(exc)})
            self._buffer = batch + self._buffer
            return
        self._count(batch)
        self.not_applied += len(batch) - changed
        if changed < len(batch):
            log.warning(
                "some outcomes were not applied: their lease was recovered",
                extra={"skipped": len(batch) - changed},
            )

    def _count(self, batch: list[Outcome]) -> None:
        for outcome in batch:
            if outcome.status.value == "completed":
                self.completed += 1
            elif outcome.status.value == "failed":
                self.failed += 1
            else:
                self.released += 1

    # -- whole run --------------------------------------------------------------------

    async def run(self) -> Summary:
        s = self.settings
        started = time.monotonic()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        callers = [
            asyncio.create_task(self._call_loop(self.clients[k % len(self.clients)]))
            for k in range(s.concurrency)
        ]
        flusher = asyncio.create_task(self._flush_loop())
        deadline = started + s.seconds_to_deadline(datetime.now(UTC))
        claimer = asyncio.create_task(self._claim_loop(deadline))
        try:
            stop_waiter = asyncio.create_task(self._stopping.wait())
            await asyncio.wait({claimer, stop_waiter}, return_when=asyncio.FIRST_COMPLETED)
            stop_waiter.cancel()
            if not claimer.done():  # stopped mid-claim: let that claim land, then release it
                with contextlib.suppress(Exception):
                    await claimer
            elif claimer.exception() is not None:
                self._fail_fatally(f"claiming from Snowflake failed: {claimer.exception()}")
            for _ in callers:
                self._inbox.put_nowait(None)
            await self._wait_for_callers(callers)
        finally:
            self._closing = True
            await flusher
            await self._final_flush()
            self._db.shutdown(wait=True)
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
        return Summary(
            processor_id=s.processor_id,
            stop_reason=self._stop_reason,
            claimed=self.claimed,
            completed=self.completed,
            failed=self.failed,
            released=self.released,
            not_applied=self.not_applied,
            unwritten=len(self.unwritten),
            http_calls=self.http_calls,
            http_retries=self.http_retries,
            snowflake_statements=self.queue.statement_count,
            statements_by_kind=dict(self.queue.statements),
            seconds=round(time.monotonic() - started, 3),
        )

    async def _wait_for_callers(self, callers: list[asyncio.Task[None]]) -> None:
        """Let callers finish; once stopping, in-flight calls get only the grace period."""
        callers_done: asyncio.Future[Any] = asyncio.gather(*callers, return_exceptions=True)
        stop_waiter: asyncio.Future[Any] = asyncio.ensure_future(self._stopping.wait())
        await asyncio.wait({callers_done, stop_waiter}, return_when=asyncio.FIRST_COMPLETED)
        stop_waiter.cancel()
        if not callers_done.done():
            await asyncio.wait({callers_done}, timeout=self.settings.grace_seconds)
        if not callers_done.done():
            log.warning("grace period over: releasing entries still in flight")
            for task in callers:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await callers_done
        for entry in list(self._in_flight.values()):  # cut off by the grace period
            self._record(released(entry))
        self._in_flight.clear()
        while not self._inbox.empty():
            if (unstarted := self._inbox.get_nowait()) is not None:
                self._record(released(unstarted))

    async def _final_flush(self) -> None:
        for _ in range(5):
            await self._flush()
            if not self._buffer:
                return
            await asyncio.sleep(1)
        self.unwritten = self._buffer
        log.error(
            "could not write back outcomes; the operator will recover their leases",
            extra={"entries": len(self._buffer)},
        )


def summary_line(summary: Summary) -> dict[str, Any]:
    return {"event": "summary", **asdict(summary)}
