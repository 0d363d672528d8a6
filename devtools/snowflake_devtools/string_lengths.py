"""VARCHAR(n) lengths, enforced as Snowflake enforces them (fakesnow stores any length).

Snowflake refuses to write a string longer than its column's declared length: "String '...'
is too long and would be truncated" (error 100078). To model that without running the
statement first, each string written by an INSERT, UPDATE or MERGE is measured before the
statement runs: literals and bound values here, expressions by a probe query that selects
the longest value each one would write (``MAX(LENGTH(...))`` over the rows the statement
reads). Pure functions; the emulator's model runs the probe.

A MERGE's WHEN NOT MATCHED INSERT is probed over every source row, matched or not: stricter
than Snowflake only for a source row whose id is already in the table and longer than the
column, which cannot be.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlglot import exp

from .snowflake_rules import DIALECT


@dataclass(frozen=True)
class TooLong:
    column: str
    limit: int
    length: int

    def message(self) -> str:
        return (
            f"String of {self.length} characters is too long and would be truncated "
            f"(column {self.column} is VARCHAR({self.limit}))"
        )


@dataclass
class StringWrites:
    """What a statement writes into length-limited columns: known lengths now, and probe
    queries (each with the columns its result columns measure) for the rest."""

    too_long: list[TooLong] = field(default_factory=list)
    probes: list[tuple[str, list[str]]] = field(default_factory=list)


def written_table(statement: exp.Expr) -> exp.Table | None:
    """The table an INSERT, UPDATE or MERGE writes to."""
    target = statement.this if isinstance(statement, exp.Update | exp.Merge) else None
    if isinstance(statement, exp.Insert):
        target = statement.this.this if isinstance(statement.this, exp.Schema) else statement.this
    return target if isinstance(target, exp.Table) else None


def string_writes(
    statement: exp.Expr, binds: Sequence[Any], limits: Mapping[str, int]
) -> StringWrites:
    """Check what ``statement`` (with its positional ``binds``) writes into the columns of
    ``limits`` (upper-case name -> declared length)."""
    result = StringWrites()
    if not limits:
        return result
    bound = with_binds_inlined(statement, binds)
    for assignments, source in _assignments(bound):
        pending: list[tuple[str, exp.Expr]] = []
        for column, value in assignments:
            limit = limits.get(column)
            if limit is None or isinstance(value, exp.Null):
                continue
            if isinstance(value, exp.Literal):
                if len(value.name) > limit:
                    result.too_long.append(TooLong(column, limit, len(value.name)))
                continue
            pending.append((column, value))
        if pending:
            measures = ", ".join(
                f"MAX(LENGTH(CAST({value.sql(dialect=DIALECT)} AS VARCHAR)))"
                for _, value in pending
            )
            result.probes.append((f"SELECT {measures} {source}", [c for c, _ in pending]))
    return result


def check_probe(
    columns: list[str], lengths: Sequence[Any], limits: Mapping[str, int]
) -> list[TooLong]:
    """The columns whose longest probed value exceeds the declared length."""
    return [
        TooLong(column, limits[column], int(length))
        for column, length in zip(columns, lengths, strict=True)
        if length is not None and int(length) > limits[column]
    ]


def with_binds_inlined(statement: exp.Expr, binds: Sequence[Any]) -> exp.Expr:
    """A copy with each ``?`` (or ``:n``) replaced by its bound value as a literal, so a
    probe can reuse any part of the statement whatever order its binds come in."""
    copy = statement.copy()
    for position, placeholder in enumerate(list(copy.find_all(exp.Placeholder, bfs=False))):
        index = int(placeholder.name) - 1 if placeholder.name.isdigit() else position
        if 0 <= index < len(binds):
            placeholder.replace(bind_literal(binds[index]))
    return copy


def bind_literal(value: Any) -> exp.Expr:
    """A bound value as the SQL literal the statement would hold in its place."""
    if value is None:
        return exp.Null()
    if isinstance(value, bool):
        return exp.Boolean(this=value)
    if isinstance(value, int | float):
        return exp.Literal.number(value)
    return exp.Literal.string(str(value))


def _assignments(statement: exp.Expr) -> list[tuple[list[tuple[str, exp.Expr]], str]]:
    """(column, value) pairs the statement writes, each group with the FROM ... clause that
    yields the rows they are computed over."""
    if isinstance(statement, exp.Update):
        source = f"FROM {statement.this.sql(dialect=DIALECT)}"
        if (extra := statement.args.get("from_")) is not None:
            source += ", " + extra.this.sql(dialect=DIALECT)
        if (where := statement.args.get("where")) is not None:
            source += " " + where.sql(dialect=DIALECT)
        return [(_set_pairs(statement.expressions), source)]
    if isinstance(statement, exp.Insert):
        return _insert_assignments(statement)
    if isinstance(statement, exp.Merge):
        return _merge_assignments(statement)
    return []


def _set_pairs(assignments: list[exp.Expr]) -> list[tuple[str, exp.Expr]]:
    return [
        (eq.this.name.upper(), eq.expression)
        for eq in assignments
        if isinstance(eq, exp.EQ) and isinstance(eq.this, exp.Column)
    ]


def _insert_assignments(insert: exp.Insert) -> list[tuple[list[tuple[str, exp.Expr]], str]]:
    if not isinstance(insert.this, exp.Schema):
        return []  # no column list: the model does not know the table's column order
    columns = [c.name.upper() for c in insert.this.expressions]
    source = insert.expression
    if isinstance(source, exp.Values):
        return [
            (list(zip(columns, row.expressions, strict=False)), "")
            for row in source.expressions
            if isinstance(row, exp.Tuple)
        ]
    if isinstance(source, exp.Select) and len(source.expressions) == len(columns):
        aliased = source.copy()
        aliased.set(
            "expressions",
            [exp.alias_(e.unalias(), f"C{i}") for i, e in enumerate(aliased.expressions)],
        )
        pairs: list[tuple[str, exp.Expr]] = [
            (c, exp.column(f"C{i}", "_P")) for i, c in enumerate(columns)
        ]
        return [(pairs, f"FROM ({aliased.sql(dialect=DIALECT)}) AS _P")]
    return []


def _merge_assignments(merge: exp.Merge) -> list[tuple[list[tuple[str, exp.Expr]], str]]:
    using = merge.args["using"].sql(dialect=DIALECT)
    target = merge.this.sql(dialect=DIALECT)
    on = merge.args["on"].sql(dialect=DIALECT)
    groups: list[tuple[list[tuple[str, exp.Expr]], str]] = []
    for when in merge.args["whens"].expressions:
        then = when.args.get("then")
        if isinstance(then, exp.Insert) and isinstance(then.this, exp.Tuple):
            columns = [c.name.upper() for c in then.this.expressions]
            values = then.expression.expressions
            groups.append((list(zip(columns, values, strict=False)), f"FROM {using}"))
        elif isinstance(then, exp.Update):
            groups.append((_set_pairs(then.expressions), f"FROM {target} JOIN {using} ON {on}"))
    return groups
