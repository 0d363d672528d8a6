"""Every statement the project can send, checked against Snowflake's documented rules.

The emulator (fakesnow) runs statements Snowflake refuses and refuses some Snowflake runs,
so passing integration tests prove little about Snowflake. Here each statement is parsed
with sqlglot's Snowflake dialect and checked against the rules the project depends on
(snowflake_devtools/snowflake_rules.py names the documentation of each):

- one statement of a kind the project sends, whole (sqlglot keeps what it cannot parse as
  a Command), with the parts Snowflake's syntax requires (a GRANT names a privilege that
  exists on its kind of object, and a role);
- LIMIT / FETCH only in an uncorrelated scalar subquery ("Working with subqueries") or an
  uncorrelated derived table of a FROM or JOIN ("LIMIT / FETCH");
- no bind in a SHOW or DDL statement (the server answers it with a syntax error);
- no reliance on an enforced primary key: new rows only through a MERGE on id;
- times from SYSDATE() (UTC), never from a function that follows the session's time zone;
- the statements that take the table's lock are the ones TABLE_LOCK_KINDS lists.

The rules themselves are tested too, on the forms the project used to send.
"""

from __future__ import annotations

import re

import pytest
import sqlglot
from sqlglot import ErrorLevel, exp

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


# The privileges Snowflake's GRANT takes on each kind of object the project grants on
# ("Access control privileges"); sqlglot takes any word in their place.
GRANTABLE = {
    "WAREHOUSE": {"USAGE", "OPERATE", "MONITOR", "MODIFY"},
    "DATABASE": {"USAGE", "MONITOR"},
    "SCHEMA": {"USAGE", "MONITOR"},
    "TABLE": {"SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES"},
    "VIEW": {"SELECT", "REFERENCES"},
}
# Snowflake statements sqlglot does not parse (it keeps them as an exp.Command): each is
# matched whole, with identifiers as the project renders them (quoted).
QUOTED = r'"[^"]+"'
UNPARSED_FORMS = {"CREATE ROLE": re.compile(rf"CREATE ROLE IF NOT EXISTS {QUOTED}")}
SHOWN = {"TABLES", "COLUMNS"}


def snowflake_sql_problems(sql: str) -> list[str]:
    """Why ``sql`` is not one statement of the kinds the project sends, as Snowflake takes
    them; [] if it is. sqlglot's parser is lenient: it keeps text it cannot parse as an
    exp.Command, reads `FOO BAR` as a column alias and `GRANT BLAH ON NOTHING TO x` as a
    GRANT. So each statement is parsed with errors raised, and then its kind and its parts
    are checked against what Snowflake's documented syntax requires."""
    try:
        statements = sqlglot.parse(sql, read=rules.DIALECT, error_level=ErrorLevel.RAISE)
    except sqlglot.errors.SqlglotError as error:
        return [f"does not parse: {error}"]
    if len(statements) != 1 or statements[0] is None:
        return [f"{len(statements)} statements, not one"]
    (statement,) = statements
    match statement:
        case exp.Command():
            if any(form.fullmatch(sql.strip()) for form in UNPARSED_FORMS.values()):
                return []
            return [f"not parsed: sqlglot kept {sql.split()[0]} ... as a Command"]
        case exp.Select():
            return [] if statement.expressions else ["SELECT without columns"]
        case exp.Update():
            ok = isinstance(statement.this, exp.Table) and statement.expressions
            return [] if ok else ["UPDATE without a table or a SET"]
        case exp.Delete():
            return [] if isinstance(statement.this, exp.Table) else ["DELETE without a table"]
        case exp.Merge():
            parts = ("using", "on", "whens")
            missing = [part for part in parts if not statement.args.get(part)]
            return [f"MERGE without {', '.join(missing)}"] if missing else []
        case exp.Show():
            return [] if statement.name.upper() in SHOWN else [f"SHOW {statement.name}"]
        case exp.Create():
            kind = statement.args.get("kind")
            return [] if kind in ("TABLE", "VIEW") else [f"CREATE {kind}"]
        case exp.Alter():
            ok = statement.args.get("kind") == "TABLE" and statement.args.get("actions")
            return [] if ok else ["ALTER other than an ALTER TABLE with an action"]
        case exp.Grant():
            return _grant_problems(statement)
    return [f"a {type(statement).__name__}, not a statement the project sends"]


def _grant_problems(grant: exp.Grant) -> list[str]:
    kind = grant.args.get("kind")
    if kind not in GRANTABLE:
        return [f"GRANT on {kind or 'no object kind'}"]
    privileges = {p.this.name.upper() for p in grant.args.get("privileges") or []}
    problems = [f"{p} is no privilege on a {kind}" for p in sorted(privileges - GRANTABLE[kind])]
    principals = grant.args.get("principals") or []
    if not principals or any(p.args.get("kind") != "ROLE" for p in principals):
        problems.append("GRANT to something other than a ROLE")
    return problems or ([] if privileges else ["GRANT of nothing"])


