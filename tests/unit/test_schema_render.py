"""Rendering the SQL files: placeholders, identifiers, comments and statement splitting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import sqlglot
from sqlglot import exp

from snowflake_operator import legacy_upgrade
from snowflake_operator import queue_schema as schema
from snowflake_operator.queue_schema import SchemaTarget, apply, render, render_text
from snowflake_worker.identifiers import InvalidIdentifier, TableRef

ALL_FILES = (
    "001_queue_table.sql",
    "002_migrate_from_legacy.sql",
    "003_monitoring_views.sql",
    "004_grants.sql",
    "005_result_column.sql",
)


class RecordingConnection:
    """Stands in for a connector connection; records what SQL was sent. SHOW COLUMNS
    answers ``id_type`` (SHOW's JSON); each UPDATE changes the next of ``updated`` rows."""

    def __init__(self, id_type: str = '{"type":"TEXT","length":64}', updated: Any = ()) -> None:
        self.executed: list[str] = []
        self.binds: list[Any] = []
        self.cursors_opened = 0
        self.id_type = id_type
        self.updated = list(updated)

    def cursor(self) -> Any:
        self.cursors_opened += 1
        connection = self

        class Cursor:
            rowcount = 0

            @property
            def description(self) -> list[tuple[str]]:
                return [("column_name",), ("data_type",)]

            def execute(self, statement: str, binds: Any = None) -> None:
                connection.executed.append(statement)
                connection.binds.append(binds)
                self.rowcount = 0
                if statement.startswith("UPDATE") and connection.updated:
                    self.rowcount = connection.updated.pop(0)

            def fetchall(self) -> list[tuple[str, str]]:
                return [("ID", connection.id_type)]

            def close(self) -> None:
                pass

        return Cursor()


@pytest.fixture
def full_target() -> SchemaTarget:
    return SchemaTarget(TableRef("analytics", "queue", "jobs"), warehouse="wh", service_role="svc")


def test_placeholders_are_normalised_quoted_identifiers(full_target: SchemaTarget) -> None:
    assert full_target.placeholders() == {
        "queue_table": '"ANALYTICS"."QUEUE"."JOBS"',
        "status_view": '"ANALYTICS"."QUEUE"."JOBS_STATUS"',
        "dead_letter_view": '"ANALYTICS"."QUEUE"."JOBS_DEAD_LETTERS"',
        "database": '"ANALYTICS"',
        "schema": '"QUEUE"',
        "warehouse": '"WH"',
        "service_role": '"SVC"',
    }


def test_optional_placeholders_absent_when_unset() -> None:
    values = SchemaTarget(TableRef("d", "s", "t")).placeholders()
    assert "warehouse" not in values
    assert "service_role" not in values


@pytest.mark.parametrize(
    "make_target",
    [
        lambda: SchemaTarget(TableRef("db", "queue", 'jobs"; DROP TABLE x; --')),
        lambda: SchemaTarget(TableRef("db", "queue", "jobs"), warehouse="wh; DROP TABLE x"),
        lambda: SchemaTarget(TableRef("db", "queue", "jobs"), service_role='svc" TO ROLE "X'),
        lambda: SchemaTarget(TableRef("db", "queue", "jobs"), warehouse=""),
    ],
)
def test_bad_identifier_is_rejected_before_any_sql(make_target: Any) -> None:
    with pytest.raises(InvalidIdentifier):
        make_target()


def test_bad_identifier_smuggled_past_construction_still_fails_render() -> None:
    target = SchemaTarget(TableRef("db", "queue", "jobs"), warehouse="wh", service_role="svc")
    object.__setattr__(target, "warehouse", 'WH" TO ROLE ACCOUNTADMIN; --')
    connection = RecordingConnection()
    with pytest.raises(InvalidIdentifier):
        apply(connection, ("004_grants.sql",), target)
    assert connection.executed == []


def test_missing_warehouse_names_the_placeholder() -> None:
    target = SchemaTarget(TableRef("db", "queue", "jobs"), service_role="svc")
    with pytest.raises(ValueError, match=r"004_grants\.sql.*\{\{ warehouse \}\}"):
        render("004_grants.sql", target)


def test_missing_service_role_names_the_placeholder() -> None:
    target = SchemaTarget(TableRef("db", "queue", "jobs"), warehouse="wh")
    with pytest.raises(ValueError, match=r"\{\{ service_role \}\}"):
        render("004_grants.sql", target)


def test_unknown_placeholder_names_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, full_target: SchemaTarget
) -> None:
    (tmp_path / "900_typo.sql").write_text("SELECT * FROM {{ queue_tabel }};\n")
    monkeypatch.setattr(schema, "SQL_DIR", tmp_path)
    with pytest.raises(
        ValueError, match=r"900_typo\.sql: unknown placeholder \{\{ queue_tabel \}\}"
    ):
        render("900_typo.sql", full_target)


