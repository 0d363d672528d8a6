"""What the operator remembers about one SnowflakeProcessor between polls (in kopf's
per-object memo): its Snowflake connection, timing, and what it already reported."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from snowflake_operator.poll.certificate_bundle import BundleCheck, CertificatesOutcome
from snowflake_operator.poll.idle_gate import IdleGate
from snowflake_operator.spec.model import Certificates
from snowflake_worker.queue import QueueClient


@dataclass
class ProcessorState:
    next_poll: float = 0.0  # monotonic time of the next poll
    failures: int = 0  # consecutive failed polls (for backoff)
    generation: int | None = None  # metadata.generation of the spec last polled
    wake: asyncio.Event = field(default_factory=asyncio.Event)  # set: poll now (spec changed)
    written_status: dict[str, Any] | None = None  # the status as last written (None: unknown)
    status_written: float = 0.0  # when (monotonic)
    queue: QueueClient | None = None
    connection: Any = None
    connection_key: str = ""
    launched: dict[str, float] = field(default_factory=dict)  # name -> when, until indexed
    certificates_fingerprint: str = ""  # S3 versions synced into the Secret
    certificates_check: BundleCheck | None = None  # what the synced files hold
    certificates_outcome: CertificatesOutcome | None = None  # of the last check ...
    certificates_checked: float = 0.0  # ... made then (monotonic) ...
    certificates_source: Certificates | None = None  # ... for this spec.certificates
    last_events: dict[str, tuple[str, float]] = field(default_factory=dict)
    unknown_fields: tuple[str, ...] = ()  # spec fields left out, as last reported
    statements_reported: Counter[str] = field(default_factory=Counter)
    idle: IdleGate = field(default_factory=IdleGate)

    def new_statements(self) -> Counter[str]:
        """Statements issued since the last call (for the metrics counter)."""
        if self.queue is None:
            return Counter()
        current = Counter(self.queue.statements)
        delta = current - self.statements_reported
        self.statements_reported = current
        return delta

    async def sleep_until_due(self) -> None:
        """Until the next poll is due, or at once when the spec changes (``wake``)."""
        delay = max(0.0, self.next_poll - time.monotonic())
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wake.wait(), delay)

    def schedule(self, now: float, interval: float, max_backoff: float, failed: bool) -> float:
        """Next poll after ``interval``, doubled per consecutive failure up to max_backoff."""
        self.failures = self.failures + 1 if failed else 0
        delay = interval if not failed else min(max_backoff, interval * 2**self.failures)
        self.next_poll = now + delay
        return delay

    def should_post(self, reason: str, message: str, now: float, repeat_after: float) -> bool:
        """Post an event when its message changed or it was last posted long ago."""
        last = self.last_events.get(reason)
        if last is not None and last[0] == message and now - last[1] < repeat_after:
            return False
        self.last_events[reason] = (message, now)
        return True

    def unfinished_with_launches(
        self, indexed: set[str], all_indexed: set[str], now: float
    ) -> set[str]:
        """Jobs launched moments ago may not be in the watch-backed index yet: count them."""
        for name in [n for n in self.launched if n in all_indexed or now - self.launched[n] > 600]:
            del self.launched[name]
        return indexed | set(self.launched)

    def drop_connection(self) -> None:
        if self.connection is not None:
            with contextlib.suppress(Exception):
                self.connection.close()
        self.connection = self.queue = None
        self.connection_key = ""
        self.statements_reported = Counter()


def connection_key(snowflake_spec: dict[str, Any], secrets: dict[str, Any]) -> str:
    """Changes when anything that shapes the connection changes (secrets by hash only)."""
    material = json.dumps([snowflake_spec, sorted(secrets)], sort_keys=True, default=str)
    digest = hashlib.sha256(material.encode())
    for key in sorted(secrets):
        digest.update(str(secrets[key]).encode())
    return digest.hexdigest()
