"""The unsafe reading of READ COMMITTED, for the emulator's model: an UPDATE that waited for
the table's lock chooses its rows from the data committed when it arrived, and writes them
once it holds the lock, whatever happened to them meanwhile.

Snowflake documents that a statement "sees data committed before the statement began"; it
does not say whether an UPDATE that waited re-reads the rows it chose. This module turns
one UPDATE into two pure steps the model runs at either end of the wait:

- :func:`arrival_probe`: the SELECT of the chosen rows' ids, run when the statement
  arrives (its WHERE, subqueries included, on the data committed then);
- :func:`with_chosen_rows`: the UPDATE with its WHERE replaced by those ids, run once the
  lock is granted, so a row another statement changed meanwhile is still written.

Only single-table UPDATEs of a table with an ``id`` column are read this way (the claim,
the lease recovery, the dead-letter requeue); a joined UPDATE (the write-back) keeps its
WHERE, evaluated when it runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlglot import exp

from .snowflake_rules import DIALECT
from .string_lengths import bind_literal

KEY_COLUMN = "id"


def arrival_probe(statement: exp.Expr, binds: Sequence[Any]) -> str | None:
    """SELECT of the ids the UPDATE's WHERE matches now; None for a statement not read at
    arrival (not an UPDATE, a joined one, or one without a WHERE)."""
    if not isinstance(statement, exp.Update) or statement.args.get("from_"):
        return None
    if statement.args.get("where") is None:
        return None
    inlined = _with_binds_inlined(statement, binds)
    probe = exp.select(exp.column(KEY_COLUMN)).from_(inlined.this.copy())
    return probe.where(inlined.args["where"].this.copy()).sql(dialect=DIALECT)


def with_chosen_rows(statement: exp.Expr, binds: Sequence[Any], ids: Sequence[Any]) -> str:
    """The UPDATE, binds inlined, writing exactly the rows ``ids`` (none when empty)."""
    inlined = _with_binds_inlined(statement, binds)
    chosen: exp.Expr = (
        exp.column(KEY_COLUMN).isin(*(bind_literal(value) for value in ids)) if ids else exp.false()
    )
    inlined.set("where", exp.Where(this=chosen))
    return inlined.sql(dialect=DIALECT)


def _with_binds_inlined(statement: exp.Expr, binds: Sequence[Any]) -> exp.Expr:
    """A copy with each ``?`` replaced by its bound value as a literal, in text order
    (the model runs the rewritten statement without binds)."""
    copy = statement.copy()
    placeholders = list(copy.find_all(exp.Placeholder, bfs=False))
    if len(placeholders) != len(binds):
        raise ValueError(f"{len(placeholders)} binds in the statement, {len(binds)} values")
    for placeholder, value in zip(placeholders, binds, strict=True):
        placeholder.replace(bind_literal(value))
    return copy