def test_malformed_placeholder_is_an_error(full_target: SchemaTarget) -> None:
    with pytest.raises(ValueError, match="malformed placeholder"):
        render_text("SELECT * FROM {{ queue table }}", full_target)


def test_placeholder_in_a_comment_is_not_required() -> None:
    target = SchemaTarget(TableRef("db", "queue", "jobs"))  # no warehouse
    assert render_text("-- needs {{ warehouse }} later\nSELECT 1;", target) == ["SELECT 1"]


def test_apply_renders_every_file_before_running_any() -> None:
    target = SchemaTarget(TableRef("db", "queue", "jobs"), service_role="svc")  # no warehouse
    connection = RecordingConnection()
    with pytest.raises(ValueError, match="warehouse"):
        apply(connection, ("001_queue_table.sql", "004_grants.sql"), target)
    assert connection.cursors_opened == 0
    assert connection.executed == []


def test_apply_runs_statements_in_order_and_counts_them(full_target: SchemaTarget) -> None:
    connection = RecordingConnection()
    count = apply(connection, schema.ENSURE_FILES, full_target)
    assert count == len(connection.executed) == 9
    table = '"ANALYTICS"."QUEUE"."JOBS"'
    assert connection.executed[0].startswith(f"CREATE TABLE IF NOT EXISTS {table}")
    assert connection.executed[1].startswith(f"ALTER TABLE {table} ADD COLUMN")
    assert connection.executed[2].startswith(f"ALTER TABLE {table} ADD COLUMN")
    # 002's upgrade: id is already 64 wide, so no ALTER; one backfill batch finds nothing.
    assert connection.executed[3] == f"SHOW COLUMNS LIKE 'ID' IN TABLE {table}"
    assert connection.executed[4].startswith(f"UPDATE {table} SET retry_count = COALESCE(")
    assert connection.binds[4] == (10_000,)
    assert connection.executed[5].startswith(f"UPDATE {table} SET ")
    assert "WHERE id IS NULL" in connection.executed[5]
    assert connection.executed[-2].startswith(
        'CREATE OR REPLACE VIEW "ANALYTICS"."QUEUE"."JOBS_DEAD'
    )
    assert connection.executed[-1] == (
        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS result VARCHAR(16384)"
    )


@pytest.mark.parametrize(
    ("id_type", "widened"),
    [
        ('{"type":"TEXT","length":36,"byteLength":144,"nullable":true,"fixed":false}', True),
        ('{"type":"TEXT","length":63}', True),
        ('{"type":"TEXT","length":64}', False),
        ('{"type":"TEXT","length":200,"byteLength":800,"nullable":true,"fixed":false}', False),
        ('{"type":"TEXT","length":16777216}', False),
    ],
)
def test_002_widens_id_only_when_it_is_narrower_than_64(
    full_target: SchemaTarget, id_type: str, widened: bool
) -> None:
    connection = RecordingConnection(id_type=id_type)
    apply(connection, ("002_migrate_from_legacy.sql",), full_target)
    alters = [s for s in connection.executed if "SET DATA TYPE" in s]
    assert alters == (
        ['ALTER TABLE "ANALYTICS"."QUEUE"."JOBS" ALTER COLUMN id SET DATA TYPE VARCHAR(64)']
        if widened
        else []
    )


@pytest.mark.parametrize(
    "id_type", ['{"type":"FIXED","precision":38,"scale":0}', "not json", '{"type":"TEXT"}']
)
def test_002_refuses_an_id_column_it_cannot_read_as_text(
    full_target: SchemaTarget, id_type: str
) -> None:
    with pytest.raises(legacy_upgrade.UpgradeError, match="column ID"):
        apply(RecordingConnection(id_type=id_type), ("002_migrate_from_legacy.sql",), full_target)


def test_002_backfills_batch_by_batch_until_one_comes_up_short(full_target: SchemaTarget) -> None:
    connection = RecordingConnection(updated=[100, 100, 37, 2])  # the last: rows without id
    options = schema.RunOptions(batch_rows=100)
    ran = schema.apply(connection, ("002_migrate_from_legacy.sql",), full_target, options)
    updates = [
        (s, b) for s, b in zip(connection.executed, connection.binds, strict=True) if "UPDATE" in s
    ]
    assert [b for _, b in updates] == [(100,), (100,), (100,), None]
    assert all("QUALIFY ROW_NUMBER() OVER (ORDER BY id) <= ?" in s for s, _ in updates[:3])
    assert "LIMIT" not in " ".join(s for s, _ in updates)
    assert ran == 2 + 1 + 4  # the file's two ADD COLUMNs, SHOW COLUMNS, four UPDATEs


