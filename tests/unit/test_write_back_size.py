"""How many write-back statements a flush sends: the worker's chunking and the operator's
lock budget read one definition (write_back_size.py), so the Job limit counts every UPDATE
a flush of stored answers really holds the table's lock with."""

from __future__ import annotations

import pytest

from snowflake_operator.poll.job_count import job_limit, spec_write_backs_per_flush
from snowflake_worker.queue import ClaimedEntry, Outcome, _json_batches, completed, released
from snowflake_worker.write_back_size import (
    MAX_BIND_BYTES,
    PLAIN_OUTCOME_BYTES,
    outcome_bytes_max,
    outcome_json,
    outcomes_per_write_back,
    write_backs_per_flush,
)
from tests.support.specs import MINIMAL_SPEC, processor_spec

STORED = 16384


def _entry(i: int) -> ClaimedEntry:
    return ClaimedEntry(id=f"{i:064d}", data="{}", retry_count=0, claim_token="c" * 32)


def _statements(outcomes: list[Outcome]) -> int:
    """What the worker sends for one flush: one UPDATE per bind-sized batch."""
    return len(list(_json_batches(outcomes, Outcome.as_json)))


@pytest.mark.parametrize(
    ("answer", "sent"),
    [
        ("x" * STORED, 162),  # ASCII: 16 KB of JSON each, 32 per statement
        ("\u00e9" * (STORED // 2), 500),  # two UTF-8 bytes, six of JSON (\u00e9): x3
        ("\x01" * STORED, 1000),  # control characters: every byte six of JSON, the worst
    ],
)
def test_a_flush_never_sends_more_write_backs_than_the_budget_counts(
    answer: str, sent: int
) -> None:
    flush = [completed(_entry(i), answer) for i in range(5000)]
    assert _statements(flush) == sent
    assert sent <= write_backs_per_flush(5000, STORED) == 1000  # the worst case, exactly


def test_the_widest_outcome_is_as_wide_as_the_budget_says() -> None:
    for plain in (released(_entry(1), error=None, delay_seconds=3600), completed(_entry(1))):
        assert PLAIN_OUTCOME_BYTES - 4 <= len(outcome_json(plain.as_json())) <= PLAIN_OUTCOME_BYTES
    worst = completed(_entry(1), "\x01" * STORED)
    assert (
        outcome_bytes_max(STORED) - 4
        <= len(outcome_json(worst.as_json()))
        <= outcome_bytes_max(STORED)
    )


def test_plain_outcomes_of_a_default_flush_take_two_statements() -> None:
    flush = [completed(_entry(i)) for i in range(5000)]
    assert _statements(flush) == write_backs_per_flush(5000, 0) == 2
    assert outcomes_per_write_back(0) * (PLAIN_OUTCOME_BYTES + 1) <= MAX_BIND_BYTES


def test_an_answer_too_big_for_any_budget_is_refused() -> None:
    with pytest.raises(ValueError, match="store_response_bytes must be 0-16384"):
        outcome_bytes_max(STORED + 1)
    with pytest.raises(ValueError, match="flush_every must be at least 1"):
        write_backs_per_flush(0, 0)


def test_the_job_limit_falls_when_answers_are_stored() -> None:
    plain = processor_spec(MINIMAL_SPEC)
    storing = processor_spec(MINIMAL_SPEC, endpoint={"storeResponseBytes": STORED})
    assert spec_write_backs_per_flush(storing) == 1000
    # One Job: 0.35 s x (1/15 + 1000/10) = 35 s of lock per second: more than the lock.
    assert job_limit(storing) == 1 < job_limit(plain) == 6
    # Fewer outcomes per flush: 500 -> 100 statements, still more than one Job's share.
    smaller = processor_spec(
        MINIMAL_SPEC,
        endpoint={"storeResponseBytes": 1024},
        job={"flushEvery": 100, "maxActiveJobs": 19},
    )
    # 100 outcomes of at most 6,333 bytes: two statements; 0.35 x (1/15 + 2/10) per Job
    assert spec_write_backs_per_flush(smaller) == 2
    assert job_limit(smaller) == 6
