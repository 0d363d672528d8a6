"""SHOW TABLES' ``rows`` and ``bytes`` as Snowflake reports them, for the emulator's model,
and the columns it fills from its own records (table_records.py: ``owner``, ``kind``,
``retention_time``).

fakesnow answers 0 for both, for every table (constants in its SHOW view). Snowflake
reports the table's row count and the bytes of its active micro-partitions, which change
whenever rows are added, removed or rewritten: the operator's idle gate compares them
(snowflake_operator.poll.idle_gate). The model fills both for each table in the answer:

- ``rows``: COUNT(*) of the table;
- ``bytes``: the size of its rows as JSON text (every column, NULLs included), what the
  data would take uncompressed. An INSERT or DELETE changes it, and so does an UPDATE that
  changes the length of any value (every statement of the queue protocol does: statuses,
  tokens and times set or cleared). An UPDATE that leaves every value's length as it was
  leaves it unchanged; on Snowflake the rewritten micro-partitions usually move it.

Two pure steps around the model's own probe query (run on the statement's session): which
tables an answer lists, and the answer with their sizes and records put in (one re-encoding
of fakesnow's arrow answer for all of them).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]
from sqlglot import exp

TableName = tuple[str, str, str]  # database, schema, table as SHOW lists them

_NAME_COLUMNS = ("database_name", "schema_name", "name")
SIZE_COLUMNS = ("rows", "bytes")


def shows_tables(statement: exp.Expr) -> bool:
    """SHOW [TERSE] TABLES (the terse answer has no sizes and no owner: the answer decides)."""
    return isinstance(statement, exp.Show) and statement.name.upper() == "TABLES"


def size_probe(table: TableName) -> str:
    """The model's query of one table's (rows, bytes), in Snowflake SQL."""
    name = ".".join('"' + part.replace('"', '""') + '"' for part in table)
    return (
        "SELECT COUNT(*), COALESCE(SUM(LENGTH(TO_JSON(OBJECT_CONSTRUCT_KEEP_NULL(*)))), 0) "
        f"FROM {name}"
    )


def listed_tables(body: bytes) -> list[TableName]:
    """The tables a successful SHOW TABLES answer lists; empty for any other answer."""
    decoded = _decoded(body)
    if decoded is None:
        return []
    return _names(decoded[1])


def with_columns(body: bytes, values: Mapping[TableName, Mapping[str, Any]]) -> bytes:
    """The answer with, for each listed table in ``values``, its columns set to the values
    given (column name -> value; a column the answer lacks is left out, a table or column
    missing from ``values`` keeps fakesnow's figure)."""
    decoded = _decoded(body)
    if decoded is None or not values:
        return body
    answer, table = decoded
    names = _names(table)
    columns = sorted({column for given in values.values() for column in given})
    for column in columns:
        index = table.schema.get_field_index(column)
        if index < 0:
            continue
        field = table.schema.field(index)
        old = table.column(index).to_pylist()
        new = [
            values[name][column] if column in values.get(name, {}) else old[row]
            for row, name in enumerate(names)
        ]
        table = table.set_column(index, field, pa.array(new, type=field.type))
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    answer["data"]["rowsetBase64"] = base64.b64encode(sink.getvalue().to_pybytes()).decode()
    return json.dumps(answer).encode()


def _names(table: pa.Table) -> list[TableName]:
    columns = [table.column(column).to_pylist() for column in _NAME_COLUMNS]
    return [(str(d), str(s), str(n)) for d, s, n in zip(*columns, strict=True)]


def _decoded(body: bytes) -> tuple[dict[str, Any], pa.Table] | None:
    """The answer and its rows, when it is a successful arrow answer with the name columns
    of SHOW TABLES."""
    try:
        answer = json.loads(body or b"{}")
    except ValueError:
        return None
    data = answer.get("data") if isinstance(answer, dict) else None
    if not (answer.get("success") and isinstance(data, dict)):
        return None
    names = {str(column.get("name", "")).lower() for column in data.get("rowtype") or []}
    if not names.issuperset(_NAME_COLUMNS):
        return None
    if data.get("queryResultFormat") != "arrow" or not data.get("rowsetBase64"):
        return None
    raw = base64.b64decode(data["rowsetBase64"])
    return answer, pa.ipc.open_stream(pa.BufferReader(raw)).read_all()