def test_render_gives_002_its_script_form_and_apply_its_steps(full_target: SchemaTarget) -> None:
    statements = render("002_migrate_from_legacy.sql", full_target)
    assert statements[2:] == [
        'ALTER TABLE "ANALYTICS"."QUEUE"."JOBS" ALTER COLUMN id SET DATA TYPE VARCHAR(64)',
        'UPDATE "ANALYTICS"."QUEUE"."JOBS" SET retry_count = COALESCE(retry_count, 0), '
        "status = COALESCE(status, 'pending') WHERE (retry_count IS NULL OR status IS NULL)",
    ]
    steps = schema.steps("002_migrate_from_legacy.sql", full_target)
    assert steps[:2] == statements[:2]
    assert steps[2:] == [schema.LegacyUpgrade(full_target.table)]


# -- 001: permanent, or transient with a short Time Travel ---------------------------------


def test_001_is_permanent_unless_asked(full_target: SchemaTarget) -> None:
    (statement,) = render("001_queue_table.sql", full_target)
    assert statement.startswith('CREATE TABLE IF NOT EXISTS "ANALYTICS"."QUEUE"."JOBS" (')
    assert statement.endswith("\n)")
    assert "TRANSIENT" not in statement and "RETENTION" not in statement


@pytest.mark.parametrize("days", [None, 0, 1])
def test_001_transient_with_its_retention(days: int | None) -> None:
    target = SchemaTarget(TableRef("db", "queue", "jobs"), transient=True, retention_days=days)
    (statement,) = render("001_queue_table.sql", target)
    assert statement.startswith('CREATE TRANSIENT TABLE IF NOT EXISTS "DB"."QUEUE"."JOBS" (')
    if days is None:
        assert statement.endswith("\n)")
    else:
        assert statement.endswith(f"\n)\nDATA_RETENTION_TIME_IN_DAYS = {days}")
    parsed = sqlglot.parse_one(statement, read="snowflake")
    assert isinstance(parsed, exp.Create)
    assert "TRANSIENT" in parsed.sql(dialect="snowflake")


@pytest.mark.parametrize(
    ("transient", "days", "message"),
    [
        (False, 1, "goes with a transient table"),
        (True, 2, "0 or 1 day"),
        (True, 7, "0 or 1 day"),
        (True, True, "0 or 1 day"),
        (True, "1", "0 or 1 day"),
    ],
)
def test_a_retention_that_is_not_0_or_1_on_a_transient_table_is_refused(
    transient: bool, days: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        SchemaTarget(TableRef("db", "queue", "jobs"), transient=transient, retention_days=days)


@pytest.mark.parametrize(
    ("file_name", "expected_count"),
    [
        ("001_queue_table.sql", 1),
        ("002_migrate_from_legacy.sql", 4),
        ("003_monitoring_views.sql", 2),
        ("004_grants.sql", 7),
        ("005_result_column.sql", 1),
    ],
)
def test_rendered_files_have_no_placeholders_or_comments(
    file_name: str, expected_count: int, full_target: SchemaTarget
) -> None:
    statements = render(file_name, full_target)
    assert len(statements) == expected_count
    for statement in statements:
        assert statement.strip() == statement != ""
        assert "\n\n" not in statement
        assert "{{" not in statement
        assert "}}" not in statement
        assert "--" not in statement
        assert ";" not in statement


def test_every_sql_file_is_covered() -> None:
    on_disk = tuple(sorted(p.name for p in schema.SQL_DIR.glob("*.sql")))
    assert on_disk == ALL_FILES
    covered = set(schema.CREATE_FILES) | set(schema.MIGRATE_FILES) | set(schema.GRANT_FILES)
    assert covered == set(ALL_FILES)


def test_ensure_files_migrate_before_creating_views() -> None:
    order = schema.ENSURE_FILES
    assert order.index("002_migrate_from_legacy.sql") < order.index("003_monitoring_views.sql")
    assert set(order) == set(schema.CREATE_FILES) | set(schema.MIGRATE_FILES)


def test_split_on_semicolons_drops_empty_statements(full_target: SchemaTarget) -> None:
    sql = "SELECT 1;\n\n  ;\n-- only a comment;\nSELECT\n    2\n;"
    assert render_text(sql, full_target) == ["SELECT 1", "SELECT\n    2"]


@pytest.mark.parametrize("file_name", ["../pyproject.toml", "sub/001.sql", "001_queue_table"])
def test_file_names_must_be_bare_sql_names(file_name: str, full_target: SchemaTarget) -> None:
    with pytest.raises(ValueError, match="invalid SQL file name"):
        render(file_name, full_target)


def test_missing_file_lists_the_available_ones(full_target: SchemaTarget) -> None:
    with pytest.raises(ValueError, match=r"no SQL file '999_nope\.sql'.*001_queue_table\.sql"):
        render("999_nope.sql", full_target)
