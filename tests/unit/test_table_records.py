"""The emulator model's reading of the statements that make, move and change tables, and
what it records of them (owner, kind, retention): pure parts, no emulator."""

from __future__ import annotations

import pytest
from sqlglot import exp

from snowflake_devtools import snowflake_rules as rules
from snowflake_devtools.table_records import DEFAULT_OWNER, TableRecord, TableRecords


def _name(sql_table: str) -> str:
    table = rules.parse(f"SELECT * FROM {sql_table}").find(exp.Table)
    assert table is not None
    return rules.qualified_name(table, "DB", "SCH")


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("GRANT OWNERSHIP ON TABLE d.s.t TO ROLE r", ("D.S.T", "R")),
        ('GRANT OWNERSHIP ON TABLE "d"."s"."t" TO ROLE "Mixed"', ("d.s.t", "Mixed")),
        ("grant ownership on table t to role r copy current grants", ("DB.SCH.T", "R")),
        ("GRANT OWNERSHIP ON TABLE t TO ROLE r REVOKE CURRENT GRANTS;", ("DB.SCH.T", "R")),
    ],
)
def test_grant_ownership_names_the_table_and_the_new_owner(
    sql: str, expected: tuple[str, str]
) -> None:
    found = rules.ownership_grant(sql)
    assert found is not None
    table, role = found
    assert (rules.qualified_name(table, "DB", "SCH"), role) == expected


@pytest.mark.parametrize(
    "sql",
    [
        "GRANT SELECT ON TABLE t TO ROLE r",
        "GRANT OWNERSHIP ON SCHEMA s TO ROLE r",
        "GRANT ROLE r TO USER u",
    ],
)
def test_other_grants_are_not_ownership_of_a_table(sql: str) -> None:
    assert rules.ownership_grant(sql) is None


def test_roles_resolve_as_identifiers() -> None:
    assert rules.role_name("sysadmin") == "SYSADMIN"
    assert rules.role_name('"Queue Owner"') == "Queue Owner"
    assert rules.used_role(rules.parse('USE ROLE "Queue Owner"')) == "Queue Owner"
    assert rules.used_role(rules.parse("USE ROLE queue_owner")) == "QUEUE_OWNER"
    assert rules.used_role(rules.parse("USE SECONDARY ROLES ALL")) is None
    assert rules.used_role(rules.parse("USE SCHEMA s")) is None


def test_a_create_table_records_its_kind_and_retention() -> None:
    made = rules.created_table(
        rules.parse(
            "CREATE TRANSIENT TABLE IF NOT EXISTS d.s.t (id VARCHAR(64)) "
            "DATA_RETENTION_TIME_IN_DAYS = 0"
        )
    )
    assert made is not None
    assert (made.table.name, made.kind, made.retention_days) == ("t", "TRANSIENT", 0)
    plain = rules.created_table(rules.parse("CREATE OR REPLACE TABLE t AS SELECT 1 AS a"))
    assert plain is not None and (plain.kind, plain.retention_days) == ("TABLE", 1)
    assert rules.created_table(rules.parse("CREATE VIEW v AS SELECT 1 AS a")) is None


@pytest.mark.parametrize(
    ("sql", "owned"),
    [
        ("ALTER TABLE t ADD COLUMN x INT", ["T"]),
        ("ALTER TABLE t SWAP WITH u", ["T", "U"]),
        ("DROP TABLE IF EXISTS t, u", ["T", "U"]),
        ("CREATE OR REPLACE TABLE t (a INT)", ["T"]),
        ("CREATE TABLE IF NOT EXISTS t (a INT)", []),
        ("UPDATE t SET a = 1", []),
        ("ALTER SESSION SET LOCK_TIMEOUT = 5", []),
    ],
)
def test_the_statements_that_need_ownership(sql: str, owned: list[str]) -> None:
    tables = rules.owned_tables(rules.parse(sql))
    assert [table.name.upper() for table in tables] == owned


def test_records_follow_renames_swaps_and_drops() -> None:
    records = TableRecords()
    records.created(_name("t"), TableRecord("A", "TRANSIENT", 0))
    records.created(_name("u"), TableRecord("B"))
    assert records.owner(_name("unknown")) == DEFAULT_OWNER
    records.renamed(_name("t"), _name("t2"))
    assert records.get(_name("t")) is None
    assert records.owner(_name("t2")) == "A"
    records.renamed(_name("t2"), _name("u"), swap=True)
    assert (records.owner(_name("u")), records.owner(_name("t2"))) == ("A", "B")
    records.owned_by(_name("u"), "C")
    assert records.get(_name("u")) == TableRecord("C", "TRANSIENT", 0)
    records.created(_name("other.v"), TableRecord("A"))
    prefix = rules.dropped_prefix(rules.parse("DROP SCHEMA sch"), "DB")
    assert prefix == "DB.SCH."
    records.dropped_under(prefix)
    assert list(records.stats()) == ["DB.OTHER.V"]
