"""Which statements the benchmark's Snowflake-like lock serialises (issue 12, part 1)."""

from __future__ import annotations

import pytest

from snowflake_devtools.lock_proxy import dml_target
from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue_sql import statements_for

TABLE = TableRef("DB", "QUEUE", "WORK_QUEUE")


@pytest.mark.parametrize(
    ("sql", "table"),
    [
        ('UPDATE "DB"."QUEUE"."WORK_QUEUE" SET x = 1', "DB.QUEUE.WORK_QUEUE"),
        ("update db.queue.work_queue set x = 1", "DB.QUEUE.WORK_QUEUE"),
        ('  DELETE FROM "a""b" WHERE TRUE', 'a"b'),
        ("/* tag */ MERGE INTO t USING s ON t.id = s.id", "T"),
        ("-- note\nUPDATE t SET x = 1", "T"),
        ("SELECT * FROM t", None),
        ("INSERT INTO t SELECT 1", None),
        ("SHOW TABLES", None),
        ("", None),
    ],
)
def test_dml_target(sql: str, table: str | None) -> None:
    assert dml_target(sql) == table


def test_every_queue_statement_that_changes_rows_takes_the_tables_lock() -> None:
    sql = statements_for(TABLE)
    changing = {kind for kind, text in sql.items() if dml_target(text) is not None}
    assert changing == {
        "claim",
        "write_back",
        "lease_dead_letter",
        "lease_requeue",
        "requeue_dead_letters",
        "purge_completed",
    }
    assert {dml_target(sql[kind]) for kind in changing} == {"DB.QUEUE.WORK_QUEUE"}
