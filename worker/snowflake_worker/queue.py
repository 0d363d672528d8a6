"""The queue protocol: the only module that writes SQL against the queue table.

Every statement is a constant built from the validated, quoted table name; values are
always bound on the server (the connection must use ``paramstyle="qmark"``, as
:func:`snowflake_worker.connection.connect` opens it). Write-backs are guarded by the claim
token and ``status = 'processing'`` so a worker whose lease was recovered cannot overwrite
anyone else's work. Statements
are counted by kind (benchmarks and metrics read ``statements``). ``retry_count`` is
read through COALESCE: rows a legacy writer adds after a migration may hold NULL.
"""

from __future__ import annotations

import contextlib
import json
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypeVar

from snowflake.connector import DictCursor
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from .identifiers import TableRef
from .queue_records import DeadLetter, LeaseRecovery, QueueCounts, TableSignature
from .queue_sql import statements_for
from .snowflake_errors import is_session_lost, worth_retrying
from .write_back_size import MAX_BIND_BYTES as MAX_BIND_BYTES
from .write_back_size import outcome_json

ERROR_MESSAGE_LIMIT = 1000  # the column's width
# Rows one purge statement deletes at most (a default; purge --batch-size changes it): what
# one DELETE rewrites, and so how long it holds the table's lock, stays bounded.
PURGE_BATCH_ROWS = 10_000

T = TypeVar("T")


class Status(StrEnum):
    PENDING = "pending"
    PROCESSING = "processing"
    COMPLETED = "completed"
    FAILED = "failed"  # dead letter


@dataclass(frozen=True)
class ClaimedEntry:
    id: str
    data: Any  # the VARIANT as the connector returns it (JSON text), parsed by the worker
    retry_count: int
    claim_token: str


@dataclass(frozen=True)
class Outcome:
    """What to write back for one claimed entry."""

    entry_id: str
    claim_token: str
    status: Status
    error: str | None = None
    retry_increment: int = 0
    delay_seconds: int = 0
    result: str | None = None  # the service's answer, kept in `result` (sql/005) when set

    @property
    def stored_error(self) -> str | None:
        """The error as the column keeps it."""
        return None if self.error is None else self.error[:ERROR_MESSAGE_LIMIT]

    def as_json(self) -> dict[str, Any]:
        fields = {
            "id": self.entry_id,
            "token": self.claim_token,
            "status": self.status.value,
            "error": self.stored_error,
            "retry_inc": self.retry_increment,
            "delay": self.delay_seconds,
        }
        if self.result is not None:
            fields["result"] = self.result
        return fields


def completed(entry: ClaimedEntry, result: str | None = None) -> Outcome:
    return Outcome(entry.id, entry.claim_token, Status.COMPLETED, result=result)


def write_back_kind(outcomes: Sequence[Outcome]) -> str:
    """The write-back statement for a batch: the one that also sets `result` only when an
    outcome carries one (a table without the column never sees it)."""
    return "write_back_result" if any(o.result is not None for o in outcomes) else "write_back"


def dead_lettered(entry: ClaimedEntry, error: str) -> Outcome:
    return Outcome(entry.id, entry.claim_token, Status.FAILED, error, retry_increment=1)


def released(entry: ClaimedEntry, *, error: str | None = None, delay_seconds: int = 0) -> Outcome:
    """Back to pending. With an error the attempt counts; without (shutdown) it does not."""
    return Outcome(
        entry.id,
        entry.claim_token,
        Status.PENDING,
        error,
        retry_increment=0 if error is None else 1,
        delay_seconds=delay_seconds,
    )


@dataclass(frozen=True)
class RowAfterWrite:
    """What a write-back check reads of one row."""

    id: str
    status: str
    processor_id: str | None
    claim_token: str | None
    error_message: str | None


