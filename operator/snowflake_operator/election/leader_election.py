"""Which operator replica acts: leader election on a coordination.k8s.io Lease, the way
Kubernetes' own controllers elect theirs (client-go's leaderelection, used by
kube-controller-manager, kube-scheduler and controller-runtime).

Every replica is a candidate. The one whose identity the Lease holds acts; the others stand
by, trying every ``retry`` seconds. The holder renews every ``retry`` seconds; once it could
not renew for ``renew_deadline`` seconds it stops acting (``leading()`` turns False, which
fences off Job launches at once) and the process exits to stand by again. Another candidate
takes the Lease only after seeing the record unchanged for the record's leaseDurationSeconds,
measured on its own clock from when it first saw that record (never from renewTime, written
by another machine's clock). Since ``renew_deadline < lease``, a holder cut off from the API
server has stopped acting before anyone may take over. A holder that stops normally releases
the Lease (empty holder), and a standby takes it at its next try.

The decisions are pure (:func:`next_record`); :class:`Candidate` keeps what one replica has
seen and talks to the Lease through a :class:`LeaseStore` (lease_store.py on the API
server).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Protocol

from snowflake_worker.errors import one_line

log = logging.getLogger("snowflake_operator")

JITTER = 1.2  # candidates wait retry * (1 .. JITTER) between tries, as client-go does


@dataclass(frozen=True)
class LeaseRecord:
    """The Lease's spec: who holds it and since when."""

    holder: str  # spec.holderIdentity; empty: released
    lease_seconds: int  # spec.leaseDurationSeconds
    acquire_time: datetime | None = None
    renew_time: datetime | None = None
    transitions: int = 0  # spec.leaseTransitions: how often the holder changed

    @property
    def held(self) -> bool:
        return bool(self.holder)


@dataclass(frozen=True)
class ElectionTiming:
    """client-go's defaults: lease 15 s, renew deadline 10 s, retry 2 s."""

    lease_seconds: float = 15.0
    renew_deadline_seconds: float = 10.0
    retry_seconds: float = 2.0

    def problem(self) -> str | None:
        """Why these durations cannot keep two replicas from acting at once, or None."""
        if self.lease_seconds <= self.renew_deadline_seconds:
            return (
                "the lease duration must exceed the renew deadline, or a holder cut off from "
                "the API server could still act after another replica took over"
            )
        if self.renew_deadline_seconds <= self.retry_seconds * JITTER:
            return (
                f"the renew deadline must exceed {JITTER} x the retry period, or one slow "
                "renewal would cost the lease"
            )
        if self.retry_seconds <= 0:
            return "the retry period must be positive"
        return None


def next_record(
    current: LeaseRecord | None,
    me: str,
    now: datetime,
    unchanged_for: float,
    lease_seconds: int,
) -> LeaseRecord | None:
    """The record that makes ``me`` the holder, or None while another candidate holds the
    Lease and has not let it expire (``unchanged_for``: seconds this candidate has seen the
    current record unchanged, on its own clock)."""
    if current is None:
        return LeaseRecord(me, lease_seconds, now, now, 0)
    if current.holder == me:
        return replace(current, lease_seconds=lease_seconds, renew_time=now)
    if current.held and unchanged_for < current.lease_seconds:
        return None
    return LeaseRecord(me, lease_seconds, now, now, current.transitions + 1)


def released(record: LeaseRecord, now: datetime) -> LeaseRecord:
    """What a holder writes when it stops: nobody holds the Lease, and it expires at once."""
    return LeaseRecord("", 1, now, now, record.transitions)


class LeaseStore(Protocol):
    """The Lease object; every write is conditional on the version that was read."""

    def read(self) -> tuple[LeaseRecord, str] | None:
        """The record and its resourceVersion; None when there is no Lease yet."""
        ...

    def create(self, record: LeaseRecord) -> str | None:
        """The new resourceVersion; None when another candidate created it first."""
        ...

    def update(self, record: LeaseRecord, version: str) -> str | None:
        """The new resourceVersion; None when the Lease changed since ``version``."""
        ...


