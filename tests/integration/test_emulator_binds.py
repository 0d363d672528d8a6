"""The emulator refuses a bind in SHOW and DDL as Snowflake's server does (fakesnow runs
them), through the real connector with server-side (qmark) binds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from snowflake.connector.errors import ProgrammingError

from snowflake_worker.identifiers import TableRef
from tests.support.snowflake import location


@pytest.mark.parametrize(
    ("sql", "position"),
    [
        ("SHOW TABLES LIKE ? IN SCHEMA {schema}", 17),
        ("ALTER TABLE {table} ADD COLUMN note VARCHAR DEFAULT ?", 0),
    ],
)
def test_a_bind_in_show_or_ddl_is_a_syntax_error(
    snowflake_connect: Callable[..., Any], queue_table: TableRef, sql: str, position: int
) -> None:
    schema = f'"{queue_table.database}"."{queue_table.schema}"'
    text = sql.format(schema=schema, table=queue_table.sql)
    cursor = snowflake_connect(**location(queue_table)).cursor()
    with pytest.raises(ProgrammingError) as refused:
        cursor.execute(text, (queue_table.table,))
    assert refused.value.errno == 1003 and refused.value.sqlstate == "42000"
    assert f"at position {position or text.index('?')} unexpected '?'" in str(refused.value)


def test_the_same_values_as_literals_or_in_dml_still_run(
    snowflake_connect: Callable[..., Any], queue_table: TableRef
) -> None:
    cursor = snowflake_connect(**location(queue_table)).cursor()
    schema = f'"{queue_table.database}"."{queue_table.schema}"'
    names = [row[1] for row in cursor.execute(f"SHOW TABLES IN SCHEMA {schema}").fetchall()]
    assert queue_table.table in names
    (count,) = cursor.execute(
        f"SELECT COUNT(*) FROM {queue_table.sql} WHERE status = ?", ("pending",)
    ).fetchone()
    assert count == 0
