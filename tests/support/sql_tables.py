"""Reading and writing queue tables with plain SQL, apart from the queue protocol: what the
SQL-file tests check the files' results with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from snowflake_operator.queue_schema import SchemaTarget, ensure_queue_table, render_text
from snowflake_worker.identifiers import TableRef, quote_identifier

# The queue table of the legacy design (Lambda and ECS) this project replaces, under the
# file name sql/README.md gives it.
LEGACY_SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "legacy_schema.sql"


def legacy_schema_statements(target: SchemaTarget) -> list[str]:
    """The statements that create the queue table as the legacy design did, before the
    migrations (tests/fixtures/legacy_schema.sql), for ``target``."""
    return list(render_text(LEGACY_SCHEMA.read_text(), target, source=LEGACY_SCHEMA.name))


def migrated_legacy_table(conn: Any, table: TableRef) -> None:
    """Create ``table`` as the legacy design did, then upgrade it in place (001, 002, 003)."""
    target = SchemaTarget(table=table)
    for statement in legacy_schema_statements(target):
        query(conn, statement)
    ensure_queue_table(conn, target)


def query(conn: Any, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    cursor = conn.cursor()
    try:
        cursor.execute(sql, params)
        return list(cursor.fetchall())
    finally:
        cursor.close()


def shown_table(conn: Any, table: TableRef) -> dict[str, Any]:
    """The table's row of SHOW TABLES IN SCHEMA, by lower-case column name (owner, kind,
    retention_time, rows, bytes...)."""
    cursor = conn.cursor()
    try:
        schema = f"{quote_identifier(table.database)}.{quote_identifier(table.schema)}"
        cursor.execute(f"SHOW TABLES IN SCHEMA {schema}")
        names = [column[0].lower() for column in cursor.description]
        rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
    finally:
        cursor.close()
    (found,) = [row for row in rows if row["name"] == table.table]
    return found


def column_names(conn: Any, table_sql: str) -> list[str]:
    cursor = conn.cursor()
    try:
        cursor.execute(f"SELECT * FROM {table_sql} LIMIT 0")
        return [column.name.upper() for column in cursor.description]
    finally:
        cursor.close()


def insert(conn: Any, target: SchemaTarget, **values: Any) -> None:
    """Insert one row; `data` is JSON text, `*_sql` values are SQL expressions (fixed here)."""
    names: list[str] = []
    exprs: list[str] = []
    params: list[Any] = []
    for name, value in values.items():
        if name.endswith("_sql"):
            names.append(name.removesuffix("_sql"))
            exprs.append(value)
        elif name == "data":
            names.append(name)
            exprs.append("PARSE_JSON(?)")
            params.append(value)
        else:
            names.append(name)
            exprs.append("?")
            params.append(value)
    query(
        conn,
        f"INSERT INTO {target.table.sql} ({', '.join(names)}) SELECT {', '.join(exprs)}",
        tuple(params),
    )


def status_row(conn: Any, target: SchemaTarget) -> dict[str, Any]:
    cursor = conn.cursor()
    try:
        cursor.execute(f"SELECT * FROM {target.status_view.sql}")
        names = [column.name.upper() for column in cursor.description]
        rows = cursor.fetchall()
    finally:
        cursor.close()
    assert len(rows) == 1
    return dict(zip(names, rows[0], strict=True))


def columns_info(conn: Any, target: SchemaTarget) -> dict[str, tuple[Any, ...]]:
    """Column -> (nullable, type, max length), from the database's information_schema."""
    rows = query(
        conn,
        f"SELECT column_name, is_nullable, data_type, character_maximum_length"
        f" FROM {quote_identifier(target.table.database)}.information_schema.columns"
        f" WHERE table_schema = ? AND table_name = ?",
        (target.table.schema, target.table.table),
    )
    return {row[0]: tuple(row[1:]) for row in rows}


def snapshot(conn: Any, target: SchemaTarget) -> list[tuple[Any, ...]]:
    rows = query(
        conn,
        f"SELECT id, data, status, retry_count, error_message FROM {target.table.sql} ORDER BY id",
    )
    return [(r[0], json.loads(r[1]), r[2], r[3], r[4]) for r in rows]
