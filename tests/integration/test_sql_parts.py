"""`sql render|apply --part`: a new account's setup, one part per role. The parts the
emulator can run (USE ROLE, database and schema, table, views, the cutover's release) run
there, twice; the ones it cannot (CREATE WAREHOUSE, ROLE, USER, GRANT: fakesnow answers a
syntax error) are checked as rendered text."""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from snowflake.connector.errors import ProgrammingError

from snowflake_devtools import snowflake_rules
from snowflake_devtools.processes import ServerProcess
from snowflake_operator.ops import sql_parts
from snowflake_operator.queue_schema import SchemaTarget
from snowflake_worker.identifiers import TableRef
from tests.support.cli import ok_json, queue_flags, refused, run_cli
from tests.support.sql_tables import (
    column_names,
    insert,
    legacy_schema_statements,
    query,
    shown_table,
    snapshot,
)

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TABLE_FLAGS = ["--database", "prod_db", "--schema", "queue", "--table", "jobs"]
ROLES = ["--service-role", "sfp_service", "--service-warehouse", "etl_wh"]
ADMIN = ["--admin-role", "sfp_admin"]
ARNS = {
    "operator": "arn:aws:iam::123456789012:role/sfp-operator",
    "worker": "arn:aws:iam::123456789012:role/sfp-worker",
    "reconciler": "arn:aws:iam::123456789012:role/sfp-reconciler",
}


def terraform_output(path: Path, arns: dict[str, str]) -> Path:
    """A file shaped as `terraform output -json` prints it, with one unrelated output."""
    document: dict[str, Any] = {
        f"{name}_role_arn": {"sensitive": False, "type": "string", "value": arn}
        for name, arn in arns.items()
    }
    document["region"] = {"sensitive": False, "type": "string", "value": "eu-west-1"}
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def render_parts(*args: str) -> dict[str, dict[str, Any]]:
    document = ok_json(run_cli("sql", "render", *args, "-o", "json"))
    return {f["part"]: f for f in document["files"]}


@pytest.fixture
def all_parts(tmp_path: Path) -> dict[str, dict[str, Any]]:
    output = terraform_output(tmp_path / "tf.json", ARNS)
    return render_parts(
        *TABLE_FLAGS, *ROLES, *ADMIN, "--terraform-output", str(output), "--part", "all"
    )


# -- the parts and who runs them ----------------------------------------------------------


def test_all_is_seven_parts_in_setup_order_each_opening_with_its_role(
    all_parts: dict[str, dict[str, Any]],
) -> None:
    assert list(all_parts) == [
        "warehouse",
        "database",
        "table",
        "views",
        "roles",
        "users",
        "grants",
    ]
    roles = {part: f["role"] for part, f in all_parts.items()}
    assert roles == {
        "warehouse": "SYSADMIN",
        "database": "SYSADMIN",
        "table": "SYSADMIN",
        "views": "SYSADMIN",
        "roles": "USERADMIN",
        "users": "USERADMIN",
        "grants": "SECURITYADMIN",
    }
    for part, file in all_parts.items():
        assert file["statements"][0] == f'USE ROLE "{roles[part]}"'
        # Only the first statement switches roles: a part runs as one role throughout.
        assert not any(s.startswith("USE ") for s in file["statements"][1:]), part
        assert file["file"].endswith(f"_{part}.sql")


def test_each_part_holds_only_what_its_role_may_run(
    all_parts: dict[str, dict[str, Any]],
) -> None:
    """The grants no longer replay the table's DDL, and the objects' parts grant nothing."""
    kinds = {
        part: {" ".join(s.split()[:2]) for s in f["statements"][1:]}
        for part, f in all_parts.items()
    }
    assert kinds["warehouse"] == {"CREATE WAREHOUSE"}
    assert kinds["database"] == {"CREATE DATABASE", "CREATE SCHEMA"}
    assert kinds["table"] == {"CREATE TABLE", "ALTER TABLE", 'UPDATE "PROD_DB"."QUEUE"."JOBS"'}
    assert kinds["views"] == {"CREATE OR"}
    assert kinds["roles"] == {"CREATE ROLE", "GRANT ROLE"}
    assert kinds["users"] == {"CREATE USER", "ALTER USER", "GRANT ROLE"}
    # 004 keeps its CREATE ROLE IF NOT EXISTS (a no-op after part roles) and grants.
    assert kinds["grants"] == {"CREATE ROLE", "GRANT USAGE", "GRANT SELECT,", "GRANT SELECT"}