@pytest.mark.parametrize("name", sorted(EVERY_STATEMENT))
def test_every_statement_is_snowflake_sql(name: str) -> None:
    assert snowflake_sql_problems(EVERY_STATEMENT[name]) == []


@pytest.mark.parametrize(
    ("sql", "problem"),
    [
        ("GRANT BLAH ON NOTHING TO x", "GRANT on no object kind"),  # sqlglot: a GRANT
        ("GRANT INSERT ON VIEW v TO ROLE r", "INSERT is no privilege on a VIEW"),
        ("GRANT USAGE ON WAREHOUSE w TO x", "other than a ROLE"),
        ("FOO BAR", "a Alias"),  # sqlglot: a column with an alias
        ("SELEC 1", "does not parse"),
        ("UPDATE t SET", "UPDATE without"),
        ("DELETE t", "DELETE without a table"),
        ("CREATE ROLEE x", "as a Command"),
        ("CREATE ROLE IF NOT EXISTS svc; DROP TABLE t", "2 statements"),
        ("ALTER TABLE t FROBNICATE", "as a Command"),
        ("CREATE TABLE t (a INT) BLAH", "as a Command"),
        ("SHOW TABLEZ", "as a Command"),
        ("SELECT 1; SELECT 2", "2 statements"),
        ("DROP TABLE t", "not a statement the project sends"),  # valid, but never sent
    ],
)
def test_statements_snowflake_would_refuse_are_caught(sql: str, problem: str) -> None:
    problems = snowflake_sql_problems(sql)
    assert any(problem in found for found in problems), problems


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
    return re.findall(r"%\((\w+)\)s", template)


# -- the rules catch what they are for -----------------------------------------------------


def test_limit_in_an_in_subquery_is_caught() -> None:
    assert rules.misplaced_limits(rules.parse(CLAIM_WITH_LIMIT_IN_SUBQUERY)) != []


@pytest.mark.parametrize(
    ("sql", "allowed"),
    [
        ("SELECT * FROM t WHERE a = (SELECT MAX(b) FROM u ORDER BY b LIMIT 1)", True),
        ("SELECT * FROM t WHERE a = (SELECT u.b FROM u WHERE u.c = t.c LIMIT 1)", False),
        ("SELECT * FROM (SELECT a FROM t LIMIT 5) s", True),  # "LIMIT / FETCH" shows it
        ("SELECT * FROM t JOIN (SELECT a FROM u ORDER BY a LIMIT 3) v ON t.a = v.a", True),
        ("SELECT * FROM t, LATERAL (SELECT u.a FROM u WHERE u.b = t.b LIMIT 1) v", False),
        ("SELECT * FROM t WHERE a IN (SELECT a FROM (SELECT a FROM u LIMIT 5) s)", True),
        ("SELECT * FROM t WHERE EXISTS (SELECT 1 FROM u LIMIT 1)", False),
        ("SELECT a FROM t ORDER BY a LIMIT ?", True),
    ],
)
def test_only_uncorrelated_scalar_subqueries_and_derived_tables_may_limit(
    sql: str, allowed: bool
) -> None:
    assert (rules.misplaced_limits(rules.parse(sql)) == []) is allowed


@pytest.mark.parametrize("name", sorted(EVERY_STATEMENT))
def test_no_bind_in_a_show_or_ddl_statement(name: str) -> None:
    sql = EVERY_STATEMENT[name]
    assert rules.refused_bind(sql, rules.parse(sql)) is None


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        # As the server answered it (snowflake-connector-nodejs, "SHOW OBJECTS LIKE ?").
        ("SHOW OBJECTS LIKE ?", "syntax error line 1 at position 18 unexpected '?'."),
        ('SHOW TABLES LIKE ? IN SCHEMA "A"."B"', "line 1 at position 17 unexpected '?'"),
        ("CREATE TABLE t (a INT)\n  DEFAULT ?", "line 2 at position 10 unexpected '?'"),
        ("ALTER TABLE t ADD COLUMN c VARCHAR DEFAULT ?", "at position 43 unexpected '?'"),
        ("CREATE ROLE IF NOT EXISTS ?", "at position 26 unexpected '?'"),  # a Command
        ("SHOW TABLES LIKE '?'", None),  # a string, no bind
        ('SHOW TABLES IN SCHEMA "A"."B"', None),
        ("SELECT * FROM t WHERE a = ?", None),  # DML takes binds
        ("UPDATE t SET a = ? WHERE b = ?", None),
    ],
)
def test_binds_in_show_and_ddl_are_refused_as_the_server_does(
    sql: str, message: str | None
) -> None:
    refused = rules.refused_bind(sql, rules.parse(sql))
    if message is None:
        assert refused is None
    else:
        assert refused is not None and refused.startswith("SQL compilation error:\n")
        assert message in refused


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
