"""The part of 002 (upgrading a legacy table in place) that must look before it acts: widen
``id`` only when it is narrower than the protocol's 64 characters, and fill the NULLs legacy
writers left in batches.

Snowflake refuses to shrink a VARCHAR, so the file's old unconditional ``ALTER ... SET DATA
TYPE VARCHAR(64)`` failed on a legacy table whose id was already wider; and one ``UPDATE``
over a large table holds its lock for as long as it rewrites every row. A static file can do
neither, so ``sql apply`` (and ``ensure_queue_table``) run this code after the file's own
statements: ``SHOW COLUMNS`` (no warehouse) to read the width, then ``UPDATE``s that each
choose at most ``batch_rows`` ids, the count bound on the server. ``sql render`` prints
:func:`script_statements` instead, for Snowflake's own tools, which cannot look or loop.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from snowflake_worker.identifiers import TableRef

ID_LENGTH = 64  # the protocol's ids: sql/001, and what enqueue accepts
DEFAULT_BATCH_ROWS = 10_000

# The pattern is a constant: SHOW takes LIKE '<pattern>' as a literal, never a bind.
ID_COLUMN = "SHOW COLUMNS LIKE 'ID' IN TABLE {table}"
WIDEN_ID = f"ALTER TABLE {{table}} ALTER COLUMN id SET DATA TYPE VARCHAR({ID_LENGTH})"
# Legacy code treated a NULL retry_count as 0 and a NULL status as never picked up.
_FILL = "retry_count = COALESCE(retry_count, 0), status = COALESCE(status, 'pending')"
_HOLES = "(retry_count IS NULL OR status IS NULL)"
# One batch: up to ? ids with a hole, the same QUALIFY as the claim (Snowflake allows no
# LIMIT in an IN subquery); the outer test again, so a repeated id's other rows are left.
BACKFILL_BATCH = (
    f"UPDATE {{table}} SET {_FILL} WHERE id IN (SELECT id FROM {{table}} WHERE {_HOLES} "
    f"QUALIFY ROW_NUMBER() OVER (ORDER BY id) <= ?) AND {_HOLES}"
)
# Rows without an id cannot be chosen by id: as many as a legacy writer left, usually none.
BACKFILL_NO_ID = f"UPDATE {{table}} SET {_FILL} WHERE id IS NULL AND {_HOLES}"
# What `sql render` prints: Snowflake's own tools can run it, in one statement.
BACKFILL_ALL = f"UPDATE {{table}} SET {_FILL} WHERE {_HOLES}"


class UpgradeError(ValueError):
    """The table is not one 002 can upgrade (no id column, or not text): said in one line."""


def id_needs_widening(data_type: str, table: TableRef) -> bool:
    """From SHOW COLUMNS' ``data_type`` of ``id`` (JSON: ``{"type":"TEXT","length":36,...}``),
    whether 002 must widen it: only text shorter than the protocol's ids. Wider is left as
    it is (Snowflake cannot shrink it, and it holds every id the protocol writes)."""
    try:
        described = json.loads(data_type)
    except (TypeError, json.JSONDecodeError):
        raise UpgradeError(f"{table}: cannot read the type of column ID: {data_type!r}") from None
    if not isinstance(described, Mapping) or described.get("type") != "TEXT":
        raise UpgradeError(
            f"{table}: column ID is not text ({data_type}); the queue needs VARCHAR({ID_LENGTH})"
        )
    length = described.get("length")
    if isinstance(length, bool) or not isinstance(length, int):
        raise UpgradeError(f"{table}: column ID has no length in {data_type}")
    return length < ID_LENGTH


def more_to_fill(changed: int, batch_rows: int) -> bool:
    """Whether another backfill batch may find rows: a batch chose up to ``batch_rows`` ids
    and changed at least one row for each, so fewer changed rows means none were left."""
    return changed >= batch_rows


def script_statements(table: TableRef) -> list[str]:
    """The upgrade as a script runs it: widen unconditionally, fill in one statement."""
    return [WIDEN_ID.format(table=table.sql), BACKFILL_ALL.format(table=table.sql)]


@dataclass
class UpgradeReport:
    id_widened: bool = False
    rows_filled: int = 0
    batches: list[int] = field(default_factory=list)  # rows each batch changed
    statements: int = 0


def upgrade(
    conn: Any,
    table: TableRef,
    *,
    batch_rows: int = DEFAULT_BATCH_ROWS,
    on_batch: Callable[[int], None] | None = None,
) -> UpgradeReport:
    """Widen id if it is narrower than 64, then fill the holes batch by batch (every value
    bound; the connection must bind on the server, ``paramstyle="qmark"``)."""
    if isinstance(batch_rows, bool) or not isinstance(batch_rows, int) or batch_rows < 1:
        raise ValueError(f"expected a batch of one row or more, got {batch_rows!r}")
    if getattr(conn, "is_pyformat", False):
        raise ValueError("the upgrade binds on the server: open the connection with qmark")
    report = UpgradeReport()

    def run(sql: str, binds: tuple[Any, ...] | None = None, fetch: bool = False) -> Any:
        cursor = conn.cursor()
        try:
            cursor.execute(sql.format(table=table.sql), binds)
            report.statements += 1
            if fetch:
                names = [column[0].lower() for column in cursor.description]
                return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            return int(cursor.rowcount or 0)
        finally:
            cursor.close()

    columns = [row for row in run(ID_COLUMN, fetch=True) if str(row["column_name"]) == "ID"]
    if not columns:
        raise UpgradeError(f"{table}: no column ID; not a queue table made by the legacy design")
    if id_needs_widening(str(columns[0]["data_type"]), table):
        run(WIDEN_ID)
        report.id_widened = True
    while True:
        changed = run(BACKFILL_BATCH, (batch_rows,))
        report.batches.append(changed)
        report.rows_filled += changed
        if on_batch is not None:
            on_batch(changed)
        if not more_to_fill(changed, batch_rows):
            break
    report.rows_filled += run(BACKFILL_NO_ID)
    return report