def test_the_runner_roles_can_be_replaced(tmp_path: Path) -> None:
    parts = render_parts(
        *TABLE_FLAGS, *ROLES, *ADMIN, "--part", "table", "--part", "grants",
        "--objects-role", "queue_owner", "--grants-role", "grant_admin",
    )  # fmt: skip
    assert parts["table"]["statements"][0] == 'USE ROLE "QUEUE_OWNER"'
    assert parts["grants"]["statements"][0] == 'USE ROLE "GRANT_ADMIN"'
    refused(
        run_cli("sql", "render", *TABLE_FLAGS, "--part", "table", "--objects-role", "x y"),
        "invalid objects role 'x y'",
    )


# -- users: every identity that logs in, once ----------------------------------------------


USER_STATEMENT = re.compile(
    r'^(CREATE USER IF NOT EXISTS|ALTER USER) "(?P<user>[A-Z_]+)"( SET)?\n'
    r"    TYPE = SERVICE\n"
    r"    WORKLOAD_IDENTITY = \(TYPE = AWS ARN = '(?P<arn>[^'\n]+)'\)\n"
    r'    DEFAULT_ROLE = "SFP_SERVICE"\n'
    r'    DEFAULT_WAREHOUSE = "ETL_WH"$'
)


def registered(statements: list[str]) -> dict[str, str]:
    """Service user -> ARN, from the users part; checks each user's three statements."""
    users: dict[str, str] = {}
    granted: set[str] = set()
    for statement in statements[1:]:
        grant = re.fullmatch(r'GRANT ROLE "SFP_SERVICE" TO USER "(?P<user>[A-Z_]+)"', statement)
        if grant:
            granted.add(grant["user"])
            continue
        match = USER_STATEMENT.fullmatch(statement)
        assert match, statement
        assert users.setdefault(match["user"], match["arn"]) == match["arn"], statement
    assert granted == set(users)
    return users


def test_every_pod_role_from_terraform_gets_its_own_service_user(
    all_parts: dict[str, dict[str, Any]],
) -> None:
    users = registered(all_parts["users"]["statements"])
    assert users == {
        "SNOWFLAKE_PROCESSOR_OPERATOR": ARNS["operator"],
        "SNOWFLAKE_PROCESSOR_WORKER": ARNS["worker"],
        "SNOWFLAKE_PROCESSOR_RECONCILER": ARNS["reconciler"],
    }
    # Create, then bring an existing user to the current ARN, then the role: per user.
    assert len(all_parts["users"]["statements"]) == 1 + 3 * 3


def test_role_arns_as_flags_register_only_the_ones_given() -> None:
    parts = render_parts(
        *TABLE_FLAGS, *ROLES, "--part", "users", "--service-user-prefix", "sfp",
        "--worker-role-arn", ARNS["worker"], "--reconciler-role-arn", ARNS["reconciler"],
    )  # fmt: skip
    assert registered(parts["users"]["statements"]) == {
        "SFP_WORKER": ARNS["worker"],
        "SFP_RECONCILER": ARNS["reconciler"],
    }


@pytest.mark.parametrize(
    "arn",
    [
        "arn:aws:iam::123456789012:role/x'); DROP USER ADMIN; --",
        "arn:aws:iam::123456789012:user/someone",
        "arn:aws:iam::12345:role/short-account",
        "arn:aws:sts::123456789012:assumed-role/sfp-worker/session",
        "",
    ],
)
def test_an_arn_that_is_not_an_iam_role_is_refused(arn: str) -> None:
    refused(
        run_cli("sql", "render", *TABLE_FLAGS, *ROLES, "--part", "users",
                "--worker-role-arn", arn),
        "invalid worker role ARN",
    )  # fmt: skip


