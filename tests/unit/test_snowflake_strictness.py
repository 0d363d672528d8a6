"""Every statement the project can send, checked against Snowflake's documented rules.

The emulator (fakesnow) runs statements Snowflake refuses and refuses some Snowflake runs,
so passing integration tests prove little about Snowflake. Here each statement is parsed
with sqlglot's Snowflake dialect and checked against the rules the project depends on
(snowflake_devtools/snowflake_rules.py names the documentation of each):

- LIMIT / FETCH only in an uncorrelated scalar subquery ("Working with subqueries");
- no reliance on an enforced primary key: new rows only through a MERGE on id;
- times from SYSDATE() (UTC), never from a function that follows the session's time zone;
- the statements that take the table's lock are the ones TABLE_LOCK_KINDS lists.

The rules themselves are tested too, on the forms the project used to send.
"""

from __future__ import annotations

import pytest

from snowflake_devtools import snowflake_rules as rules
from snowflake_operator import queue_schema
from snowflake_operator.queue_schema import SchemaTarget
from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue_sql import TABLE_LOCK_KINDS, TEMPLATES, statements_for

TABLE = TableRef("ANALYTICS", "QUEUE", "JOBS")
PROTOCOL = {kind: statement.sql for kind, statement in statements_for(TABLE).items()}
SQL_FILES = {
    f"{name}#{n}": statement
    for name in sorted(p.name for p in queue_schema.SQL_DIR.glob("*.sql"))
    for n, statement in enumerate(
        queue_schema.render(name, SchemaTarget(TABLE, warehouse="WH", service_role="SVC"))
    )
}
EVERY_STATEMENT = {**PROTOCOL, **SQL_FILES}

# What the project sent before (kept to prove the rules catch them).
CLAIM_WITH_LIMIT_IN_SUBQUERY = (
    "UPDATE t SET status = 'processing', claim_token = ? WHERE id IN (SELECT id FROM t "
    "WHERE status = 'pending' ORDER BY created_at, id LIMIT ?) AND status = 'pending'"
)
ENQUEUE_WITH_NOT_EXISTS = (
    "INSERT INTO t (id, data) SELECT s.id, s.data FROM (SELECT 'a' AS id, NULL AS data) s "
    "WHERE NOT EXISTS (SELECT 1 FROM t q WHERE q.id = s.id)"
)


@pytest.mark.parametrize("name", sorted(EVERY_STATEMENT))
def test_every_statement_is_snowflake_sql(name: str) -> None:
    rules.parse(EVERY_STATEMENT[name])  # raises on anything the Snowflake dialect refuses


@pytest.mark.parametrize("name", sorted(EVERY_STATEMENT))
def test_no_limit_in_a_subquery_snowflake_refuses(name: str) -> None:
    assert rules.misplaced_limits(rules.parse(EVERY_STATEMENT[name])) == []


@pytest.mark.parametrize("name", sorted(EVERY_STATEMENT))
def test_every_time_is_utc(name: str) -> None:
    assert rules.session_zone_times(rules.parse(EVERY_STATEMENT[name])) == []


def test_new_rows_come_only_from_a_merge_on_id() -> None:
    inserting = {k for k, sql in PROTOCOL.items() if rules.inserts_rows(rules.parse(sql))}
    assert inserting == set()
    merges = {k: rules.merge_keys(rules.parse(sql)) for k, sql in PROTOCOL.items()}
    assert {k: keys for k, keys in merges.items() if keys} == {"enqueue": {"ID"}}


def test_the_statements_that_take_the_table_lock_are_listed() -> None:
    locking = {k for k, sql in PROTOCOL.items() if rules.locked_table(rules.parse(sql))}
    assert locking == TABLE_LOCK_KINDS
    assert {rules.qualified_name(rules.locked_table(rules.parse(PROTOCOL[k])), None, None)
            for k in locking} == {"ANALYTICS.QUEUE.JOBS"}  # fmt: skip


def test_values_are_bound_never_written_into_the_text() -> None:
    for kind, statement in statements_for(TABLE).items():
        assert "%(" not in statement.sql, kind
        assert statement.sql.count("?") == len(statement.names), kind
        assert set(statement.names) == set(_names(TEMPLATES[kind])), kind


def _names(template: str) -> list[str]:
    import re

    return re.findall(r"%\((\w+)\)s", template)


# -- the rules catch what they are for -----------------------------------------------------


def test_limit_in_an_in_subquery_is_caught() -> None:
    assert rules.misplaced_limits(rules.parse(CLAIM_WITH_LIMIT_IN_SUBQUERY)) != []


@pytest.mark.parametrize(
    ("sql", "allowed"),
    [
        ("SELECT * FROM t WHERE a = (SELECT MAX(b) FROM u ORDER BY b LIMIT 1)", True),
        ("SELECT * FROM t WHERE a = (SELECT u.b FROM u WHERE u.c = t.c LIMIT 1)", False),
        ("SELECT * FROM (SELECT a FROM t LIMIT 5) s", False),
        ("SELECT * FROM t WHERE EXISTS (SELECT 1 FROM u LIMIT 1)", False),
        ("SELECT a FROM t ORDER BY a LIMIT ?", True),
    ],
)
def test_only_uncorrelated_scalar_subqueries_may_limit(sql: str, allowed: bool) -> None:
    assert (rules.misplaced_limits(rules.parse(sql)) == []) is allowed


@pytest.mark.parametrize(
    "call", ["CURRENT_TIMESTAMP()", "GETDATE()", "LOCALTIMESTAMP()", "SYSTIMESTAMP()", "NOW()"]
)
def test_session_zone_time_functions_are_caught(call: str) -> None:
    assert rules.session_zone_times(rules.parse(f"SELECT {call}")) != []
    assert rules.session_zone_times(rules.parse("SELECT SYSDATE()")) == []


def test_insert_where_not_exists_is_caught() -> None:
    assert rules.inserts_rows(rules.parse(ENQUEUE_WITH_NOT_EXISTS))


def test_unenforced_constraints_are_removed_and_not_null_kept() -> None:
    create = rules.parse(
        "CREATE TABLE t (id VARCHAR(64) NOT NULL PRIMARY KEY, x INT UNIQUE, PRIMARY KEY (id))"
    )
    bare = rules.without_unenforced_constraints(create)
    assert bare is not None
    assert bare.sql(dialect=rules.DIALECT) == "CREATE TABLE t (id VARCHAR(64) NOT NULL, x INT)"
    assert rules.without_unenforced_constraints(rules.parse("CREATE TABLE u (a INT)")) is None
