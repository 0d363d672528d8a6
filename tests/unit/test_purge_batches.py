"""purge's batches, the pure parts: when another DELETE is needed, how many a dry run
counts, which batch sizes are accepted, and the bounded statement itself."""

from __future__ import annotations

import argparse

import pytest

from snowflake_operator.ops import purge
from snowflake_worker import queue
from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue_sql import statements_for


def test_the_cli_default_is_the_worker_default() -> None:
    assert purge.DEFAULT_BATCH_ROWS == queue.PURGE_BATCH_ROWS == 10_000


@pytest.mark.parametrize(
    ("deleted", "batch", "more"),
    [(0, 10, False), (9, 10, False), (10, 10, True), (12, 10, True), (1, 1, True)],
)
def test_another_batch_only_after_a_full_one(deleted: int, batch: int, more: bool) -> None:
    # 12 of 10: an id a legacy writer added twice deletes two rows.
    assert queue.more_to_purge(deleted, batch) is more


@pytest.mark.parametrize(
    ("rows", "batch", "statements"), [(0, 10, 1), (5, 10, 1), (10, 10, 2), (25, 10, 3)]
)
def test_a_dry_run_counts_the_statements_the_purge_would_run(
    rows: int, batch: int, statements: int
) -> None:
    assert purge.batches_needed(rows, batch) == statements


def test_batch_sizes_are_whole_numbers_within_bounds() -> None:
    assert purge.batch_rows("1") == 1
    assert purge.batch_rows("1000000") == 1_000_000
    for bad in ("0", "-1", "1.5", "1e3", "", "1000001"):
        with pytest.raises(argparse.ArgumentTypeError):
            purge.batch_rows(bad)


def test_each_delete_chooses_a_bounded_id_set_and_rechecks_it() -> None:
    statement = statements_for(TableRef("db", "queue", "jobs"))["purge_completed"]
    assert statement.sql.startswith('DELETE FROM "DB"."QUEUE"."JOBS" WHERE id IN (SELECT id ')
    assert "QUALIFY ROW_NUMBER() OVER (ORDER BY completed_at, id) <= ?" in statement.sql
    assert "LIMIT" not in statement.sql  # not allowed in an IN subquery on Snowflake
    # The cutoff is bound twice (inside and outside the subquery), the batch size once.
    assert statement.names == ("offset", "limit", "offset")
    assert statement.binds({"offset": -60, "limit": 10}) == (-60, 10, -60)


def test_purge_refuses_a_batch_of_nothing() -> None:
    client = queue.QueueClient.__new__(queue.QueueClient)  # no connection: refused first
    with pytest.raises(ValueError, match="one or more"):
        client.purge_completed(60, batch_rows=0)