def test_missing_or_conflicting_identities_are_refused(tmp_path: Path) -> None:
    refused(
        run_cli("sql", "render", *TABLE_FLAGS, *ROLES, "--part", "users"),
        "part users needs the IAM role of every pod that logs in",
        "--terraform-output FILE",
    )
    output = terraform_output(tmp_path / "tf.json", ARNS)
    refused(
        run_cli("sql", "render", *TABLE_FLAGS, *ROLES, "--part", "users",
                "--terraform-output", str(output), "--worker-role-arn", ARNS["worker"]),
        "not both",
    )  # fmt: skip
    partial = terraform_output(tmp_path / "partial.json", {"worker": ARNS["worker"]})
    refused(
        run_cli("sql", "render", *TABLE_FLAGS, *ROLES, "--part", "users",
                "--terraform-output", str(partial)),
        "no string output 'operator_role_arn'",
    )  # fmt: skip
    (tmp_path / "broken.json").write_text("{", encoding="utf-8")
    refused(
        run_cli("sql", "render", *TABLE_FLAGS, *ROLES, "--part", "users",
                "--terraform-output", str(tmp_path / "broken.json")),
        "not JSON",
    )  # fmt: skip


def test_parts_refuse_what_they_lack() -> None:
    refused(
        run_cli("sql", "render", *TABLE_FLAGS, *ROLES, "--part", "roles"),
        "part roles needs the admin role: give --admin-role",
    )
    refused(
        run_cli("sql", "render", *TABLE_FLAGS, *ADMIN, "--part", "grants"),
        "part grants needs the service's warehouse",
    )
    refused(
        run_cli("sql", "render", *TABLE_FLAGS, "--part", "warehouse"),
        "part warehouse needs the service's warehouse",
    )
    refused(
        run_cli("sql", "render", *TABLE_FLAGS, *ROLES, "--part", "table", "--no-grants"),
        "--no-grants goes without --part",
    )
    refused(run_cli("sql", "render", *TABLE_FLAGS, "--part", "nope"), "invalid choice")
    refused(
        run_cli("sql", "render", *TABLE_FLAGS, *ROLES, "--part", "roles",
                "--admin-role", "x; DROP ROLE ACCOUNTADMIN"),
        "invalid admin role 'x; DROP ROLE ACCOUNTADMIN'",
    )  # fmt: skip


# -- grants: least privilege for each role ---------------------------------------------------


GRANT = re.compile(
    r"GRANT (?P<privileges>[A-Z, ]+) ON (?P<kind>WAREHOUSE|DATABASE|SCHEMA|TABLE|VIEW) "
    r'(?P<object>"[A-Z_]+"(?:\."[A-Z_]+"){0,2}) TO ROLE "(?P<role>[A-Z_]+)"'
)


