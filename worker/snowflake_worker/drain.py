"""The worker's drain loop: claim batches, call the service, write outcomes back in batches.

Three kinds of task share one event loop: a claimer that keeps claimed entries in memory,
``concurrency`` callers, and a flusher that writes outcomes back ``flush_seconds`` after
the first unwritten one (or once ``flush_every`` wait). Snowflake calls are blocking, so
they run one at a time on a dedicated thread and never stall the HTTP calls.

Claims and write-backs are sized by time (batch_sizing.py): each UPDATE holds the queue
table's lock, so a worker sends about one claim per ``claim_seconds`` and one write-back
per ``flush_seconds`` however fast it goes. The next claim starts while the inbox still
holds a few claims' time of work (the low-water mark), so the callers never wait for it,
even when it waits behind a write-back on the one thread or for the table's lock.

Stopping (SIGTERM, the deadline, a fatal error, or a queue table that stayed locked through
every retry of a claim) ends claiming at once; entries not yet
started are released; calls in flight get ``grace_seconds``, after which they are cut
off and their entries released too. Every entry the worker holds is thus written back
or released before it exits.
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
from typing import Any

import httpx

from .batch_sizing import BatchStats, ClaimPolicy, Pace, mean_data_bytes
from .call_stats import CallStats
from .errors import one_line
from .outcomes import (
    BadData,
    CallResult,
    Summary,
    backoff_delay,
    classify_exception,
    classify_status,
    failed_attempt,
    parse_entry_data,
)
from .queue import ClaimedEntry, Outcome, QueueClient, Status, completed, dead_lettered, released
from .rate_limit import RequestPacer, stopped_within
from .response_storage import stored_response
from .retry_after import honour_retry_after, retry_after_seconds
from .service_call import Answer, call_service
from .service_request import ServiceRequest
from .settings import WorkerSettings
from .snowflake_errors import ended_while_waiting

log = logging.getLogger("snowflake_worker")
# While waiting for new entries (SFP_IDLE_WAIT_SECONDS), one claim this often: a warm
# worker picks up a new entry within this, at one small statement per interval.
IDLE_CLAIM_INTERVAL_SECONDS = 2.0


class Drainer:
    """One run of the drain loop.

    ``deadline_at`` is a ``time.monotonic()`` instant: there the run stops as SIGTERM
    would stop it, and calls still in flight ``grace_seconds`` later are cut off. The
    caller decides what it is measured from (today: the start of the run).
    """

    def __init__(
        self,
        settings: WorkerSettings,
        queue: QueueClient,
        clients: list[httpx.AsyncClient],
        *,
        deadline_at: float,
        request: ServiceRequest | None = None,
    ) -> None:
        self.settings = settings
        self.queue = queue
        self.clients = clients  # caller k uses clients[k % len]: see http_clients.py
        self.deadline_at = deadline_at
        # What each call sends (extra headers: the caller reads them at start-up).
        method, payload = settings.endpoint_method, settings.endpoint_payload
        self.request = request or ServiceRequest(method, payload)
        self.pacer = RequestPacer(settings.requests_per_second or None)
        self.calls = CallStats()  # by status class and latency, for the summary
        # One thread: at most one statement on the table per worker (the operator's Job
        # limit counts on it).
        self._db = ThreadPoolExecutor(max_workers=1, thread_name_prefix="snowflake")
        self._inbox: asyncio.Queue[ClaimedEntry | None] = asyncio.Queue()
        self._in_flight: set[asyncio.Timeout] = set()  # one per call, rescheduled on a stop
        self._cutoff: float | None = None  # loop time when calls in flight are cut off
        self._buffer: list[Outcome] = []
        self._first_buffered = 0.0
        self._stopping = asyncio.Event()
        self._policy = ClaimPolicy(
            first=settings.claim_batch,
            seconds=settings.claim_seconds,
            maximum=settings.claim_max,
            lease_seconds=settings.lease_seconds,
            concurrency=settings.concurrency,
            data_bytes=settings.claim_bytes,
        )
        self._pace = Pace(settings.concurrency)
        self._claim_seconds = 0.0  # the last claim's time, waits for the thread and lock included
        self._entry_bytes: float | None = None  # the last claim's data per entry
        self.batches = BatchStats()
        self._closing = False
        self._stop_reason = "queue_empty"
        self.fatal_error: str | None = None
        self.claimed = self.completed = self.failed = self.released = 0
        self.not_applied = self.http_calls = self.http_retries = 0
        self.unwritten: list[Outcome] = []

    # -- control ----------------------------------------------------------------------

    def request_stop(self, reason: str = "sigterm") -> None:
        """Claim no more; calls in flight get the grace period, then are cut off."""
        if self._stopping.is_set():
            return
        grace = self.settings.grace_seconds
        log.info("stop requested: claiming no more entries", extra={"reason": reason})
        self._stop_reason = reason
        self._stopping.set()
        self._cutoff = asyncio.get_running_loop().time() + grace
        for call in self._in_flight:
            call.reschedule(self._cutoff)

    def _fail_fatally(self, message: str) -> None:
        if self.fatal_error is None:
            self.fatal_error = message
            log.error(message)
        self.request_stop("fatal")

    async def _db_call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._db, lambda: fn(*args, **kwargs))

    # -- the three loops --------------------------------------------------------------

    async def _claim_loop(self) -> str | None:
        """Claim until stopped (None) or there is nothing more to claim (why not). An
        empty queue ends it at once, or after SFP_IDLE_WAIT_SECONDS without a new entry."""
        s = self.settings
        empty_since: float | None = None
        while not self._stopping.is_set():
            if self.claimed >= s.max_entries:
                return "budget"
            pace = self._pace.per_second
            if self._inbox.qsize() >= self._policy.low_water(pace, self._claim_seconds):
                await asyncio.sleep(0.01)  # enough in hand: keep leases short
                continue
            size = self._policy.size(
                pace,
                budget=s.max_entries - self.claimed,
                seconds_left=self.deadline_at - time.monotonic(),
                claim_seconds=self._claim_seconds,
                entry_bytes=self._entry_bytes,
            )
            started = time.monotonic()
            batch = await self._db_call(
                self.queue.claim, size, max_attempts=s.max_attempts, processor_id=s.processor_id
            )
            self._claim_seconds = time.monotonic() - started
            self.batches.claimed(size)
            if not batch:
                empty_since = time.monotonic() if empty_since is None else empty_since
                waited = time.monotonic() - empty_since
                if waited >= s.idle_wait_seconds:
                    return "queue_empty"
                await self._pause(min(IDLE_CLAIM_INTERVAL_SECONDS, s.idle_wait_seconds - waited))
                continue
            empty_since = None
            self._entry_bytes = mean_data_bytes([entry.data for entry in batch])
            self.claimed += len(batch)
            log.debug(
                "claimed",
                extra={"entries": len(batch), "asked": size, "seconds": self._claim_seconds},
            )
            for entry in batch:
                self._inbox.put_nowait(entry)
        return None

    async def _pause(self, seconds: float) -> None:
        """Sleep, but wake at once when a stop is requested."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), seconds)

    async def _call_loop(self, client: httpx.AsyncClient) -> None:
        while (entry := await self._inbox.get()) is not None:
            if self._stopping.is_set():
                self._record(released(entry))  # never started: hand it back untouched
                continue
            started = time.monotonic()
            self._record(await self._settle(entry, client))
            self._pace.record(time.monotonic() - started)

    async def _flush_loop(self) -> None:
        """Never cancelled mid-write: a cancelled write-back could be lost or left uncounted."""
        s = self.settings
        while not self._closing:
            await asyncio.sleep(min(0.1, s.flush_seconds))
            due = self._buffer and time.monotonic() - self._first_buffered >= s.flush_seconds
            if len(self._buffer) >= s.flush_every or due:
                await self._flush()

    # -- one entry --------------------------------------------------------------------

    async def _settle(self, entry: ClaimedEntry, client: httpx.AsyncClient) -> Outcome:
        """The entry's outcome, whatever happens while it is processed."""
        cut = asyncio.timeout_at(self._cutoff)
        try:
            async with cut:
                self._in_flight.add(cut)
                try:
                    return await self._process(entry, client)
                finally:
                    self._in_flight.discard(cut)
        except TimeoutError as exc:
            if cut.expired():  # cut off by the grace period: the service never answered
                return released(entry)
            return self._unexpected(entry, exc)
        except asyncio.CancelledError:
            self._record(released(entry))  # a caller cancelled from outside still hands back
            raise
        except Exception as exc:
            return self._unexpected(entry, exc)

    def _unexpected(self, entry: ClaimedEntry, exc: BaseException) -> Outcome:
        """A bug or an input nobody foresaw: an attempt like any failed one, so the entry
        ends as a dead letter once its attempts are spent instead of pending forever."""
        log.error("unexpected error processing an entry", exc_info=exc, extra={"id": entry.id})
        return self._gave_up(entry, f"worker error: {type(exc).__name__}: {one_line(exc)}")

    def _gave_up(self, entry: ClaimedEntry, error: str, at_least_seconds: int = 0) -> Outcome:
        s = self.settings
        return failed_attempt(
            entry,
            error,
            max_attempts=s.max_attempts,
            release_delay_seconds=s.release_delay_seconds,
            at_least_seconds=at_least_seconds,
        )

    async def _process(self, entry: ClaimedEntry, client: httpx.AsyncClient) -> Outcome:
        s = self.settings
        try:
            data = parse_entry_data(entry.data)
        except BadData as exc:
            return dead_lettered(entry, str(exc))
        body = self.request.body(entry.id, data, s.processor_id)
        # Stable per entry, so a retried or re-delivered call is recognisable downstream.
        headers = self.request.headers(f"{self.queue.table}/{entry.id}")
        attempt, detail, release_after = 0, "", 0
        while True:
            attempt += 1
            if not await self.pacer.wait_turn(self._stopping):  # stopped while waiting
                if attempt == 1:
                    return released(entry)  # never called: the attempt does not count
                return self._gave_up(entry, detail, release_after)
            result, detail, answer = await self._call(client, body, headers)
            if result is CallResult.SUCCESS and answer is not None:
                return completed(entry, stored_response(answer, s.store_response_bytes))
            if result is CallResult.PERMANENT:
                return dead_lettered(entry, detail)
            if result is CallResult.FATAL:
                self._fail_fatally(
                    f"the service at {s.endpoint_url} rejected the TLS connection ({detail}); "
                    "check that client.pem is signed by a CA the service trusts and that "
                    "ca-cert.pem is the CA of the service's certificate"
                )
                return released(entry)
            backoff = random.uniform(0, backoff_delay(attempt, s.retry_backoff_seconds))  # noqa: S311
            wish = retry_after_seconds(answer.retry_after, datetime.now(UTC)) if answer else None
            retry = honour_retry_after(wish, backoff, s.retry_after_max_seconds)
            if retry.pause_seconds:
                self.pacer.hold(retry.pause_seconds)  # the service means every call
            release_after, wait = retry.release_seconds, retry.wait_seconds
            if wait is None or attempt > s.request_retries or self._stopping.is_set():
                return self._gave_up(entry, detail, release_after)
            self.http_retries += 1
            if await stopped_within(wait, self._stopping):  # no new call once stopping
                return self._gave_up(entry, detail, release_after)

    async def _call(
        self, client: httpx.AsyncClient, body: Any, headers: dict[str, str]
    ) -> tuple[CallResult, str, Answer | None]:
        """One call: what it means for the entry, a one-line detail for its error, and the
        answer (None when none came)."""
        s = self.settings
        self.http_calls += 1
        started = time.monotonic()
        try:
            answer = await call_service(
                client,
                self.request.method,
                s.endpoint_url,
                json=body,
                headers=headers,
                timeout_seconds=s.request_timeout_seconds,
                keep_bytes=s.store_response_bytes,
            )
        except httpx.HTTPError as exc:
            self.calls.record(None, time.monotonic() - started)
            return classify_exception(exc), f"{type(exc).__name__}: {exc}"[:500], None
        self.calls.record(answer.status_code, time.monotonic() - started)
        result = classify_status(answer.status_code)
        if result is CallResult.SUCCESS:
            return result, "", answer
        return result, f"HTTP {answer.status_code}: {answer.text}", answer

    def _record(self, outcome: Outcome) -> None:
        if not self._buffer:
            self._first_buffered = time.monotonic()
        self._buffer.append(outcome)

    async def _flush(self) -> None:
        batch, self._buffer = self._buffer, []
        if not batch:
            return
        started = time.monotonic()
        try:
            landed = await self._db_call(
                self.queue.apply_outcomes, batch, self.settings.processor_id
            )
        except Exception as exc:
            # Keep them: the next flush retries. If Snowflake never comes back, the lease
            # expires and the operator hands the entries out again (at-least-once).
            log.warning("write-back failed; will retry", extra={"error": one_line(exc)})
            self._buffer = batch + self._buffer
            return
        self.batches.wrote_back(len(batch))
        log.debug(
            "wrote back",
            extra={"outcomes": len(batch), "seconds": round(time.monotonic() - started, 3)},
        )
        self._count(landed)
        skipped = len(batch) - len(landed)
        self.not_applied += skipped
        if skipped:
            log.warning(
                "some outcomes were not applied: their lease was recovered",
                extra={"skipped": skipped},
            )

    def _count(self, landed: list[Outcome]) -> None:
        """Only outcomes that landed: the operator adds these into the resource's totals."""
        for outcome in landed:
            if outcome.status is Status.COMPLETED:
                self.completed += 1
            elif outcome.status is Status.FAILED:
                self.failed += 1
                # On-call's trace of a dead letter: its id and error, never its data.
                log.warning(
                    "entry dead-lettered",
                    extra={"id": outcome.entry_id, "error": outcome.stored_error},
                )
            else:
                self.released += 1

    # -- whole run --------------------------------------------------------------------

    async def run(self) -> Summary:
        s = self.settings
        started, cpu_started = time.monotonic(), time.process_time()
        loop = asyncio.get_running_loop()
        deadline = loop.call_later(
            max(0.0, self.deadline_at - time.monotonic()), self.request_stop, "deadline"
        )
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.request_stop)
        callers = [
            asyncio.create_task(self._call_loop(self.clients[k % len(self.clients)]))
            for k in range(s.concurrency)
        ]
        flusher = asyncio.create_task(self._flush_loop())
        try:
            try:  # returns soon after a stop: a claim under way lands, then is released
                finished = await self._claim_loop()
            except Exception as exc:
                finished = None
                if ended_while_waiting(exc):  # every retry waited out its bound: not a fault
                    log.warning(
                        "the queue table stayed locked: claiming no more",
                        extra={"error": one_line(exc)},
                    )
                    self.request_stop("table_busy")
                else:
                    self._fail_fatally(f"claiming from Snowflake failed: {one_line(exc)}")
            if finished is not None and not self._stopping.is_set():  # a stop's reason wins
                self._stop_reason = finished
            for _ in callers:
                self._inbox.put_nowait(None)
            await self._wait_for_callers(callers)
        finally:
            deadline.cancel()
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
            cpu_seconds=round(time.process_time() - cpu_started, 3),
            batches=self.batches.as_summary(self._pace.per_second),
            **self.calls.summary(),
        )

    async def _wait_for_callers(self, callers: list[asyncio.Task[None]]) -> None:
        """Callers end on their own: their calls finish, or are cut off after a stop.
        Whatever a failed caller left in the inbox is released."""
        for result in await asyncio.gather(*callers, return_exceptions=True):
            if isinstance(result, BaseException):
                log.error("a caller failed", exc_info=result)
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
