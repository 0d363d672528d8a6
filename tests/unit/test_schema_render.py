"""Rendering the SQL files: placeholders, identifiers, comments and statement splitting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

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
    """Stands in for a connector connection; records whether any SQL was sent."""

    def __init__(self) -> None:
        self.executed: list[str] = []
        self.cursors_opened = 0

    def cursor(self) -> Any:
        self.cursors_opened += 1
        connection = self

        class Cursor:
            def execute(self, statement: str) -> None:
                connection.executed.append(statement)

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
    assert connection.executed[0].startswith('CREATE TABLE IF NOT EXISTS "ANALYTICS"')
    assert connection.executed[1].startswith('ALTER TABLE "ANALYTICS"."QUEUE"."JOBS" ALTER COLUMN')
    assert connection.executed[2].startswith('ALTER TABLE "ANALYTICS"."QUEUE"."JOBS" ADD COLUMN')
    assert connection.executed[-2].startswith(
        'CREATE OR REPLACE VIEW "ANALYTICS"."QUEUE"."JOBS_DEAD_LETTERS"'
    )
    assert connection.executed[-1] == (
        'ALTER TABLE "ANALYTICS"."QUEUE"."JOBS" ADD COLUMN IF NOT EXISTS result VARCHAR(16384)'
    )


@pytest.mark.parametrize(
    ("file_name", "expected_count"),
    [
        ("001_queue_table.sql", 1),
        ("002_migrate_from_legacy.sql", 5),
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
