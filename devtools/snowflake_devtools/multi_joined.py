"""Multi-joined rows of a joined UPDATE, for the emulator's model.

"UPDATE", usage notes: when the FROM clause makes one target row join more than one source
row (a *multi-joined row*), the session parameter ERROR_ON_NONDETERMINISTIC_UPDATE decides:
FALSE (the default) updates the row once, from one of its source rows (which one is not
determined), TRUE fails the statement with 100090 "Duplicate row detected during DML
action", naming the values of one such row. Its answer counts each target row once
("number of rows updated"), and the multi-joined ones apart ("number of multi-joined rows
updated").

DuckDB (so fakesnow) updates such a row once too, but counts it once per source row and
reports no multi-joined rows. The model reads the UPDATE's join before it runs (on its own
session, once it holds the table's lock) with :func:`multi_join_probe`, then refuses it or
corrects the counts. Pure functions, no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from sqlglot import exp

from .snowflake_rules import DIALECT
from .string_lengths import with_binds_inlined

DUPLICATE_ROW = ("100090", "42P18")  # Snowflake's error code and SQLSTATE
_ROW_ID = "rowid"  # DuckDB's pseudo-column: a target row's identity, duplicates apart


def multi_join_probe(statement: exp.Expr, binds: Sequence[Any]) -> str | None:
    """For an UPDATE with a FROM clause: the SELECT of (target rows matched, of them
    multi-joined, the row id of the first multi-joined one); None for any other statement."""
    if not isinstance(statement, exp.Update) or statement.args.get("from_") is None:
        return None
    inlined = with_binds_inlined(statement, binds)
    target: exp.Table = inlined.this
    source = inlined.args["from_"].this.sql(dialect=DIALECT)
    where = inlined.args.get("where")
    row_id = _row_id(target).sql(dialect=DIALECT)
    matched = (
        f"SELECT {row_id} AS target_row, COUNT(*) AS joined "
        f"FROM {target.sql(dialect=DIALECT)}, {source}"
        f"{' ' + where.sql(dialect=DIALECT) if where is not None else ''} GROUP BY 1"
    )
    return (
        "SELECT COUNT(*), COUNT_IF(joined > 1), MIN(IFF(joined > 1, target_row, NULL)) "
        f"FROM ({matched})"
    )


def row_values_probe(statement: exp.Update, row_id: int) -> str:
    """The SELECT of the target row ``row_id``'s values (for the error's "Row Values")."""
    table = statement.this.copy()
    table.set("alias", None)
    return f"SELECT * FROM {table.sql(dialect=DIALECT)} WHERE {_ROW_ID} = {int(row_id)}"


def duplicate_row_message(values: Sequence[Any]) -> str:
    """Snowflake's message for a multi-joined row under ERROR_ON_NONDETERMINISTIC_UPDATE."""
    shown = ", ".join(json.dumps(value, default=str) for value in values)
    return f"Duplicate row detected during DML action\nRow Values: [{shown}]"


def counted_once(body: bytes, rows: int, multi_joined: int) -> bytes:
    """An UPDATE's answer with each target row counted once, and the multi-joined ones in
    the second column (a failed answer, or one of another shape, is left as it is)."""
    try:
        answer = json.loads(body or b"{}")
    except ValueError:
        return body
    data = answer.get("data") if isinstance(answer, dict) and answer.get("success") else None
    if not isinstance(data, dict):
        return body
    rowset = data.get("rowset")
    if not (isinstance(rowset, list) and len(rowset) == 1 and len(rowset[0]) == 2):
        return body
    data["rowset"] = [[str(rows), str(multi_joined)]]
    return json.dumps(answer).encode()


def _row_id(target: exp.Table) -> exp.Column:
    alias = target.args.get("alias")
    qualifier = alias.this if alias is not None else target.this
    return exp.column(_ROW_ID, table=qualifier.copy())