class Candidate:
    """One replica's view of the election. Thread-safe: the renewal thread writes, poll
    threads ask :meth:`leading` before every launch."""

    def __init__(
        self,
        identity: str,
        store: LeaseStore,
        timing: ElectionTiming,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.identity = identity
        self.store = store
        self.timing = timing
        self._clock = clock
        self._now = wall_clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._observed: LeaseRecord | None = None
        self._observed_at = 0.0  # when this candidate first saw _observed (its clock)
        self._renewed_at: float | None = None  # when the last successful write was sent
        self._version: str | None = None  # the Lease's resourceVersion after that write
        self._stepped_down = False

    def try_acquire_or_renew(self) -> bool:
        """One attempt; True when this candidate holds the Lease now. A holder renews with
        one request (a write conditional on the version it wrote last); it reads the Lease
        only when that fails."""
        if self._stepped_down:
            return False
        sent = self._clock()
        try:
            written = self._renew(sent) or self._acquire(sent)
        except Exception as exc:  # the API server unreachable or refusing: try again later
            log.warning("lease not acquired or renewed", extra={"error": one_line(exc)})
            return False
        return written

    def _renew(self, sent: float) -> bool:
        with self._lock:
            record, version = self._observed, self._version
        if record is None or version is None or record.holder != self.identity:
            return False
        renewed = replace(record, renew_time=self._now())
        new_version = self.store.update(renewed, version)
        if new_version is not None:
            self._written(renewed, new_version, sent)
        return new_version is not None

    def _acquire(self, sent: float) -> bool:
        found = self.store.read()
        record = None if found is None else found[0]
        self._observe(record, sent)
        if record is not None and record.held and record.holder != self.identity:
            with self._lock:
                self._renewed_at = self._version = None  # another replica holds it: stop now
        wanted = next_record(
            record,
            self.identity,
            self._now(),
            sent - self._observed_at,
            round(self.timing.lease_seconds),
        )
        if wanted is None:
            return False
        if found is None:
            version = self.store.create(wanted)
        else:
            version = self.store.update(wanted, found[1])
        if version is not None:
            self._written(wanted, version, sent)
        return version is not None

    def _written(self, record: LeaseRecord, version: str, sent: float) -> None:
        with self._lock:
            if self._renewed_at is None:
                log.info("leading: this replica acts", extra={"identity": self.identity})
            self._renewed_at = sent
            self._observed, self._observed_at, self._version = record, sent, version

    def _observe(self, record: LeaseRecord | None, at: float) -> None:
        with self._lock:
            if record == self._observed:
                return
            before = self._observed
            if (
                record is not None
                and record.held
                and (before is None or before.holder != record.holder)
            ):
                log.info("the lease is held", extra={"holder": record.holder})
            self._observed, self._observed_at = record, at

    def leading(self) -> bool:
        """Whether this replica may act now: it renewed within the renew deadline (counted
        from when that renewal was sent) and has not stepped down."""
        with self._lock:
            renewed = self._renewed_at
            return (
                not self._stepped_down
                and renewed is not None
                and self._clock() - renewed < self.timing.renew_deadline_seconds
            )

    @property
    def stepped_down(self) -> bool:
        return self._stepped_down

    def step_down(self) -> None:
        """Stop acting at once, then release the Lease if this replica still holds it, so a
        standby takes over at its next try instead of after the lease duration."""
        with self._lock:
            self._stepped_down = True
            self._renewed_at = self._version = None
        try:
            found = self.store.read()
            mine = found is not None and found[0].holder == self.identity
            if found is not None and mine:
                version = self.store.update(released(found[0], self._now()), found[1])
                if version is not None:
                    log.info("lease released", extra={"identity": self.identity})
        except Exception as exc:  # the standby takes over when the lease expires instead
            log.warning("lease not released", extra={"error": one_line(exc)})


def wait_until_leading(candidate: Candidate, stop: threading.Event) -> bool:
    """Stand by until this replica holds the Lease (True) or ``stop`` is set (False)."""
    while not stop.is_set():
        if candidate.try_acquire_or_renew():
            return True
        stop.wait(candidate.timing.retry_seconds * random.uniform(1.0, JITTER))  # noqa: S311
    return False


def keep_leading(candidate: Candidate, stop: threading.Event, on_lost: Callable[[], None]) -> None:
    """Renew every retry period until ``stop`` or the candidate steps down; once renewals
    have failed for the renew deadline, call ``on_lost`` (the operator stops) and return."""
    while not stop.wait(candidate.timing.retry_seconds):
        if candidate.stepped_down:  # stopping: the Lease was released on purpose
            return
        candidate.try_acquire_or_renew()
        if not candidate.leading() and not stop.is_set() and not candidate.stepped_down:
            log.error(
                "leader election lost: the lease was not renewed within the renew deadline",
                extra={"identity": candidate.identity},
            )
            on_lost()
            return