def landed_outcomes(
    outcomes: Sequence[Outcome], rows: Iterable[RowAfterWrite], processor_id: str, changed: int
) -> list[Outcome]:
    """Which outcomes a write-back applied, from their rows read back right after it.

    Only this worker's own write-back leaves a row in the outcome's status, with no claim
    token and this worker's ``processor_id``: lease recovery clears ``processor_id`` when
    it requeues, another worker stamps its own. A row the operator dead-lettered keeps
    ``processor_id`` but carries the lease's error, so a failed outcome must find its own.
    An entry counts once (its last outcome: a later claim's), and no more outcomes land
    than the statement changed rows.
    """
    by_id = {row.id: row for row in rows}
    landed: list[Outcome] = []
    seen: set[str] = set()
    for outcome in reversed(outcomes):
        row = by_id.get(outcome.entry_id)
        if outcome.entry_id in seen or row is None:
            continue
        seen.add(outcome.entry_id)
        matches = (
            row.status == outcome.status.value
            and row.claim_token is None
            and row.processor_id == processor_id
            and (outcome.status is not Status.FAILED or row.error_message == outcome.stored_error)
        )
        if matches:
            landed.append(outcome)
    return list(reversed(landed))[:changed]


def distinct_outcomes(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """One outcome per (entry, claim token), the last one recorded, in the order of first
    appearance: two for the same row would make the write-back join its row twice (a
    nondeterministic UPDATE, an error under ERROR_ON_NONDETERMINISTIC_UPDATE, and a changed
    count that no longer matches the outcomes)."""
    last: dict[tuple[str, str], Outcome] = {}
    for outcome in outcomes:
        last[(outcome.entry_id, outcome.claim_token)] = outcome
    return list(last.values())


def distinct_entries(entries: Iterable[ClaimedEntry]) -> list[ClaimedEntry]:
    """One entry per id: rows a legacy writer added twice under one id (no primary key is
    enforced) are claimed together under one token, and one write-back settles both."""
    seen: dict[str, ClaimedEntry] = {}
    for entry in entries:
        seen.setdefault(entry.id, entry)
    return list(seen.values())


class QueueClient:
    """Queue statements over one connector connection (not thread-safe: one caller at a time).

    With ``reconnect`` (a function returning a new connection), a lost session is
    replaced and the statement retried instead of failing every later statement.
    """

    def __init__(
        self,
        connection: Any,
        table: TableRef,
        *,
        retry_attempts: int = 6,
        retry_max_wait: float = 5.0,
        reconnect: Callable[[], Any] | None = None,
    ) -> None:
        self._connection = connection
        self._reconnect = reconnect
        self._session_lost = False
        self.table = table
        self.statements: Counter[str] = Counter()
        self.reconnects = 0

        self._retrying = Retrying(
            wait=wait_random_exponential(multiplier=0.2, max=retry_max_wait),
            stop=stop_after_attempt(retry_attempts),
            reraise=True,
        )
        if getattr(connection, "is_pyformat", False):
            raise ValueError(
                "the queue needs server-side binding: open the connection with "
                "paramstyle='qmark' (snowflake_worker.connection.connect does)"
            )
        self._sql = statements_for(table)

    # -- plumbing ---------------------------------------------------------------------

    def _execute(
        self, kind: str, params: dict[str, Any] | None, fetch: bool = False, dicts: bool = False
    ) -> Any:
        statement = self._sql[kind]
        binds = statement.binds(params)

        def attempt() -> Any:
            if self._session_lost and self._reconnect is not None:
                # Closing ends whatever the old session still runs, if the server knows it.
                with contextlib.suppress(Exception):
                    self._connection.close()
                self._connection = self._reconnect()
                self._session_lost = False
                self.reconnects += 1
            self.statements[kind] += 1
            cursor = self._connection.cursor(DictCursor) if dicts else self._connection.cursor()
            try:
                cursor.execute(statement.sql, binds or None)
                return cursor.fetchall() if fetch else cursor.rowcount
            except Exception as exc:
                self._session_lost = is_session_lost(exc)
                raise
            finally:
                cursor.close()

        can_reconnect = self._reconnect is not None
        retrying = self._retrying.copy(
            retry=retry_if_exception(
                lambda exc: worth_retrying(kind, exc, can_reconnect=can_reconnect)
            )
        )
        return retrying(attempt)

    @property
    def statement_count(self) -> int:
        return sum(self.statements.values())

    # -- worker side ------------------------------------------------------------------

    def claim(self, limit: int, *, max_attempts: int, processor_id: str) -> list[ClaimedEntry]:
        """Stamp a fresh token on up to ``limit`` eligible rows, then read them back by token.

        A retried claim reuses its token, so rows claimed by a lost first attempt are
        still read back (the batch may then hold up to twice ``limit``), never orphaned.
        """
        token = uuid.uuid4().hex
        params = {
            "token": token,
            "processor": processor_id,
            "limit": limit,
            "max_attempts": max_attempts,
        }
        attempts_before = self.statements["claim"]
        stamped = self._execute("claim", params)
        retried = self.statements["claim"] - attempts_before > 1
        if not stamped and not retried:  # a retry's 0 may follow a lost success: read back
            return []
        rows = self._execute("claim_select", {"token": token}, fetch=True)
        return distinct_entries(
            ClaimedEntry(str(row[0]), row[1], int(row[2] or 0), token) for row in rows
        )

    def write_back(self, outcomes: Sequence[Outcome]) -> int:
        """Apply outcomes in as few statements as the bind limit allows; returns rows changed.

        Rows whose token no longer matches (lease recovered, entry re-claimed) are skipped.
        """
        changed = 0
        for batch, chunk in _json_batches(distinct_outcomes(outcomes), Outcome.as_json):
            changed += int(self._execute(write_back_kind(batch), {"outcomes": chunk}) or 0)
        return changed

    def apply_outcomes(self, outcomes: Sequence[Outcome], processor_id: str) -> list[Outcome]:
        """Write outcomes back like :meth:`write_back`; return the ones that landed.

        Each statement's changed-row count is compared with its outcomes: equal (nearly
        always) means all landed, at no extra cost. Fewer (a lease recovered under this
        worker, or a retried statement whose first try had landed) or more (an id a legacy
        writer added twice) costs one SELECT of those rows, read by :func:`landed_outcomes`.
        """
        landed: list[Outcome] = []
        for batch, chunk in _json_batches(distinct_outcomes(outcomes), Outcome.as_json):
            changed = int(self._execute(write_back_kind(batch), {"outcomes": chunk}) or 0)
            if changed == len(batch):
                landed += batch
                continue
            ids = json.dumps(sorted({o.entry_id for o in batch}))
            rows = self._execute("write_back_check", {"ids": ids}, fetch=True)
            after = [RowAfterWrite(str(r[0]), *r[1:]) for r in rows]
            landed += landed_outcomes(batch, after, processor_id, changed)
        return landed

    def has_result_column(self) -> bool:
        """Whether the table has the `result` column (sql/005); no warehouse needed."""
        rows = self._execute("result_column", None, fetch=True, dicts=True)
        return any(str(row.get("column_name", "")).upper() == "RESULT" for row in rows)

    # -- operator side ----------------------------------------------------------------

    def recover_expired_leases(self, *, lease_seconds: int, max_attempts: int) -> LeaseRecovery:
        """Expired leases back to pending, or dead-lettered when that was their last attempt,
        in one statement; a second one counts the dead letters, only when it changed rows."""
        token = uuid.uuid4().hex  # a retried statement reuses it, like a claim
        params = {"lease": lease_seconds, "max_attempts": max_attempts, "recovery": token}
        attempts_before = self.statements["lease_recovery"]
        changed = int(self._execute("lease_recovery", params) or 0)
        retried = self.statements["lease_recovery"] - attempts_before > 1
        if not changed and not retried:
            return LeaseRecovery(requeued=0, dead_lettered=0)
        rows = self._execute("lease_dead_lettered", {"recovery": token}, fetch=True)
        dead = int(rows[0][0] or 0)
        return LeaseRecovery(requeued=max(changed - dead, 0), dead_lettered=dead)

    def counts(self, *, max_attempts: int) -> QueueCounts:
        row = self._execute("counts", {"max_attempts": max_attempts}, fetch=True)[0]
        eligible, pending, processing, done, failed, age, stranded, next_attempt = row
        return QueueCounts(
            eligible=int(eligible or 0),
            pending=int(pending or 0),
            processing=int(processing or 0),
            completed=int(done or 0),
            failed=int(failed or 0),
            oldest_pending_age_seconds=None if age is None else int(age),
            stranded=int(stranded or 0),
            next_attempt_seconds=None if next_attempt is None else max(int(next_attempt), 0),
        )

    def table_signature(self) -> TableSignature:
        """What changes when rows are added, removed or rewritten, read without resuming a
        warehouse: SHOW TABLES' row and byte counts plus a metadata COUNT(*). Raises
        LookupError when SHOW does not list the table (it lists at most 10,000)."""
        shown = self._execute("idle_show", None, fetch=True, dicts=True)
        match: dict[str, Any] | None = next(
            (r for r in shown if str(r.get("name", "")) == self.table.table), None
        )
        if match is None:
            raise LookupError(f"SHOW TABLES IN SCHEMA did not list {self.table}")
        (count,) = self._execute("idle_count", None, fetch=True)[0]
        return TableSignature(
            rows=int(match.get("rows") or 0), bytes=int(match.get("bytes") or 0), count=int(count)
        )

    # -- ops side ---------------------------------------------------------------------

    def enqueue(self, entries: Iterable[tuple[str, Any]]) -> int:
        """Insert (id, data) pairs in bulk; ids already in the table are left alone, and of an
        id given twice only the first counts."""
        first_by_id: dict[str, Any] = {}
        for entry_id, data in entries:
            first_by_id.setdefault(entry_id, data)
        inserted = 0
        for chunk in _json_chunks([{"id": i, "data": d} for i, d in first_by_id.items()]):
            inserted += int(self._execute("enqueue", {"entries": chunk}) or 0)
        return inserted

    def requeue_dead_letters(
        self, *, ids: Sequence[str] | None = None, error_contains: str | None = None
    ) -> int:
        """Dead letters back to pending with a fresh attempt budget."""
        params = {
            "ids": None if ids is None else json.dumps(list(ids)),
            "needle": error_contains,
        }
        return int(self._execute("requeue_dead_letters", params) or 0)

    def settled_by(self, jobs: Sequence[str]) -> dict[str, tuple[int, int]]:
        """Entries each of these Jobs completed and dead-lettered (rows whose processor_id
        is the Job's name), for the Jobs that settled any."""
        if not jobs:
            return {}
        rows = self._execute("settled_by", {"jobs": json.dumps(list(jobs))}, fetch=True)
        return {str(job): (int(done or 0), int(failed or 0)) for job, done, failed in rows}

    def count_dead_letters(
        self, ids: Sequence[str] | None = None, error_contains: str | None = None
    ) -> int:
        """How many rows ``requeue_dead_letters`` with the same filter would change."""
        params = _dead_letter_params(ids, error_contains)
        return int(self._execute("count_dead_letters", params, fetch=True)[0][0] or 0)

    def dead_letter_ids(
        self,
        ids: Sequence[str] | None = None,
        error_contains: str | None = None,
        *,
        limit: int,
    ) -> list[str]:
        """Up to ``limit`` ids (in id order) that ``requeue_dead_letters`` would change."""
        params = {**_dead_letter_params(ids, error_contains), "limit": _non_negative(limit)}
        return [str(row[0]) for row in self._execute("dead_letter_ids", params, fetch=True)]

    def recent_dead_letters(self, limit: int) -> list[DeadLetter]:
        """The ``limit`` most recently failed rows, newest first (no failed_at: last)."""
        rows = self._execute("recent_dead_letters", {"limit": _non_negative(limit)}, fetch=True)
        return [
            DeadLetter(
                id=str(row[0]),
                error_message=None if row[1] is None else str(row[1]),
                retry_count=int(row[2] or 0),
                failed_at=row[3],
            )
            for row in rows
        ]

    def existing_ids(self, ids: Sequence[str]) -> set[str]:
        """Which of ``ids`` are in the table at all, whatever their status.

        One statement per bind-sized chunk of ids (one for any list a person types).
        """
        found: set[str] = set()
        for chunk in _json_string_chunks(list(dict.fromkeys(ids))):
            rows = self._execute("existing_ids", {"ids": chunk}, fetch=True)
            found.update(str(row[0]) for row in rows)
        return found

    def count_completed_before(self, cutoff_seconds_ago: int) -> int:
        """Completed rows whose ``completed_at`` is older than the cutoff (purge's dry run)."""
        params = {"offset": -_non_negative(cutoff_seconds_ago)}
        return int(self._execute("count_completed_before", params, fetch=True)[0][0] or 0)

    def purge_completed(
        self,
        older_than_seconds: int,
        *,
        batch_rows: int = PURGE_BATCH_ROWS,
        on_batch: Callable[[int], None] | None = None,
    ) -> int:
        """DELETE completed rows whose ``completed_at`` is older than the cutoff, at most
        ``batch_rows`` ids per statement, until a statement finds fewer; returns how many.
        ``on_batch`` hears each statement's count. Rows without ``completed_at`` (legacy)
        or without an id are kept.

        One DELETE per batch holds the table's lock only as long as its batch takes, so
        claims and write-backs run between batches instead of waiting behind one long
        statement. Needs DELETE on the table: the service role from ``sql/004_grants.sql``
        does not have it (by design), so an admin role runs purge.
        """
        limit = _positive(batch_rows)
        params = {"offset": -_non_negative(older_than_seconds), "limit": limit}
        total = 0
        while True:
            deleted = int(self._execute("purge_completed", params) or 0)
            total += deleted
            if on_batch is not None:
                on_batch(deleted)
            if not more_to_purge(deleted, limit):
                return total


def more_to_purge(deleted: int, batch_rows: int) -> bool:
    """Whether another purge batch may find rows. A batch picks up to ``batch_rows`` ids and
    deletes at least one row per id, so fewer rows than that means none were left over."""
    return deleted >= batch_rows


def _dead_letter_params(ids: Sequence[str] | None, error_contains: str | None) -> dict[str, Any]:
    return {"ids": None if ids is None else json.dumps(list(ids)), "needle": error_contains}


def _positive(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"expected a whole number of one or more, got {value!r}")
    return value


def _non_negative(value: int) -> int:
    """Bound integers only: a bool, a float or a negative number is a caller's bug."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"expected a whole number of zero or more, got {value!r}")
    return value


def _json_string_chunks(items: list[str], limit: int = MAX_BIND_BYTES) -> Iterable[str]:
    """Split strings into JSON arrays whose text stays under ``limit`` bytes each."""
    chunk: list[str] = []
    size = 2
    for item in items:
        text = json.dumps(item)
        if chunk and size + len(text) + 1 > limit:
            yield "[" + ",".join(chunk) + "]"
            chunk, size = [], 2
        chunk.append(text)
        size += len(text) + 1
    if chunk:
        yield "[" + ",".join(chunk) + "]"


def _json_chunks(items: list[dict[str, Any]], limit: int = MAX_BIND_BYTES) -> Iterable[str]:
    """Split items into JSON arrays whose text stays under ``limit`` bytes each."""
    return (text for _, text in _json_batches(items, lambda item: item, limit))


def _json_batches(
    items: list[T], as_json: Callable[[T], Any], limit: int = MAX_BIND_BYTES
) -> Iterable[tuple[list[T], str]]:
    """Split items into batches whose JSON array text stays under ``limit`` bytes each."""
    batch: list[T] = []
    texts: list[str] = []
    size = 2
    for item in items:
        text = outcome_json(as_json(item))
        if texts and size + len(text) + 1 > limit:
            yield batch, "[" + ",".join(texts) + "]"
            batch, texts, size = [], [], 2
        batch.append(item)
        texts.append(text)
        size += len(text) + 1
    if texts:
        yield batch, "[" + ",".join(texts) + "]"
