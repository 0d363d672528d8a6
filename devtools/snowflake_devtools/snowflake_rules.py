"""Snowflake's documented rules for statements, checked on SQL parsed with sqlglot's
Snowflake dialect: the rules the emulator (fakesnow) does not keep.

Pure functions, no I/O. The emulator's Snowflake model (snowflake_model.py) uses them to
behave as Snowflake does, and tests/unit/test_snowflake_strictness.py runs them over every
statement the project can send. Each rule names the documentation it follows.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

import sqlglot
from sqlglot import TokenType, exp

DIALECT = "snowflake"

# "Transactions", resource locking: "UPDATE, DELETE, and MERGE statements hold locks that
# generally prevent them from running in parallel with other UPDATE, DELETE, and MERGE
# statements." "Most INSERT and COPY statements write only new partitions" and run in
# parallel: the model lets INSERT through without the lock.
LOCKING_STATEMENTS = (exp.Update, exp.Delete, exp.Merge)

# Time functions whose result follows the session's TIMEZONE (America/Los_Angeles unless
# someone set it); SYSDATE() is the current time in UTC.
_SESSION_ZONE_FUNCTIONS = ("NOW", "CURRENT_TIMESTAMP", "LOCALTIMESTAMP", "SYSTIMESTAMP")


def parse(sql: str) -> exp.Expr:
    """One statement, parsed as Snowflake SQL; raises sqlglot.ParseError if it is not."""
    return sqlglot.parse_one(sql, read=DIALECT)


def locked_table(statement: exp.Expr) -> exp.Table | None:
    """The table whose lock the statement takes (UPDATE, DELETE, MERGE), else None."""
    if isinstance(statement, LOCKING_STATEMENTS) and isinstance(statement.this, exp.Table):
        return statement.this
    return None


def qualified_name(table: exp.Table, database: str | None, schema: str | None) -> str:
    """DATABASE.SCHEMA.TABLE as Snowflake resolves it: unquoted parts upper-cased, missing
    ones from the session."""

    def part(identifier: exp.Expr | None, default: str | None) -> str:
        if not isinstance(identifier, exp.Identifier):
            return (default or "").upper()
        return identifier.name if identifier.quoted else identifier.name.upper()

    return ".".join(
        (
            part(table.args.get("catalog"), database),
            part(table.args.get("db"), schema),
            part(table.this, None),
        )
    )


# -- LIMIT / FETCH in subqueries -----------------------------------------------------------
# "Working with subqueries", usage notes: "The only type of subquery that allows a
# LIMIT / FETCH clause is an uncorrelated scalar subquery." That note is about subqueries
# in expressions (IN, EXISTS, ANY/ALL, comparisons): "LIMIT / FETCH" itself "constrains the
# maximum number of rows returned by a statement or subquery", and its usage notes show a
# LIMIT in a subquery of the FROM clause (a derived table, with its ORDER BY warning). So a
# derived table in FROM or JOIN may limit; a LATERAL one, which may be correlated, may not.


def misplaced_limits(statement: exp.Expr) -> list[str]:
    """Each subquery with LIMIT/FETCH that is neither an uncorrelated scalar subquery nor
    an uncorrelated derived table of a FROM or JOIN."""
    found: list[str] = []
    for select in statement.find_all(exp.Select):
        context = _subquery_context(select)
        if context is None or select.args.get("limit") is None:
            continue
        allowed = _is_scalar(select, context) or isinstance(context, exp.From | exp.Join)
        if allowed and not _is_correlated(select):
            continue
        found.append(select.sql(dialect=DIALECT))
    return found


def _subquery_context(select: exp.Select) -> exp.Expr | None:
    """What a subquery is used by, or None for a SELECT that is no subquery (the statement
    itself, an INSERT's source, a CTE)."""
    parent = select.parent
    if isinstance(parent, exp.Subquery):
        return parent.parent
    if isinstance(parent, exp.Exists | exp.In | exp.Any | exp.All):
        return parent
    return None


def _is_scalar(select: exp.Select, context: exp.Expr | None) -> bool:
    """A value: one column, used where an expression goes (not IN/EXISTS/ANY, not FROM)."""
    if len(select.expressions) != 1:
        return False
    return not isinstance(
        context,
        exp.In | exp.Exists | exp.Any | exp.All | exp.From | exp.Join | exp.Merge | exp.Lateral,
    )


def _is_correlated(select: exp.Select) -> bool:
    """Does the subquery name a table (or alias) it does not itself read from?"""
    own = {source.alias_or_name.upper() for source in _sources(select)}
    for column in select.find_all(exp.Column):
        qualifier = column.table
        if qualifier and qualifier.upper() not in own:
            return True
    return False


def _sources(select: exp.Select) -> Iterator[exp.Expr]:
    for node in select.find_all(exp.Table, exp.Subquery, exp.TableFromRows, exp.Lateral):
        if node is not select.parent:
            yield node


# -- binds in SHOW and DDL ----------------------------------------------------------------
# "SQL statements supported for preparation": a DDL statement sent for preparation is run
# as it is, not prepared, and SHOW <objects> takes its pattern as "LIKE '<pattern>'", a
# string literal. The server answers a bind there with a syntax error (reported with
# snowflake-connector-nodejs: "SHOW OBJECTS LIKE ?" fails with "SQL compilation error:
# syntax error line 1 at position 18 unexpected '?'."). fakesnow runs such statements.
# IDENTIFIER(?) in DDL is documented to work; the project sends none, and it is refused too.

SYNTAX_ERROR = ("001003", "42000")  # Snowflake's error code and SQLSTATE for a syntax error
_WITHOUT_BINDS = (
    exp.Show,
    exp.Describe,
    exp.Create,
    exp.Alter,
    exp.Drop,
    exp.Grant,
    exp.Revoke,
    exp.Use,
    exp.Comment,
)
_DDL_WORDS = frozenset(
    {"SHOW", "DESC", "DESCRIBE", "CREATE", "ALTER", "DROP", "UNDROP", "GRANT", "REVOKE", "USE"}
)


def refused_bind(sql: str, statement: exp.Expr) -> str | None:
    """The server's message for a bind placeholder in a SHOW or DDL statement, or None.
    Only meaningful when the statement arrives with binds (server-side binding)."""
    if not _takes_no_binds(statement):
        return None
    for token in sqlglot.tokenize(sql, read=DIALECT):
        if token.token_type is TokenType.PLACEHOLDER:
            line = sql.count("\n", 0, token.start) + 1
            position = token.start - (sql.rfind("\n", 0, token.start) + 1)
            return (
                f"SQL compilation error:\nsyntax error line {line} at position {position} "
                f"unexpected '{token.text}'."
            )
    return None


def _takes_no_binds(statement: exp.Expr) -> bool:
    if isinstance(statement, exp.Command):  # what sqlglot does not parse: CREATE ROLE ...
        return str(statement.this).upper() in _DDL_WORDS
    return isinstance(statement, _WITHOUT_BINDS)


# -- time zones ----------------------------------------------------------------------------


def session_zone_times(statement: exp.Expr) -> list[str]:
    """Calls of time functions that follow the session's TIMEZONE instead of UTC."""
    found: list[str] = []
    for node in statement.find_all(exp.CurrentTimestamp, exp.Localtime, exp.CurrentTime):
        if isinstance(node, exp.CurrentTimestamp) and node.args.get("sysdate"):
            continue
        found.append(node.sql(dialect=DIALECT))
    for call in statement.find_all(exp.Anonymous):
        if call.name.upper() in _SESSION_ZONE_FUNCTIONS:
            found.append(call.sql(dialect=DIALECT))
    return found


# -- constraints ---------------------------------------------------------------------------
# "Constraints": "For standard tables, Snowflake supports defining and maintaining
# constraints, but doesn't enforce them, except for NOT NULL and CHECK constraints, which
# are always enforced." PRIMARY KEY, UNIQUE and FOREIGN KEY are removed; the rest stays.

_UNENFORCED = (
    exp.PrimaryKeyColumnConstraint,
    exp.UniqueColumnConstraint,
    exp.PrimaryKey,
    exp.ForeignKey,
    exp.Reference,
)


def without_unenforced_constraints(statement: exp.Expr) -> exp.Expr | None:
    """The CREATE TABLE with its PRIMARY KEY, UNIQUE and FOREIGN KEY constraints removed, or
    None when it declares none (or is not a CREATE TABLE)."""
    if not (isinstance(statement, exp.Create) and statement.kind == "TABLE"):
        return None
    if not any(statement.find_all(*_UNENFORCED)):
        return None
    bare = statement.copy()
    for node in list(bare.find_all(*_UNENFORCED)):
        holder = node.parent
        if isinstance(holder, exp.ColumnConstraint | exp.Constraint):
            holder.pop()
        else:
            node.pop()
    return bare


def inserts_rows(statement: exp.Expr) -> bool:
    """Does the statement add rows with a plain INSERT (which nothing stops from adding an id
    that is already there: Snowflake does not enforce PRIMARY KEY)?"""
    return isinstance(statement, exp.Insert)


def merge_keys(statement: exp.Expr) -> set[str]:
    """For a MERGE, the target columns its ON condition matches with equality."""
    if not isinstance(statement, exp.Merge):
        return set()
    target = statement.this.alias_or_name.upper()
    keys: set[str] = set()
    for equality in statement.args["on"].find_all(exp.EQ):
        for column in (equality.this, equality.expression):
            if isinstance(column, exp.Column) and column.table.upper() == target:
                keys.add(column.name.upper())
    return keys


# -- shrinking a text column ---------------------------------------------------------------
# "ALTER TABLE … ALTER COLUMN": decreasing the length of a text string column (VARCHAR(50)
# to VARCHAR(25)) is unsupported, even when every stored value would fit. The server's
# answer, as reported: "040050 (22000): SQL compilation error: cannot change column ID from
# type VARCHAR(16777216) to VARCHAR(32) because reducing the byte-length of a varchar is
# not supported." (docs/snowflake-checks.md has the check for a real account.) fakesnow
# shrinks the recorded length.

SHRINK_ERROR = ("040050", "22000")
TEXT_DEFAULT_LENGTH = 16_777_216  # VARCHAR, STRING or TEXT without a length
_TEXT_TYPES = {
    exp.DataType.Type.VARCHAR: TEXT_DEFAULT_LENGTH,
    exp.DataType.Type.NVARCHAR: TEXT_DEFAULT_LENGTH,
    exp.DataType.Type.TEXT: TEXT_DEFAULT_LENGTH,
    exp.DataType.Type.CHAR: 1,  # CHAR without a length is CHAR(1)
    exp.DataType.Type.NCHAR: 1,
}


def altered_table(statement: exp.Expr) -> exp.Table | None:
    """The table of an ALTER TABLE that sets a column's data type, else None."""
    if not isinstance(statement, exp.Alter) or str(statement.args.get("kind")).upper() != "TABLE":
        return None
    if not any(a.args.get("dtype") for a in statement.find_all(exp.AlterColumn)):
        return None
    table = statement.this
    return table if isinstance(table, exp.Table) else None


def shrunk_text_column(statement: exp.Expr, lengths: Mapping[str, int]) -> str | None:
    """The server's message for an ALTER ... SET DATA TYPE that decreases the length of a
    text column (``lengths``: the table's declared lengths by upper-case column name)."""
    for change in statement.find_all(exp.AlterColumn):
        dtype = change.args.get("dtype")
        if not isinstance(dtype, exp.DataType) or dtype.this not in _TEXT_TYPES:
            continue
        name = change.this.name if change.this.quoted else change.this.name.upper()
        old = lengths.get(name.upper())
        params = dtype.expressions
        new = int(params[0].name) if params else _TEXT_TYPES[dtype.this]
        if old is not None and new < old:
            return (
                f"SQL compilation error: cannot change column {name} from type VARCHAR({old}) "
                f"to VARCHAR({new}) because reducing the byte-length of a varchar is not "
                "supported."
            )
    return None
