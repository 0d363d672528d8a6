"""The pure parts of the queue protocol: outcomes, JSON chunking, counts, retryable errors."""

from __future__ import annotations

import json
from datetime import date
from itertools import pairwise
from typing import Any

import pytest
from snowflake.connector import errors as sf_errors

from snowflake_worker.queue import (
    ERROR_MESSAGE_LIMIT,
    ClaimedEntry,
    Outcome,
    RowAfterWrite,
    Status,
    _json_batches,
    _json_chunks,
    completed,
    dead_lettered,
    landed_outcomes,
    released,
)
from snowflake_worker.queue_records import QueueCounts
from snowflake_worker.snowflake_errors import is_transient as is_transient_snowflake_error

ENTRY = ClaimedEntry(id="e-1", data='{"a": 1}', retry_count=2, claim_token="tok-abc")

# -- outcomes -----------------------------------------------------------------------


def test_as_json_truncates_the_error_to_the_column_width() -> None:
    outcome = Outcome("e-1", "tok", Status.PENDING, error="x" * 5000, retry_increment=1)
    as_json = outcome.as_json()
    assert ERROR_MESSAGE_LIMIT == 1000
    assert as_json["error"] == "x" * 1000


def test_as_json_keeps_a_short_error_and_none() -> None:
    assert Outcome("e", "t", Status.FAILED, error="boom").as_json()["error"] == "boom"
    assert Outcome("e", "t", Status.COMPLETED).as_json()["error"] is None


def test_as_json_field_names_match_the_write_back_statement() -> None:
    as_json = Outcome("e-1", "tok", Status.PENDING, "err", 1, 30).as_json()
    assert as_json == {
        "id": "e-1",
        "token": "tok",
        "status": "pending",
        "error": "err",
        "retry_inc": 1,
        "delay": 30,
    }
    json.dumps(as_json)  # plain JSON types only


def test_completed() -> None:
    outcome = completed(ENTRY)
    assert outcome.status is Status.COMPLETED
    assert (outcome.entry_id, outcome.claim_token) == ("e-1", "tok-abc")
    assert outcome.error is None
    assert outcome.retry_increment == 0
    assert outcome.delay_seconds == 0


def test_released_without_error_does_not_count_an_attempt() -> None:
    outcome = released(ENTRY)
    assert outcome.status is Status.PENDING
    assert outcome.retry_increment == 0
    assert outcome.error is None
    assert outcome.as_json()["retry_inc"] == 0


def test_released_with_error_counts_an_attempt() -> None:
    outcome = released(ENTRY, error="HTTP 503", delay_seconds=120)
    assert outcome.status is Status.PENDING
    assert outcome.retry_increment == 1
    assert outcome.error == "HTTP 503"
    assert outcome.delay_seconds == 120
    assert outcome.claim_token == "tok-abc"


def test_dead_lettered_is_failed_and_counts_an_attempt() -> None:
    outcome = dead_lettered(ENTRY, "HTTP 400: bad request")
    assert outcome.status is Status.FAILED
    assert outcome.as_json()["status"] == "failed"
    assert outcome.error == "HTTP 400: bad request"
    assert outcome.retry_increment == 1
    assert outcome.delay_seconds == 0


# -- _json_chunks -------------------------------------------------------------------


def _items(count: int, width: int = 40) -> list[dict[str, Any]]:
    return [{"id": f"entry-{i:05d}", "pad": "p" * (width + i % 7)} for i in range(count)]


@pytest.mark.parametrize(("count", "limit"), [(1, 200), (10, 200), (500, 1024), (500, 300)])
def test_chunks_parse_stay_under_the_limit_and_keep_every_item_in_order(
    count: int, limit: int
) -> None:
    items = _items(count)
    chunks = list(_json_chunks(items, limit=limit))
    assert chunks
    rebuilt: list[dict[str, Any]] = []
    for chunk in chunks:
        assert len(chunk.encode()) <= limit, len(chunk)
        parsed = json.loads(chunk)
        assert isinstance(parsed, list)
        assert parsed, "no empty chunk"
        rebuilt.extend(parsed)
    assert rebuilt == items


def test_chunks_split_when_needed_and_not_otherwise() -> None:
    items = _items(100)
    assert len(list(_json_chunks(items))) == 1  # default 512 KiB limit
    assert len(list(_json_chunks(items, limit=1000))) > 1


def test_chunks_are_filled_greedily() -> None:
    items = _items(200)
    limit = 700
    chunks = list(_json_chunks(items, limit=limit))
    # Each chunk but the last could not have taken the next item (the size estimate
    # is one byte conservative, hence ``limit - 1``).
    for chunk, following in pairwise(chunks):
        next_item = json.dumps(json.loads(following)[0], separators=(",", ":"))
        assert len(chunk) + 1 + len(next_item) > limit - 1


def test_chunks_with_non_ascii_stay_under_the_byte_limit() -> None:
    items = [{"id": str(i), "error": "ünïcødé ✓" * 20} for i in range(50)]
    limit = 1500
    chunks = list(_json_chunks(items, limit=limit))
    assert [item for chunk in chunks for item in json.loads(chunk)] == items
    for chunk in chunks:
        assert len(chunk.encode("utf-8")) <= limit