def test_the_admin_role_can_enqueue_and_purge_and_the_service_role_cannot(
    all_parts: dict[str, dict[str, Any]],
) -> None:
    grants: dict[tuple[str, str, str], set[str]] = {}
    for statement in all_parts["grants"]["statements"][1:]:
        if statement == 'CREATE ROLE IF NOT EXISTS "SFP_SERVICE"':
            continue
        match = GRANT.fullmatch(statement)
        assert match, statement
        key = (match["role"], match["kind"], match["object"].replace('"', ""))
        assert key not in grants, f"granted twice: {key}"
        grants[key] = {p.strip() for p in match["privileges"].split(",")}
    usage = {("WAREHOUSE", "ETL_WH"), ("DATABASE", "PROD_DB"), ("SCHEMA", "PROD_DB.QUEUE")}
    views = {("VIEW", "PROD_DB.QUEUE.JOBS_STATUS"), ("VIEW", "PROD_DB.QUEUE.JOBS_DEAD_LETTERS")}
    for role, on_table in (
        ("SFP_SERVICE", {"SELECT", "UPDATE"}),
        ("SFP_ADMIN", {"SELECT", "INSERT", "UPDATE", "DELETE"}),
    ):
        assert {k[1:]: v for k, v in grants.items() if k[0] == role} == {
            **{key: {"USAGE"} for key in usage},
            ("TABLE", "PROD_DB.QUEUE.JOBS"): on_table,
            **{key: {"SELECT"} for key in views},
        }
    roles = all_parts["roles"]["statements"][1:]
    assert roles == [
        'CREATE ROLE IF NOT EXISTS "SFP_SERVICE"',
        'CREATE ROLE IF NOT EXISTS "SFP_ADMIN"',
        'GRANT ROLE "SFP_SERVICE" TO ROLE SYSADMIN',
        'GRANT ROLE "SFP_ADMIN" TO ROLE SYSADMIN',
    ]


def test_warehouse_part_creates_a_small_suspended_warehouse(
    all_parts: dict[str, dict[str, Any]],
) -> None:
    (statement,) = all_parts["warehouse"]["statements"][1:]
    assert statement.split() == [
        "CREATE", "WAREHOUSE", "IF", "NOT", "EXISTS", '"ETL_WH"',
        "WAREHOUSE_SIZE", "=", "XSMALL", "AUTO_SUSPEND", "=", "60",
        "AUTO_RESUME", "=", "TRUE", "INITIALLY_SUSPENDED", "=", "TRUE",
    ]  # fmt: skip


# -- on the emulator ---------------------------------------------------------------------


@pytest.fixture
def new_table(database_name: str) -> TableRef:
    """A queue table in a database that does not exist yet (the database part makes it)."""
    return TableRef(f"{database_name}_NEW", "QUEUE", "JOBS")


@pytest.fixture
def conn(snowflake_connect: Callable[..., Any]) -> Any:
    return snowflake_connect()


def _objects(conn: Any, table: TableRef) -> set[str]:
    """The tables and views in the queue table's schema."""
    found: set[str] = set()
    for kind in ("tables", "views"):
        rows = query(
            conn,
            f"SELECT table_name FROM {table.database}.information_schema.{kind} "
            "WHERE table_schema = ?",
            (table.schema,),
        )
        found.update(row[0] for row in rows)
    return found


def test_the_object_parts_build_a_queue_from_nothing_and_again_change_nothing(
    snowflake_server: ServerProcess, conn: Any, new_table: TableRef
) -> None:
    flags = queue_flags(snowflake_server.port, new_table)
    parts = ["--part", "database", "--part", "table", "--part", "views"]
    first = ok_json(run_cli("sql", "apply", *flags, *parts, "-o", "json"))
    assert [f["part"] for f in first["files"]] == ["database", "table", "views"]
    # What apply runs beyond the script: SHOW TABLES (the table's owner), and for 002's
    # upgrade SHOW COLUMNS and the rows without id, where the script widens unconditionally.
    assert first["statements_run"] == sum(len(f["statements"]) for f in first["files"]) + 2
    assert {"JOBS", "JOBS_STATUS", "JOBS_DEAD_LETTERS"} <= _objects(conn, new_table)
    target = SchemaTarget(table=new_table)
    insert(conn, target, id="a", data='{"n": 1}')
    before = snapshot(conn, target)
    again = run_cli("sql", "apply", *flags, *parts)
    assert again.returncode == 0, again.stderr
    assert snapshot(conn, target) == before


