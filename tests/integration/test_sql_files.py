"""The SQL files against the fakesnow server: create, migrate, views; grants by parsing."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from snowflake_devtools.processes import ServerProcess
from snowflake_operator import legacy_upgrade
from snowflake_operator.queue_schema import (
    CREATE_FILES,
    ENSURE_FILES,
    GRANT_FILES,
    MIGRATE_FILES,
    SchemaTarget,
    apply,
    ensure_queue_table,
    render,
)
from snowflake_worker.identifiers import TableRef
from tests.support.cli import queue_flags, run_cli
from tests.support.sql_tables import (
    column_names,
    columns_info,
    insert,
    legacy_schema_statements,
    query,
    shown_table,
    snapshot,
    status_row,
)

pytestmark = pytest.mark.integration

CONTRACT_COLUMNS = [
    "ID",
    "DATA",
    "STATUS",
    "PROCESSOR_ID",
    "CLAIMED_AT",
    "COMPLETED_AT",
    "FAILED_AT",
    "ERROR_MESSAGE",
    "RETRY_COUNT",
    "CREATED_AT",
    "CLAIM_TOKEN",
    "NEXT_ATTEMPT_AT",
    "RESULT",
]
STATUS_VIEW_COLUMNS = [
    "PENDING",
    "ELIGIBLE_NOW",
    "PROCESSING",
    "COMPLETED",
    "FAILED",
    "TOTAL",
    "OLDEST_PENDING_CREATED_AT",
    "OLDEST_PENDING_AGE_SECONDS",
]
DEAD_LETTER_COLUMNS = ["ID", "ERROR_MESSAGE", "RETRY_COUNT", "FAILED_AT", "CREATED_AT", "DATA"]
LEGACY_STATUSES = ["pending", "processing", "completed", "failed", None]


def legacy_rows(count: int) -> list[dict[str, Any]]:
    """Rows as the legacy design's writers left them: any status, NULL included, and NULL
    attempts."""
    rows = []
    for n in range(count):
        status = LEGACY_STATUSES[n % len(LEGACY_STATUSES)]
        rows.append(
            {
                "id": f"legacy-{n:03d}",
                "data": json.dumps({"n": n, "payload": f"item {n}", "tags": [n % 3, "x"]}),
                "status": status,
                "retry_count": None if n % 3 == 0 else n % 4,
                "error_message": f"boom {n}" if status == "failed" else None,
            }
        )
    return rows


@pytest.fixture
def conn(snowflake_connect: Callable[..., Any]) -> Any:
    return snowflake_connect()


@pytest.fixture
def target(database_name: str) -> SchemaTarget:
    return SchemaTarget(TableRef(database_name, "QUEUE", "JOBS"))


def test_create_files_make_table_with_contract_columns_and_defaults(
    conn: Any, target: SchemaTarget
) -> None:
    assert apply(conn, CREATE_FILES, target) == 3
    assert column_names(conn, target.table.sql) == CONTRACT_COLUMNS
    assert column_names(conn, target.status_view.sql) == STATUS_VIEW_COLUMNS
    assert column_names(conn, target.dead_letter_view.sql) == DEAD_LETTER_COLUMNS

    insert(conn, target, id="job-1", data='{"n": 1}')
    rows = query(
        conn,
        f"SELECT id, data, status, retry_count, created_at IS NOT NULL, claim_token IS NULL,"
        f" next_attempt_at IS NULL, claimed_at IS NULL FROM {target.table.sql}",
    )
    assert len(rows) == 1
    row_id, data, status, retry_count, *flags = rows[0]
    assert (row_id, json.loads(data), status, retry_count) == ("job-1", {"n": 1}, "pending", 0)
    assert flags == [True, True, True, True]


def test_created_columns_have_contract_types_and_nullability(
    conn: Any, target: SchemaTarget
) -> None:
    apply(conn, CREATE_FILES, target)
    assert columns_info(conn, target) == {
        "ID": ("NO", "TEXT", 64),
        "DATA": ("YES", "VARIANT", None),
        "STATUS": ("NO", "TEXT", 20),
        "PROCESSOR_ID": ("YES", "TEXT", 255),
        "CLAIMED_AT": ("YES", "TIMESTAMP_NTZ", None),
        "COMPLETED_AT": ("YES", "TIMESTAMP_NTZ", None),
        "FAILED_AT": ("YES", "TIMESTAMP_NTZ", None),
        "ERROR_MESSAGE": ("YES", "TEXT", 1000),
        "RETRY_COUNT": ("NO", "NUMBER", None),
        "CREATED_AT": ("NO", "TIMESTAMP_NTZ", None),
        "CLAIM_TOKEN": ("YES", "TEXT", 64),
        "NEXT_ATTEMPT_AT": ("YES", "TIMESTAMP_NTZ", None),
        "RESULT": ("YES", "TEXT", 16384),
    }


def test_everything_twice_is_idempotent(conn: Any, target: SchemaTarget) -> None:
    first = apply(conn, (*CREATE_FILES, *MIGRATE_FILES), target)
    insert(conn, target, id="keep-me", data='{"k": "v"}', status="failed", retry_count=3)
    second = apply(conn, (*CREATE_FILES, *MIGRATE_FILES), target)
    ensure_queue_table(conn, target)
    ensure_queue_table(conn, target)

    assert first == second == 11
    assert column_names(conn, target.table.sql) == CONTRACT_COLUMNS
    rows = query(conn, f"SELECT id, data, status, retry_count FROM {target.table.sql}")
    assert [(r[0], json.loads(r[1]), r[2], r[3]) for r in rows] == [
        ("keep-me", {"k": "v"}, "failed", 3)
    ]
    assert status_row(conn, target)["FAILED"] == 1


def test_ensure_queue_table_creates_from_nothing(conn: Any, target: SchemaTarget) -> None:
    ensure_queue_table(conn, target)
    assert column_names(conn, target.table.sql) == CONTRACT_COLUMNS
    assert status_row(conn, target)["TOTAL"] == 0


@pytest.mark.parametrize("files", [ENSURE_FILES, MIGRATE_FILES], ids=["ensure", "migrate"])
def test_legacy_table_is_migrated_without_losing_rows(
    conn: Any, target: SchemaTarget, files: tuple[str, ...]
) -> None:
    for statement in legacy_schema_statements(target):
        query(conn, statement)
    assert column_names(conn, target.table.sql) == CONTRACT_COLUMNS[:10]
    rows = legacy_rows(50)
    for row in rows:
        insert(conn, target, **row)
    before = snapshot(conn, target)
    assert len(before) == 50
    assert sum(1 for r in before if r[3] is None) == 17  # the NULLs are really there
    assert sum(1 for r in before if r[2] is None) == 10

    apply(conn, files, target)
    after = snapshot(conn, target)

    assert column_names(conn, target.table.sql) == CONTRACT_COLUMNS
    assert [r[0] for r in after] == [r[0] for r in before] == [r["id"] for r in rows]
    for old, new in zip(before, after, strict=True):
        row_id, data, status, retry_count, error_message = old
        assert new == (
            row_id,
            data,
            "pending" if status is None else status,
            0 if retry_count is None else retry_count,
            error_message,
        )
    new_columns_null = query(
        conn,
        f"SELECT COUNT(*), COUNT_IF(claim_token IS NULL AND next_attempt_at IS NULL)"
        f" FROM {target.table.sql}",
    )
    assert new_columns_null == [(50, 50)]
    info = columns_info(conn, target)
    assert info["ID"][2] == 64  # widened from the legacy design's 36: the protocol takes 64
    assert info["CLAIM_TOKEN"] == ("YES", "TEXT", 64)
    assert info["NEXT_ATTEMPT_AT"] == ("YES", "TIMESTAMP_NTZ", None)
    assert info["RESULT"] == ("YES", "TEXT", 16384)  # sql/005

    # Migrated rows show up in the views: 10 of each status, NULL status became pending.
    counts = status_row(conn, target)
    assert (counts["PENDING"], counts["ELIGIBLE_NOW"], counts["PROCESSING"]) == (20, 20, 10)
    assert (counts["COMPLETED"], counts["FAILED"], counts["TOTAL"]) == (10, 10, 50)
    dead = query(conn, f"SELECT id, error_message FROM {target.dead_letter_view.sql} ORDER BY id")
    assert dead == [(r["id"], r["error_message"]) for r in rows if r["status"] == "failed"]

    # Running the migration again changes nothing.
    apply(conn, MIGRATE_FILES, target)
    assert snapshot(conn, target) == after


def test_status_view_counts_a_known_mix(conn: Any, target: SchemaTarget) -> None:
    apply(conn, CREATE_FILES, target)
    empty = status_row(conn, target)
    assert {k: empty[k] for k in STATUS_VIEW_COLUMNS[:6]} == dict.fromkeys(
        STATUS_VIEW_COLUMNS[:6], 0
    )
    assert query(
        conn, f"SELECT oldest_pending_age_seconds IS NULL FROM {target.status_view.sql}"
    ) == [(True,)]

    # pending: one plain, one whose backoff is over, one backing off (not eligible now);
    # the oldest pending row is an hour old, and an older completed row must not count.
    insert(conn, target, id="p-old", created_at_sql="DATEADD(second, -3600, SYSDATE())")
    insert(conn, target, id="p-due", next_attempt_at_sql="DATEADD(minute, -5, SYSDATE())")
    insert(conn, target, id="p-later", next_attempt_at_sql="DATEADD(minute, 30, SYSDATE())")
    for n in range(2):
        insert(conn, target, id=f"run-{n}", status="processing", processor_id="pod-a")
    for n in range(4):
        insert(
            conn,
            target,
            id=f"done-{n}",
            status="completed",
            created_at_sql="DATEADD(second, -7200, SYSDATE())",
        )
    insert(conn, target, id="dead-0", status="failed", error_message="bad input", retry_count=5)

    counts = status_row(conn, target)
    assert {k: counts[k] for k in STATUS_VIEW_COLUMNS[:6]} == {
        "PENDING": 3,
        "ELIGIBLE_NOW": 2,
        "PROCESSING": 2,
        "COMPLETED": 4,
        "FAILED": 1,
        "TOTAL": 10,
    }
    oldest_created = query(conn, f"SELECT created_at FROM {target.table.sql} WHERE id = 'p-old'")
    assert counts["OLDEST_PENDING_CREATED_AT"] == oldest_created[0][0]
    assert 3600 <= counts["OLDEST_PENDING_AGE_SECONDS"] < 3600 + 120


def test_dead_letter_view_lists_exactly_the_failed_rows(conn: Any, target: SchemaTarget) -> None:
    apply(conn, CREATE_FILES, target)
    insert(conn, target, id="ok", status="completed")
    insert(conn, target, id="waiting", status="pending", error_message="transient, retrying")
    insert(conn, target, id="busy", status="processing")
    insert(
        conn,
        target,
        id="dead-a",
        data='{"order": 7}',
        status="failed",
        error_message="schema mismatch",
        retry_count=3,
        failed_at_sql="SYSDATE()",
    )
    insert(conn, target, id="dead-b", status="failed", error_message="timeout", retry_count=5)

    rows = query(
        conn,
        f"SELECT id, error_message, retry_count, data, failed_at IS NULL"
        f" FROM {target.dead_letter_view.sql} ORDER BY id",
    )
    assert [(r[0], r[1], r[2], r[4]) for r in rows] == [
        ("dead-a", "schema mismatch", 3, False),
        ("dead-b", "timeout", 5, True),
    ]
    assert json.loads(rows[0][3]) == {"order": 7}


# Grants: fakesnow cannot run CREATE ROLE or GRANT, so 004 is checked by parsing it.


@pytest.fixture
def grant_target() -> SchemaTarget:
    return SchemaTarget(
        TableRef("prod_db", "queue", "jobs"), warehouse="etl_wh", service_role="svc"
    )


def test_grants_are_least_privilege(grant_target: SchemaTarget) -> None:
    statements = [s for name in GRANT_FILES for s in render(name, grant_target)]
    text = "\n".join(statements)
    assert not re.search(r"\b(OWNERSHIP|ALL|INSERT|DELETE|TRUNCATE|OWNER)\b", text, re.I)
    assert "{{" not in text
    assert "}}" not in text

    assert statements[0] == 'CREATE ROLE IF NOT EXISTS "SVC"'
    grants: dict[tuple[str, str], set[str]] = {}
    for statement in statements[1:]:
        parsed = sqlglot.parse_one(statement, read="snowflake")
        assert isinstance(parsed, exp.Grant), statement
        principals = parsed.args["principals"]
        assert [(p.args.get("kind"), p.this.this, p.this.quoted) for p in principals] == [
            ("ROLE", "SVC", True)
        ]
        assert not parsed.args.get("grant_option")
        securable = parsed.args["securable"]
        parts = list(securable.parts)
        assert all(isinstance(p, exp.Identifier) and p.quoted for p in parts), statement
        key = (parsed.args["kind"], ".".join(p.this for p in parts))
        privileges = {p.this.this.upper() for p in parsed.args["privileges"]}
        assert key not in grants, f"granted twice: {key}"
        grants[key] = privileges

    assert grants == {
        ("WAREHOUSE", "ETL_WH"): {"USAGE"},
        ("DATABASE", "PROD_DB"): {"USAGE"},
        ("SCHEMA", "PROD_DB.QUEUE"): {"USAGE"},
        ("TABLE", "PROD_DB.QUEUE.JOBS"): {"SELECT", "UPDATE"},
        ("VIEW", "PROD_DB.QUEUE.JOBS_STATUS"): {"SELECT"},
        ("VIEW", "PROD_DB.QUEUE.JOBS_DEAD_LETTERS"): {"SELECT"},
    }


def test_every_placeholder_becomes_a_quoted_identifier(grant_target: SchemaTarget) -> None:
    quoted = set(grant_target.placeholders().values())
    for name in ("001_queue_table.sql", "002_migrate_from_legacy.sql", "003_monitoring_views.sql"):
        for statement in render(name, grant_target):
            sqlglot.parse_one(statement, read="snowflake")  # parses, so no stray braces
    grant_text = "\n".join(render("004_grants.sql", grant_target))
    # Every identifier in 004 is one of the target's quoted names, nothing unquoted.
    for value in quoted:
        assert value in grant_text
    without_names = grant_text
    for value in sorted(quoted, key=len, reverse=True):
        without_names = without_names.replace(value, "<name>")
    assert '"' not in without_names
    assert "svc" not in without_names.lower()
    assert "etl_wh" not in without_names.lower()


def test_005_adds_the_result_column_to_a_table_made_before_it(
    conn: Any, target: SchemaTarget
) -> None:
    apply(conn, CREATE_FILES, target)
    query(conn, f"ALTER TABLE {target.table.sql} DROP COLUMN result")  # 001 before 005
    insert(conn, target, id="kept", data='{"k": 1}', status="completed")
    assert "RESULT" not in column_names(conn, target.table.sql)
    assert apply(conn, ("005_result_column.sql",), target) == 1
    assert column_names(conn, target.table.sql) == CONTRACT_COLUMNS
    assert columns_info(conn, target)["RESULT"] == ("YES", "TEXT", 16384)
    apply(conn, ("005_result_column.sql",), target)  # again: nothing changes
    assert query(conn, f"SELECT id, status, result FROM {target.table.sql}") == [
        ("kept", "completed", None)
    ]


# -- 002 on what Snowflake refuses: a wider id, and a backfill of many rows -----------------


def test_002_keeps_an_id_wider_than_64_and_its_long_ids(conn: Any, target: SchemaTarget) -> None:
    """Snowflake refuses to shrink a VARCHAR: 002 must leave a VARCHAR(200) id as it is (the
    emulator would shrink it, so the width is what shows the ALTER was not sent)."""
    query(
        conn,
        f"CREATE TABLE {target.table.sql} (id VARCHAR(200), data VARIANT, status VARCHAR(20),"
        " processor_id VARCHAR(255), claimed_at TIMESTAMP_NTZ, completed_at TIMESTAMP_NTZ,"
        " failed_at TIMESTAMP_NTZ, error_message VARCHAR(1000), retry_count INTEGER,"
        " created_at TIMESTAMP_NTZ DEFAULT SYSDATE())",
    )
    long_id = "order-" + "x" * 150
    insert(conn, target, id=long_id, data='{"n": 1}')
    for _ in range(2):  # and again: still nothing to widen, nothing to fill
        apply(conn, MIGRATE_FILES, target)
    assert columns_info(conn, target)["ID"] == ("YES", "TEXT", 200)
    assert snapshot(conn, target) == [(long_id, {"n": 1}, "pending", 0, None)]
    assert status_row(conn, target)["PENDING"] == 1


def test_002_backfills_in_batches_and_fills_every_hole(conn: Any, target: SchemaTarget) -> None:
    """60 legacy rows, 28 with a NULL to fill, and one row without an id, in batches of 10:
    two full batches, one short, then the row without an id; every NULL filled, nothing
    else changed."""
    for statement in legacy_schema_statements(target):
        query(conn, statement)
    rows = legacy_rows(60)
    for row in rows:
        insert(conn, target, **row)
    query(conn, f"INSERT INTO {target.table.sql} (id, data) SELECT NULL, PARSE_JSON('{{}}')")
    query(conn, f"UPDATE {target.table.sql} SET status = NULL, retry_count = NULL WHERE id IS NULL")
    holes = query(
        conn,
        f"SELECT COUNT(*) FROM {target.table.sql} WHERE retry_count IS NULL OR status IS NULL",
    )
    assert holes == [(29,)]  # 28 with an id, and the one without
    before = {r[0]: r for r in snapshot(conn, target) if r[0] is not None}

    batches: list[int] = []
    report = legacy_upgrade.upgrade(conn, target.table, batch_rows=10, on_batch=batches.append)
    assert batches == [10, 10, 8]
    assert (report.id_widened, report.rows_filled) == (True, 29)
    assert report.statements == 1 + 1 + 3 + 1  # SHOW COLUMNS, the ALTER, 3 batches, no-id
    after = snapshot(conn, target)
    assert query(
        conn,
        f"SELECT COUNT(*) FROM {target.table.sql} WHERE retry_count IS NULL OR status IS NULL",
    ) == [(0,)]
    for row_id, data, status, retry_count, error in after:
        if row_id is None:
            assert (status, retry_count) == ("pending", 0)
            continue
        old = before[row_id]
        assert (data, error) == (old[1], old[4])
        assert status == ("pending" if old[2] is None else old[2])
        assert retry_count == (0 if old[3] is None else old[3])
    again = legacy_upgrade.upgrade(conn, target.table, batch_rows=10)
    assert (again.id_widened, again.rows_filled, again.batches) == (False, 0, [0])


@pytest.mark.parametrize("days", [0, 1])
def test_a_transient_table_is_created_the_same_way(
    conn: Any, days: int, database_name: str
) -> None:
    """CREATE TRANSIENT TABLE ... DATA_RETENTION_TIME_IN_DAYS: SHOW TABLES reports its kind
    and retention_time (fakesnow keeps neither: the emulator's model does)."""
    target = SchemaTarget(
        TableRef(database_name, "QUEUE", "JOBS"), transient=True, retention_days=days
    )
    ensure_queue_table(conn, target)
    ensure_queue_table(conn, target)
    assert column_names(conn, target.table.sql) == CONTRACT_COLUMNS
    insert(conn, target, id="t-1", data='{"n": 1}')
    assert status_row(conn, target)["PENDING"] == 1
    shown = shown_table(conn, target.table)
    assert (shown["kind"], shown["retention_time"]) == ("TRANSIENT", days)


def test_sql_apply_transient_makes_a_transient_table_without_time_travel(
    snowflake_server: ServerProcess, conn: Any, database_name: str
) -> None:
    """`sql apply --transient --retention-days 0`, as docs/snowflake-setup.md gives it; a
    permanent table beside it keeps the account's kind and retention."""
    table = TableRef(database_name, "QUEUE", "JOBS")
    ran = run_cli(
        "sql", "apply", *queue_flags(snowflake_server.port, table),
        "--transient", "--retention-days", "0",
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    shown = shown_table(conn, table)
    assert (shown["kind"], shown["retention_time"]) == ("TRANSIENT", 0)
    permanent = TableRef(database_name, "QUEUE", "PERMANENT")
    ensure_queue_table(conn, SchemaTarget(permanent))
    shown = shown_table(conn, permanent)
    assert (shown["kind"], shown["retention_time"]) == ("TABLE", 1)