def test_no_items_no_chunks() -> None:
    assert list(_json_chunks([])) == []


def test_chunks_serialise_unknown_types_as_text() -> None:
    (chunk,) = _json_chunks([{"id": "a", "day": date(2024, 5, 1)}])
    assert json.loads(chunk) == [{"id": "a", "day": "2024-05-01"}]


# -- QueueCounts --------------------------------------------------------------------


def test_batches_carry_their_items_with_the_text() -> None:
    items = [{"n": i, "pad": "x" * 40} for i in range(30)]
    batches = list(_json_batches(items, lambda item: item, limit=200))
    assert len(batches) > 1
    assert [item for batch, _ in batches for item in batch] == items
    for batch, text in batches:
        assert json.loads(text) == batch


# -- landed_outcomes ----------------------------------------------------------------


def _claimed(entry_id: str, claim: str = "mine") -> ClaimedEntry:
    return ClaimedEntry(id=entry_id, data="{}", retry_count=0, claim_token=claim)


def _row(entry_id: str, status: str, processor: str | None = "me", **kw: Any) -> RowAfterWrite:
    return RowAfterWrite(entry_id, status, processor, kw.get("token"), kw.get("error"))


def test_outcomes_whose_rows_show_this_write_landed() -> None:
    outcomes = [
        completed(_claimed("a")),
        dead_lettered(_claimed("b"), "HTTP 422: no"),
        released(_claimed("c"), error="HTTP 503", delay_seconds=60),
        released(_claimed("d")),
    ]
    rows = [
        _row("a", "completed"),
        _row("b", "failed", error="HTTP 422: no"),
        _row("c", "pending", error="HTTP 503"),
        _row("d", "pending"),
    ]
    assert landed_outcomes(outcomes, rows, "me", changed=4) == outcomes


def test_rows_taken_over_by_lease_recovery_did_not_land() -> None:
    outcomes = [
        completed(_claimed("requeued")),
        completed(_claimed("reclaimed")),
        completed(_claimed("finished-by-other")),
        dead_lettered(_claimed("lease-dead"), "HTTP 422: no"),
        released(_claimed("requeued-too")),
        completed(_claimed("mine")),
    ]
    rows = [
        _row("requeued", "pending", processor=None),  # lease requeue clears the processor
        _row("reclaimed", "processing", processor="other", token="theirs"),
        _row("finished-by-other", "completed", processor="other"),
        _row("lease-dead", "failed", error="lease expired after 900 s; attempts exhausted"),
        _row("requeued-too", "pending", processor=None),
        _row("mine", "completed"),
    ]
    assert landed_outcomes(outcomes, rows, "me", changed=1) == [outcomes[-1]]


def test_an_entry_claimed_twice_counts_once_by_its_latest_outcome() -> None:
    old = completed(_claimed("a", claim="first"))
    new = released(_claimed("a", claim="second"))
    assert landed_outcomes([old, new], [_row("a", "pending")], "me", changed=1) == [new]


def test_never_more_outcomes_than_rows_changed() -> None:
    outcomes = [completed(_claimed("a")), completed(_claimed("b"))]
    rows = [_row("a", "completed"), _row("b", "completed")]
    assert landed_outcomes(outcomes, rows, "me", changed=1) == outcomes[:1]


def test_a_missing_row_did_not_land() -> None:
    assert landed_outcomes([completed(_claimed("gone"))], [], "me", changed=0) == []


def test_queue_counts_total_excludes_eligible() -> None:
    counts = QueueCounts(
        eligible=5,
        pending=8,
        processing=3,
        completed=100,
        failed=2,
        oldest_pending_age_seconds=None,
    )
    assert counts.total == 113


# -- is_transient_snowflake_error ---------------------------------------------------


def test_lock_waiters_exceeded_is_transient() -> None:
    assert is_transient_snowflake_error(sf_errors.ProgrammingError(msg="x", errno=625))


@pytest.mark.parametrize(
    "exc",
    [
        sf_errors.OperationalError(msg="connection lost"),
        sf_errors.InterfaceError(msg="socket closed"),
    ],
)
def test_lost_connections_are_transient(exc: Exception) -> None:
    assert is_transient_snowflake_error(exc)


@pytest.mark.parametrize(
    "exc",
    [
        sf_errors.ProgrammingError(msg="Object does not exist", errno=2003),
        sf_errors.ProgrammingError(msg="SQL compilation error", errno=1003),
        sf_errors.DatabaseError(msg="x", errno=626),
        ValueError("not a Snowflake error"),
    ],
)
def test_other_errors_are_not_transient(exc: Exception) -> None:
    assert not is_transient_snowflake_error(exc)


def test_emulator_write_conflict_is_transient() -> None:
    assert is_transient_snowflake_error(
        RuntimeError("TransactionContext Error: Conflict on update")
    )