def test_rendered_parts_run_as_scripts(conn: Any, new_table: TableRef, tmp_path: Path) -> None:
    """What `snow sql -f rendered/NN_part.sql` does, USE ROLE included."""
    names = ["--database", new_table.database, "--schema", "queue", "--table", "jobs"]
    out_dir = tmp_path / "rendered"
    result = run_cli(
        "sql", "render", *names, "--part", "views", "--part", "table", "--part", "database",
        "--out-dir", str(out_dir),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    written = sorted(path.name for path in out_dir.iterdir())
    assert written == ["02_database.sql", "03_table.sql", "04_views.sql"]
    for name in written:
        text = (out_dir / name).read_text(encoding="utf-8")
        assert text.splitlines()[0].endswith("; run as SYSADMIN")
        for cursor in conn.execute_stream(io.StringIO(text)):
            cursor.close()
    assert {"JOBS", "JOBS_STATUS", "JOBS_DEAD_LETTERS"} <= _objects(conn, new_table)


# -- the cutover (docs/cutover.md) on a legacy table ------------------------------------------


def cutover_query(table: TableRef) -> str:
    """The query docs/cutover.md gives for the rows the legacy tasks left claimed."""
    text = (REPO / "docs" / "cutover.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sql\n(.*?)```", text, re.S)
    (found,) = [b for b in blocks if "claim_token IS NULL" in b]
    assert "PROD_DB.QUEUE.JOBS" in found
    return found.replace("PROD_DB.QUEUE.JOBS", table.sql).strip().rstrip(";")


def test_cutover_finds_and_releases_only_the_legacy_claims(
    snowflake_server: ServerProcess, snowflake_connect: Callable[..., Any], database_name: str
) -> None:
    table = TableRef(database_name, "QUEUE", "JOBS")
    conn = snowflake_connect(database=database_name)
    query(conn, f"CREATE SCHEMA IF NOT EXISTS {database_name}.QUEUE")
    target = SchemaTarget(table=table)
    for statement in legacy_schema_statements(target):
        query(conn, statement)
    # What the legacy design left: a claim with a time, one without, and rows it finished.
    insert(conn, target, id="legacy-held", data="{}", status="processing",
           processor_id="ecs-task-1", claimed_at_sql="DATEADD(minute, -5, SYSDATE())",
           retry_count=1)  # fmt: skip
    insert(conn, target, id="legacy-no-time", data="{}", status="processing",
           processor_id="ecs-task-2")  # fmt: skip
    insert(conn, target, id="legacy-done", data="{}", status="completed", retry_count=0)
    insert(conn, target, id="legacy-new", data="{}")

    flags = queue_flags(snowflake_server.port, table)
    upgraded = run_cli("sql", "apply", *flags, "--part", "table", "--part", "views")
    assert upgraded.returncode == 0, upgraded.stderr
    assert "CLAIM_TOKEN" in column_names(conn, table.sql)
    # A row this protocol claimed: it has a token, and it is not the legacy design's.
    query(
        conn,
        f"UPDATE {table.sql} SET status = 'processing', claim_token = 'tok', "
        "processor_id = 'job-1', claimed_at = SYSDATE() WHERE id = 'legacy-new'",
    )

    found = query(conn, cutover_query(table))
    assert {row[0] for row in found} == {"legacy-held", "legacy-no-time"}

    for _ in range(2):  # the second run finds nothing to release
        released = run_cli("sql", "apply", *flags, "--part", "release-legacy-claims")
        assert released.returncode == 0, released.stderr
    rows = {
        row[0]: row[1:]
        for row in query(
            conn,
            # IS NULL in SQL: the emulator reads a NULL TIMESTAMP_NTZ back as 1970-01-01.
            "SELECT id, status, processor_id, claimed_at IS NULL, retry_count, claim_token "
            f"FROM {table.sql}",
        )
    }
    assert rows["legacy-held"] == ("pending", None, True, 1, None)
    assert rows["legacy-no-time"] == ("pending", None, True, 0, None)
    assert rows["legacy-done"][0] == "completed"
    assert rows["legacy-new"] == ("processing", "job-1", False, 0, "tok")
    assert query(conn, cutover_query(table)) == []


def test_the_cutover_part_is_never_in_all(all_parts: dict[str, dict[str, Any]]) -> None:
    assert "release-legacy-claims" not in all_parts
    assert sql_parts.CUTOVER_PARTS[0].name == "release-legacy-claims"


def test_every_part_keeps_the_documented_rules(tmp_path: Path) -> None:
    """The rules tests/unit/test_snowflake_strictness.py holds sql/*.sql to, for the parts:
    no session-time-zone clock, no LIMIT where Snowflake refuses one."""
    output = terraform_output(tmp_path / "tf.json", ARNS)
    parts = render_parts(
        *TABLE_FLAGS, *ROLES, *ADMIN, "--terraform-output", str(output),
        "--part", "all", "--part", "release-legacy-claims",
    )  # fmt: skip
    assert len(parts) == 8
    for name, file in parts.items():
        for statement in file["statements"]:
            parsed = snowflake_rules.parse(statement)
            assert snowflake_rules.session_zone_times(parsed) == [], (name, statement)
            assert snowflake_rules.misplaced_limits(parsed) == [], (name, statement)


# -- who runs the parts that change the table: its owner ----------------------------------


def test_a_part_that_changes_the_table_refuses_a_chosen_role_that_does_not_own_it(
    snowflake_server: ServerProcess, conn: Any, new_table: TableRef
) -> None:
    """Made by the default objects role, SYSADMIN, the table is SYSADMIN's: run as
    QUEUE_OWNER by choice, part table stops before changing anything and says whose table it
    is and what to run."""
    flags = queue_flags(snowflake_server.port, new_table)
    made = run_cli("sql", "apply", *flags, "--part", "database", "--part", "table")
    assert made.returncode == 0, made.stderr
    columns = column_names(conn, new_table.sql)
    for part in ("table", "release-legacy-claims"):
        refused(
            run_cli("sql", "apply", *flags, "--part", part, "--objects-role", "queue_owner"),
            f"is owned by role SYSADMIN, and part {part} changes it",
            "--objects-role SYSADMIN",
            "GRANT OWNERSHIP ON TABLE",
        )
    assert column_names(conn, new_table.sql) == columns
    # The owner itself, chosen or by default, runs it.
    for extra in ([], ["--objects-role", "sysadmin"]):
        again = run_cli("sql", "apply", *flags, "--part", "table", *extra)
        assert again.returncode == 0, again.stderr


def test_the_table_part_runs_as_the_role_that_made_the_table(
    snowflake_server: ServerProcess, snowflake_connect: Callable[..., Any], new_table: TableRef
) -> None:
    """A table QUEUE_OWNER made (and so owns, as SHOW TABLES says), from before 005: part
    table with another role chosen stops before any change; without one, it runs as the
    owner. The emulator refuses the ALTER TABLE to any other role, as Snowflake does."""
    flags = queue_flags(snowflake_server.port, new_table)
    made = run_cli(
        "sql", "apply", *flags, "--part", "database", "--part", "table",
        "--objects-role", "queue_owner",
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    owner = snowflake_connect(role="QUEUE_OWNER")
    assert shown_table(owner, new_table)["owner"] == "QUEUE_OWNER"
    query(owner, f"ALTER TABLE {new_table.sql} DROP COLUMN result")  # made before 005
    sysadmin = snowflake_connect()
    with pytest.raises(ProgrammingError, match="Insufficient privileges to operate on table"):
        query(sysadmin, f"ALTER TABLE {new_table.sql} ADD COLUMN result VARCHAR(16384)")

    refused(
        run_cli("sql", "apply", *flags, "--part", "table", "--objects-role", "sfp_admin"),
        "is owned by role QUEUE_OWNER, and part table changes it",
        "--objects-role QUEUE_OWNER",
    )
    assert "RESULT" not in column_names(owner, new_table.sql)

    ran = run_cli("sql", "apply", *flags, "--part", "table")
    assert ran.returncode == 0, ran.stderr
    assert "is owned by QUEUE_OWNER; running it as QUEUE_OWNER" in ran.stderr
    assert column_names(owner, new_table.sql)[-1] == "RESULT"
    assert shown_table(owner, new_table)["owner"] == "QUEUE_OWNER"
