"""Snowflake's documented rules for statements, checked on SQL parsed with sqlglot's
Snowflake dialect: the rules the emulator (fakesnow) does not keep.

Pure functions, no I/O. The emulator's Snowflake model (snowflake_model.py) uses them to
behave as Snowflake does, and tests/unit/test_snowflake_strictness.py runs them over every
statement the project can send. Each rule names the documentation it follows.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

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
    return ".".join(
        (
            _part(table.args.get("catalog"), database),
            _part(table.args.get("db"), schema),
            _part(table.this, None),
        )
    )


def _part(identifier: exp.Expr | None, default: str | None) -> str:
    if not isinstance(identifier, exp.Identifier):
        return (default or "").upper()
    return identifier.name if identifier.quoted else identifier.name.upper()


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


# -- roles and table ownership -------------------------------------------------------------
# "Overview of access control": every object is owned by a role, the one that created it
# (the session's current role: the login's, changed by USE ROLE), and SHOW TABLES names it
# in ``owner``. "ALTER TABLE", "DROP TABLE" and CREATE OR REPLACE of an existing table need
# OWNERSHIP of the table; another role is answered "003001 (42501): SQL access control
# error: Insufficient privileges to operate on table 'T'". "GRANT OWNERSHIP" moves it; the
# owner, or a role with MANAGE GRANTS (SECURITYADMIN, ACCOUNTADMIN), may run it. The model
# knows no role hierarchy: ACCOUNTADMIN, at its top, stands for every role, and no other
# role inherits another's ownership.

INSUFFICIENT_PRIVILEGES = ("003001", "42501")
NOT_FOUND = ("002003", "02000")  # "Table 'T' does not exist or not authorized."
ALL_OWNING_ROLE = "ACCOUNTADMIN"
MANAGE_GRANTS_ROLES = frozenset({"SECURITYADMIN", ALL_OWNING_ROLE})
DEFAULT_RETENTION_DAYS = 1  # the account's DATA_RETENTION_TIME_IN_DAYS unless set


@dataclass(frozen=True)
class CreatedTable:
    """What a CREATE TABLE records: its name, SHOW TABLES' ``kind`` (TABLE or TRANSIENT;
    the model keeps no TEMPORARY tables) and its ``retention_time`` in days."""

    table: exp.Table
    kind: str = "TABLE"
    retention_days: int = DEFAULT_RETENTION_DAYS


def role_name(text: str) -> str:
    """A role as Snowflake resolves its name: unquoted upper-cased, "quoted" as written."""
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] == '"':
        return text[1:-1].replace('""', '"')
    return text.upper()


def used_role(statement: exp.Expr) -> str | None:
    """The role of USE ROLE r, else None (USE SECONDARY ROLES is not a current role)."""
    if not isinstance(statement, exp.Use) or str(statement.args.get("kind")).upper() != "ROLE":
        return None
    target = statement.this
    identifier = target.this if isinstance(target, exp.Table) else target
    if isinstance(identifier, exp.Identifier):
        return identifier.name if identifier.quoted else identifier.name.upper()
    return None


def created_table(statement: exp.Expr) -> CreatedTable | None:
    """The table a CREATE [OR REPLACE] [TRANSIENT] TABLE [IF NOT EXISTS] makes, else None."""
    if not (isinstance(statement, exp.Create) and statement.kind == "TABLE"):
        return None
    table = statement.this.this if isinstance(statement.this, exp.Schema) else statement.this
    if not isinstance(table, exp.Table):
        return None
    kind, retention = "TABLE", DEFAULT_RETENTION_DAYS
    properties = statement.args.get("properties")
    for prop in properties.expressions if isinstance(properties, exp.Properties) else []:
        if isinstance(prop, exp.TransientProperty):
            kind = "TRANSIENT"
        elif (days := _retention_days(prop)) is not None:
            retention = days
    return CreatedTable(table, kind, retention)


def _retention_days(prop: exp.Expr) -> int | None:
    if not isinstance(prop, exp.Property) or prop.name.upper() != "DATA_RETENTION_TIME_IN_DAYS":
        return None
    value = prop.args.get("value")
    return int(value.name) if isinstance(value, exp.Literal) else None


def _is_alter_table(statement: exp.Expr) -> bool:
    return isinstance(statement, exp.Alter) and str(statement.args.get("kind")).upper() == "TABLE"


def owned_tables(statement: exp.Expr) -> list[exp.Table]:
    """The tables the statement needs OWNERSHIP of: an ALTER TABLE's (and the other table
    of SWAP WITH), a DROP TABLE's, a CREATE OR REPLACE TABLE's (if it exists)."""
    if _is_alter_table(statement) and isinstance(statement.this, exp.Table):
        swapped = [s.this for s in statement.find_all(exp.SwapTable)]
        return [statement.this, *(t for t in swapped if isinstance(t, exp.Table))]
    if isinstance(statement, exp.Drop) and str(statement.args.get("kind")).upper() == "TABLE":
        return [t for t in statement.args.get("tables") or [] if isinstance(t, exp.Table)]
    if isinstance(statement, exp.Create) and statement.args.get("replace"):
        created = created_table(statement)
        return [created.table] if created is not None else []
    return []


def renamed_table(statement: exp.Expr) -> tuple[exp.Table, exp.Table, bool] | None:
    """ALTER TABLE a RENAME TO b: (a, b, False); ALTER TABLE a SWAP WITH b: (a, b, True)."""
    if not (_is_alter_table(statement) and isinstance(statement.this, exp.Table)):
        return None
    for action in statement.args.get("actions") or []:
        if isinstance(action, exp.AlterRename | exp.SwapTable) and isinstance(
            action.this, exp.Table
        ):
            return statement.this, action.this, isinstance(action, exp.SwapTable)
    return None


def dropped_prefix(statement: exp.Expr, database: str | None) -> str | None:
    """DROP SCHEMA or DROP DATABASE: the start of the qualified names of the tables it drops
    with it ("DB.SCHEMA." or "DB."), else None."""
    if not isinstance(statement, exp.Drop):
        return None
    kind = str(statement.args.get("kind")).upper()
    tables = statement.args.get("tables") or []
    if kind not in ("SCHEMA", "DATABASE") or not tables or not isinstance(tables[0], exp.Table):
        return None
    name = tables[0]
    if kind == "DATABASE":
        return _part(name.this, None) + "."
    return f"{_part(name.args.get('catalog'), database)}.{_part(name.args.get('db'), None)}."


def ownership_grant(sql: str) -> tuple[exp.Table, str] | None:
    """GRANT OWNERSHIP ON TABLE t TO ROLE r [COPY|REVOKE CURRENT GRANTS]: (t, R); else None.
    (sqlglot parses the CURRENT GRANTS clause as a Command: it is cut off first.)"""
    text = re.sub(r"\s+(COPY|REVOKE)\s+CURRENT\s+GRANTS\s*;?\s*$", "", sql.strip(), flags=re.I)
    if not re.match(r"\s*GRANT\s+OWNERSHIP\s+ON\s+TABLE\s", text, re.I):
        return None
    try:
        grant = parse(text)
    except sqlglot.errors.ParseError:
        return None
    if not isinstance(grant, exp.Grant) or not isinstance(grant.args.get("securable"), exp.Table):
        return None
    principals = grant.args.get("principals") or []
    if len(principals) != 1 or str(principals[0].args.get("kind")).upper() != "ROLE":
        return None
    role = principals[0].this
    if not isinstance(role, exp.Identifier):
        return None
    return grant.args["securable"], role.name if role.quoted else role.name.upper()


def may_operate(role: str, owner: str) -> bool:
    """Does ``role`` hold OWNERSHIP of a table ``owner`` owns (ACCOUNTADMIN: of every one)?"""
    return role in (owner, ALL_OWNING_ROLE)


def may_grant_ownership(role: str, owner: str) -> bool:
    return may_operate(role, owner) or role in MANAGE_GRANTS_ROLES


def insufficient_privileges(table: exp.Table) -> str:
    """The server's message for a table the current role may not alter or drop."""
    name = table.name if table.this.quoted else table.name.upper()
    return f"SQL access control error:\nInsufficient privileges to operate on table '{name}'"


def table_not_found(table: exp.Table) -> str:
    name = table.name if table.this.quoted else table.name.upper()
    return f"SQL compilation error:\nTable '{name}' does not exist or not authorized."
