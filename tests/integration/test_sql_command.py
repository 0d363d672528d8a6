"""`snowflake-processor sql render|apply`: the schema installed without writing Python, run
as a user runs it against the Snowflake emulator; the rendered files run as scripts by the
connector's own script runner (what `snow sql -f` uses)."""

from __future__ import annotations

import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from snowflake_devtools.processes import ServerProcess
from snowflake_operator.queue_schema import ENSURE_FILES, GRANT_FILES, SchemaTarget
from snowflake_processor.cli import main
from snowflake_worker.identifiers import TableRef
from tests.support.cli import ok_json, queue_flags, refused, run_cli
from tests.support.sql_tables import (
    column_names,
    columns_info,
    insert,
    legacy_schema_statements,
    query,
    snapshot,
    status_row,
)

pytestmark = pytest.mark.integration

TABLE_FLAGS = ["--database", "prod_db", "--schema", "queue", "--table", "jobs"]
GRANTS = ["--service-role", "sfp_service", "--service-warehouse", "etl_wh"]


@pytest.fixture
def table(database_name: str, snowflake_connect: Callable[..., Any]) -> TableRef:
    """A queue table's name in a fresh database whose schema exists; no table yet."""
    return TableRef(database_name, "QUEUE", "JOBS")


@pytest.fixture
def conn(snowflake_connect: Callable[..., Any], table: TableRef) -> Any:
    return snowflake_connect(database=table.database)


@pytest.fixture
def flags(snowflake_server: ServerProcess, table: TableRef) -> list[str]:
    return queue_flags(snowflake_server.port, table)


def _tables(conn: Any, table: TableRef) -> set[str]:
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


def test_apply_creates_the_schema_and_applying_again_changes_nothing(
    flags: list[str], conn: Any, table: TableRef
) -> None:
    first = ok_json(run_cli("sql", "apply", *flags, "-o", "json"))
    assert [f["file"] for f in first["files"]] == list(ENSURE_FILES)
    assert first["dry_run"] is False
    # The script form of 002's upgrade is two statements (widen, fill); apply looks first
    # (SHOW COLUMNS), widens nothing here, and fills in one batch plus the rows without id.
    shown = sum(len(f["statements"]) for f in first["files"])
    assert first["statements_run"] == shown + 1 > 1
    assert {"JOBS", "JOBS_STATUS", "JOBS_DEAD_LETTERS"} <= _tables(conn, table)
    target = SchemaTarget(table=table)
    insert(conn, target, id="a", data='{"n": 1}')
    insert(conn, target, id="b", data='{"n": 2}', status="failed", retry_count=5)
    before = snapshot(conn, target)
    columns = column_names(conn, table.sql)
    again = run_cli("sql", "apply", *flags)
    assert again.returncode == 0, again.stderr
    assert "statements ran; every one is safe to run again" in again.stdout
    assert snapshot(conn, target) == before
    assert column_names(conn, table.sql) == columns
    assert status_row(conn, target)["FAILED"] == 1


def test_apply_upgrades_a_legacy_table_in_place(
    flags: list[str], conn: Any, table: TableRef
) -> None:
    target = SchemaTarget(table=table)
    for statement in legacy_schema_statements(target):
        query(conn, statement)
    query(conn, f"INSERT INTO {table.sql} (id, data) SELECT 'legacy-1', PARSE_JSON('{{}}')")
    query(conn, f"UPDATE {table.sql} SET retry_count = NULL, status = NULL")
    for _ in range(2):  # the second run finds nothing to do
        result = run_cli("sql", "apply", *flags, "--json")
        assert result.returncode == 0, result.stderr
    assert {"CLAIM_TOKEN", "NEXT_ATTEMPT_AT"} <= set(column_names(conn, table.sql))
    assert snapshot(conn, target) == [("legacy-1", {}, "pending", 0, None)]


def test_the_dry_run_prints_the_statements_and_changes_nothing(
    flags: list[str], conn: Any, table: TableRef
) -> None:
    result = run_cli("sql", "apply", *flags, "--dry-run")
    assert result.returncode == 0, result.stderr
    assert f'CREATE TABLE IF NOT EXISTS "{table.database}"."QUEUE"."JOBS"' in result.stdout
    assert result.stdout.rstrip().endswith("-- dry run: nothing was sent to Snowflake (4 files)")
    document = ok_json(run_cli("sql", "apply", *flags, "--dry-run", "-o", "json"))
    assert document["dry_run"] is True and "statements_run" not in document
    assert _tables(conn, table) == set()


