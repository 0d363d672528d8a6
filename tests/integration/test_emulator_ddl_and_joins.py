"""More of Snowflake's rules the emulator's model keeps (fakesnow does not), through the
real connector: a text column's length may not decrease; a joined UPDATE that joins one
target row to several source rows fails under ERROR_ON_NONDETERMINISTIC_UPDATE (by default
it updates the row once and counts it once); the role that creates a table owns it, and
only its owner may alter or drop it. And the worker's write-back under that parameter, on
a table where a legacy writer added one id twice."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from snowflake.connector.errors import ProgrammingError

from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue import QueueClient, completed, distinct_outcomes
from snowflake_worker.queue_sql import statements_for
from snowflake_worker.write_back_size import outcome_json
from tests.support.queues import fetch_rows
from tests.support.snowflake import location
from tests.support.sql_tables import column_names, query, shown_table

pytestmark = pytest.mark.integration

STRICT = {"ERROR_ON_NONDETERMINISTIC_UPDATE": True, "CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED": False}
TWO_SOURCES_FOR_A = (
    "UPDATE {table} q SET v = s.v FROM (SELECT 'a' AS id, 'one' AS v "
    "UNION ALL SELECT 'a', 'two' UNION ALL SELECT 'b', 'bee') s WHERE q.id = s.id"
)


def _length(connection: Any, table: TableRef, column: str) -> int:
    rows = query(
        connection,
        f'SELECT character_maximum_length FROM "{table.database}".information_schema.columns '
        "WHERE table_schema = ? AND table_name = ? AND column_name = ?",
        (table.schema, table.table, column),
    )
    return int(rows[0][0])


# -- a text column's length --------------------------------------------------------------


@pytest.mark.parametrize(
    "change",
    [
        "ALTER TABLE {table} ALTER COLUMN id SET DATA TYPE VARCHAR(36)",
        "ALTER TABLE {table} MODIFY COLUMN id VARCHAR(36)",
        "ALTER TABLE {table} ALTER id TYPE VARCHAR(36)",
    ],
)
def test_decreasing_a_varchar_length_is_refused(
    snowflake_connect: Callable[..., Any], queue_table: TableRef, change: str
) -> None:
    connection = snowflake_connect(**location(queue_table))
    with pytest.raises(ProgrammingError) as refused:
        query(connection, change.format(table=queue_table.sql))
    assert (refused.value.errno, refused.value.sqlstate) == (40050, "22000")
    assert refused.value.raw_msg == (
        "SQL compilation error: cannot change column ID from type VARCHAR(64) to "
        "VARCHAR(36) because reducing the byte-length of a varchar is not supported."
    )
    assert _length(connection, queue_table, "ID") == 64  # unchanged


def test_a_column_without_a_length_cannot_be_given_one(
    snowflake_connect: Callable[..., Any], queue_table: TableRef
) -> None:
    connection = snowflake_connect(**location(queue_table))
    table = TableRef(queue_table.database, queue_table.schema, "FREE_TEXT")
    query(connection, f"CREATE TABLE {table.sql} (note VARCHAR)")
    with pytest.raises(ProgrammingError, match=r"from type VARCHAR\(16777216\) to VARCHAR\(10\)"):
        query(connection, f"ALTER TABLE {table.sql} ALTER COLUMN note SET DATA TYPE VARCHAR(10)")


def test_keeping_or_increasing_a_length_runs(
    snowflake_connect: Callable[..., Any], queue_table: TableRef
) -> None:
    connection = snowflake_connect(**location(queue_table))
    for length in (64, 64, 128):  # 002's first statement, run twice, then a wider id
        query(
            connection,
            f"ALTER TABLE {queue_table.sql} ALTER COLUMN id SET DATA TYPE VARCHAR({length})",
        )
    assert _length(connection, queue_table, "ID") == 128


# -- who owns a table ----------------------------------------------------------------------

OWNER = "QUEUE_OWNER"
NOT_OWNER = (3001, "42501")


def _refused_as_not_owner(connection: Any, sql: str, table: str) -> None:
    with pytest.raises(ProgrammingError) as refused:
        query(connection, sql)
    assert (refused.value.errno, refused.value.sqlstate) == NOT_OWNER
    assert refused.value.raw_msg == (
        f"SQL access control error:\nInsufficient privileges to operate on table '{table}'"
    )


def test_the_role_that_creates_a_table_owns_it_and_only_it_may_alter_it(
    snowflake_connect: Callable[..., Any], queue_table: TableRef
) -> None:
    owner = snowflake_connect(**location(queue_table), role=OWNER.lower())
    other = snowflake_connect(**location(queue_table))  # no role: SYSADMIN here
    table = TableRef(queue_table.database, queue_table.schema, "OWNED")
    query(owner, f"CREATE TABLE {table.sql} (note VARCHAR(10))")
    query(other, f"CREATE TABLE IF NOT EXISTS {table.sql} (note VARCHAR(10))")  # no change
    assert shown_table(other, table)["owner"] == OWNER
    assert shown_table(other, queue_table)["owner"] == "SYSADMIN"

    for statement in ("ALTER TABLE {t} ADD COLUMN extra INT", "DROP TABLE {t}"):
        _refused_as_not_owner(other, statement.format(t=table.sql), "OWNED")
    _refused_as_not_owner(other, f"CREATE OR REPLACE TABLE {table.sql} (x INT)", "OWNED")
    assert column_names(other, table.sql) == ["NOTE"]

    query(owner, f"ALTER TABLE {table.sql} ADD COLUMN extra INT")
    query(other, "USE ROLE queue_owner")  # the session's role is now the owner
    query(other, f"ALTER TABLE {table.sql} ADD COLUMN more INT")
    query(other, "USE ROLE ACCOUNTADMIN")  # above every role: the model lets it
    query(other, f"ALTER TABLE {table.sql} RENAME TO {table.database}.{table.schema}.KEPT")
    kept = TableRef(table.database, table.schema, "KEPT")
    assert shown_table(owner, kept)["owner"] == OWNER  # the name moved, the owner did not
    assert column_names(owner, kept.sql) == ["NOTE", "EXTRA", "MORE"]


def test_grant_ownership_moves_a_table_to_another_role(
    snowflake_connect: Callable[..., Any], queue_table: TableRef
) -> None:
    owner = snowflake_connect(**location(queue_table), role=OWNER)
    sysadmin = snowflake_connect(**location(queue_table), role="SYSADMIN")
    table = TableRef(queue_table.database, queue_table.schema, "MOVED")
    query(owner, f"CREATE TABLE {table.sql} (note VARCHAR(10))")
    _refused_as_not_owner(
        sysadmin, f"GRANT OWNERSHIP ON TABLE {table.sql} TO ROLE sysadmin", "MOVED"
    )

    query(owner, f"GRANT OWNERSHIP ON TABLE {table.sql} TO ROLE sysadmin COPY CURRENT GRANTS")
    assert shown_table(owner, table)["owner"] == "SYSADMIN"
    query(sysadmin, f"ALTER TABLE {table.sql} ADD COLUMN extra INT")
    _refused_as_not_owner(owner, f"ALTER TABLE {table.sql} ADD COLUMN more INT", "MOVED")
    query(sysadmin, f"DROP TABLE {table.sql}")


# -- multi-joined rows of a joined UPDATE ---------------------------------------------------


def _rows_a_and_b(connection: Any, table: TableRef) -> TableRef:
    target = TableRef(table.database, table.schema, "JOINED")
    query(connection, f"CREATE TABLE {target.sql} (id VARCHAR(10), v VARCHAR(10))")
    query(connection, f"INSERT INTO {target.sql} (id, v) SELECT 'a', 'x' UNION ALL SELECT 'b', 'x'")
    return target


def test_by_default_a_multi_joined_row_is_updated_once_and_counted_once(
    snowflake_connect: Callable[..., Any], queue_table: TableRef
) -> None:
    connection = snowflake_connect(**location(queue_table))
    target = _rows_a_and_b(connection, queue_table)
    cursor = connection.cursor()
    cursor.execute(TWO_SOURCES_FOR_A.format(table=target.sql))
    # "number of rows updated", "number of multi-joined rows updated" (DuckDB said 3, 0)
    assert cursor.fetchone() == (2, 1)
    rows = dict(query(connection, f"SELECT id, v FROM {target.sql}"))
    assert rows["b"] == "bee" and rows["a"] in {"one", "two"}


@pytest.mark.parametrize("how", ["login", "alter session"])
def test_under_error_on_nondeterministic_update_it_fails_with_100090(
    snowflake_connect: Callable[..., Any], queue_table: TableRef, how: str
) -> None:
    if how == "login":
        connection = snowflake_connect(**location(queue_table), session_parameters=STRICT)
    else:
        connection = snowflake_connect(**location(queue_table))
        query(connection, "ALTER SESSION SET ERROR_ON_NONDETERMINISTIC_UPDATE = TRUE")
    target = _rows_a_and_b(connection, queue_table)
    with pytest.raises(ProgrammingError) as refused:
        query(connection, TWO_SOURCES_FOR_A.format(table=target.sql))
    assert (refused.value.errno, refused.value.sqlstate) == (100090, "42P18")
    assert (
        refused.value.raw_msg == 'Duplicate row detected during DML action\nRow Values: ["a", "x"]'
    )
    assert sorted(query(connection, f"SELECT id, v FROM {target.sql}")) == [("a", "x"), ("b", "x")]
    one_each = (
        "UPDATE {table} q SET v = s.v FROM (SELECT 'a' AS id, 'one' AS v) s WHERE q.id = s.id"
    )
    query(connection, one_each.format(table=target.sql))  # one source row per target row: runs
    query(connection, "ALTER SESSION SET ERROR_ON_NONDETERMINISTIC_UPDATE = FALSE")
    query(connection, TWO_SOURCES_FOR_A.format(table=target.sql))  # the default again: runs


def test_the_write_back_never_joins_a_row_twice_even_with_duplicate_ids(
    snowflake_connect: Callable[..., Any], queue_table: TableRef
) -> None:
    """A legacy writer added id 'twice' two times (no PRIMARY KEY is enforced). The claim
    stamps both rows under one token and hands the id out once; an outcome recorded twice
    (a retried call) is written once: two target rows each join one outcome, never one row
    two outcomes, so the write-back runs under ERROR_ON_NONDETERMINISTIC_UPDATE = TRUE.
    The same outcomes not deduplicated are exactly what that parameter refuses."""
    connection = snowflake_connect(**location(queue_table), session_parameters=STRICT)
    queue = QueueClient(connection, queue_table)
    for _ in range(2):
        query(connection, f"INSERT INTO {queue_table.sql} (id, status) SELECT 'twice', 'pending'")
    queue.enqueue([("once", {"n": 1})])
    claimed = sorted(queue.claim(10, max_attempts=3, processor_id="w"), key=lambda e: e.id)
    assert [e.id for e in claimed] == ["once", "twice"]
    twice = claimed[1]
    outcomes = [completed(twice), completed(claimed[0]), completed(twice)]

    raw = statements_for(queue_table)["write_back"]
    repeated = "[" + ",".join(outcome_json(o.as_json()) for o in outcomes) + "]"
    with pytest.raises(ProgrammingError) as refused:  # what the dedupe prevents
        connection.cursor().execute(raw.sql, raw.binds({"outcomes": repeated}))
    assert refused.value.errno == 100090
    assert len(distinct_outcomes(outcomes)) == 2

    landed = queue.apply_outcomes(outcomes, "w")
    assert sorted(o.entry_id for o in landed) == ["once", "twice"]
    assert [(r["id"], r["status"]) for r in fetch_rows(queue)] == [
        ("once", "completed"),
        ("twice", "completed"),
        ("twice", "completed"),
    ]
    assert queue.statements["write_back"] == 1