def test_rendered_files_run_as_scripts(
    conn: Any, table: TableRef, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What `snow sql -f FILE` does: the connector splits the file into statements and runs
    them (Snowflake CLI's `snow sql` runs files through execute_stream)."""
    names = ["--database", table.database, "--schema", "queue", "--table", "jobs"]
    out_dir = tmp_path / "rendered"
    assert main(["sql", "render", *names, "--out-dir", str(out_dir)]) == 0
    written = sorted(path.name for path in out_dir.iterdir())
    assert written == list(ENSURE_FILES)
    for name in written:
        text = (out_dir / name).read_text(encoding="utf-8")
        for cursor in conn.execute_stream(io.StringIO(text)):
            cursor.close()
    assert {"JOBS", "JOBS_STATUS", "JOBS_DEAD_LETTERS"} <= _tables(conn, table)
    # Printed to stdout instead: the same statements, one script.
    capsys.readouterr()
    assert main(["sql", "render", *names]) == 0
    printed = capsys.readouterr().out
    for name in written:
        body = (out_dir / name).read_text(encoding="utf-8")
        assert body in printed


def test_render_fills_in_the_grants_from_flags_or_a_resource(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sql", "render", *TABLE_FLAGS, *GRANTS, "-o", "json"]) == 0
    import json

    document = json.loads(capsys.readouterr().out)
    # In file-name order: the grants (004) before the result column (005).
    assert [f["file"] for f in document["files"]] == sorted([*ENSURE_FILES, *GRANT_FILES])
    (grants,) = [f["statements"] for f in document["files"] if f["file"] == "004_grants.sql"]
    assert 'CREATE ROLE IF NOT EXISTS "SFP_SERVICE"' in grants
    assert 'GRANT SELECT, UPDATE ON TABLE "PROD_DB"."QUEUE"."JOBS" TO ROLE "SFP_SERVICE"' in grants
    assert 'GRANT USAGE ON WAREHOUSE "ETL_WH" TO ROLE "SFP_SERVICE"' in grants
    resource = tmp_path / "processor.yaml"
    resource.write_text(
        """\
kind: SnowflakeProcessor
spec:
  snowflake: {account: acme, database: prod_db, schema: queue, table: jobs,
              role: sfp_service, warehouse: etl_wh}
  endpoint: {url: "https://service.example/entries"}
""",
        encoding="utf-8",
    )
    assert main(["sql", "render", "--resource", str(resource)]) == 0
    from_resource = capsys.readouterr().out
    assert "-- 004_grants.sql, rendered for PROD_DB.QUEUE.JOBS" in from_resource
    assert 'GRANT SELECT ON VIEW "PROD_DB"."QUEUE"."JOBS_STATUS" TO ROLE "SFP_SERVICE";' in (
        from_resource
    )
    assert main(["sql", "render", "--resource", str(resource), "--no-grants"]) == 0
    assert "004_grants.sql" not in capsys.readouterr().out


def test_bad_variables_are_refused_before_anything_runs(
    flags: list[str], conn: Any, table: TableRef
) -> None:
    refused(run_cli("sql", "render"), "missing --database, --schema, --table")
    refused(
        run_cli("sql", "render", *TABLE_FLAGS, "--service-role", "sfp_service"),
        "give --service-warehouse",
    )
    refused(
        run_cli("sql", "render", *TABLE_FLAGS, "--service-role", "bad-role", "--no-grants"),
        "invalid service role 'bad-role'",
    )
    refused(run_cli("sql", "apply", *TABLE_FLAGS), "missing --account")
    refused(run_cli("sql", "apply", *flags, "--service-role", "x; DROP"), "x; DROP")
    refused(run_cli("sql"), "SUBCOMMAND")
    assert _tables(conn, table) == set()


def test_transient_is_rendered_on_request_and_checked(
    flags: list[str], conn: Any, table: TableRef
) -> None:
    plain = ok_json(run_cli("sql", "render", *TABLE_FLAGS, "-o", "json"))
    assert plain["files"][0]["statements"][0].startswith("CREATE TABLE IF NOT EXISTS")
    transient = ok_json(run_cli("sql", "render", *TABLE_FLAGS, "--transient", "-o", "json"))
    created = transient["files"][0]["statements"][0]
    assert created.startswith('CREATE TRANSIENT TABLE IF NOT EXISTS "PROD_DB"."QUEUE"."JOBS"')
    assert created.endswith("\nDATA_RETENTION_TIME_IN_DAYS = 1")  # the default: a day
    none = ok_json(run_cli("sql", "render", *TABLE_FLAGS, "--transient", "--retention-days",
                           "0", "--part", "table", "-o", "json"))  # fmt: skip
    assert none["files"][0]["statements"][1].endswith("\nDATA_RETENTION_TIME_IN_DAYS = 0")
    refused(run_cli("sql", "render", *TABLE_FLAGS, "--retention-days", "1"),
            "--retention-days goes with --transient")  # fmt: skip
    refused(run_cli("sql", "render", *TABLE_FLAGS, "--transient", "--retention-days", "7"),
            "argument --retention-days: invalid choice: 7")  # fmt: skip
    refused(run_cli("sql", "render", *TABLE_FLAGS, "--transient", "--retention-days", "1; DROP"),
            "argument --retention-days")  # fmt: skip
    applied = run_cli("sql", "apply", *flags, "--transient", "--retention-days", "0")
    assert applied.returncode == 0, applied.stderr
    assert {"JOBS", "JOBS_STATUS", "JOBS_DEAD_LETTERS"} <= _tables(conn, table)


def test_apply_upgrades_a_legacy_table_with_a_wide_id_in_batches(
    flags: list[str], conn: Any, table: TableRef
) -> None:
    """A legacy table whose id is VARCHAR(200): kept (Snowflake cannot shrink it), and its
    NULLs filled 3 rows per UPDATE."""
    target = SchemaTarget(table=table)
    query(conn, "\n".join(legacy_schema_statements(target)).replace("VARCHAR(36)", "VARCHAR(200)"))
    for n in range(7):
        query(conn, f"INSERT INTO {table.sql} (id, data) SELECT ?, PARSE_JSON('{{}}')",
              (f"legacy-{n}-" + "y" * 100,))  # fmt: skip
    query(conn, f"UPDATE {table.sql} SET retry_count = NULL, status = NULL")
    result = run_cli("sql", "apply", *flags, "--batch-size", "3")
    assert result.returncode == 0, result.stderr
    assert "002: id wide enough, kept; 7 rows filled in 3 batch(es) of at most 3" in result.stderr
    assert columns_info(conn, target)["ID"] == ("YES", "TEXT", 200)
    assert {(r[2], r[3]) for r in snapshot(conn, target)} == {("pending", 0)}
    refused(run_cli("sql", "apply", *flags, "--batch-size", "0"), "--batch-size")
