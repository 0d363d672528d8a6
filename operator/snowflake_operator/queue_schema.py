"""Render and apply the SQL files in ``sql/`` (queue table, migration, views, grants).

The files hold ``{{ name }}`` placeholders for identifiers only. Each is replaced by a
validated, double-quoted identifier from :class:`SchemaTarget`; no value is ever put in
SQL text. Rendering drops ``--`` comments and splits on ``;``, so the SQL files must not
contain ``;`` or ``--`` inside string literals (they do not; identifiers substituted in
cannot contain either, as they are validated).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snowflake_worker.identifiers import TableRef, quote_identifier, validate_identifier

SQL_DIR = Path(__file__).parent / "sql"

CREATE_FILES = ("001_queue_table.sql", "003_monitoring_views.sql")
MIGRATE_FILES = ("002_migrate_from_legacy.sql", "003_monitoring_views.sql", "005_result_column.sql")
GRANT_FILES = ("004_grants.sql",)
# What ensure_queue_table runs. 002 goes before 003: the views read next_attempt_at, which
# a legacy table only has after 002 (Snowflake checks a view's columns when creating it).
# 005 adds the result column to a table made before it (or by the legacy design).
ENSURE_FILES = (
    "001_queue_table.sql",
    "002_migrate_from_legacy.sql",
    "003_monitoring_views.sql",
    "005_result_column.sql",
)

STATUS_VIEW_SUFFIX = "_STATUS"
DEAD_LETTER_VIEW_SUFFIX = "_DEAD_LETTERS"

# Every placeholder a SQL file may use; the optional ones come from optional fields.
KNOWN_PLACEHOLDERS = frozenset(
    {
        "queue_table",
        "status_view",
        "dead_letter_view",
        "database",
        "schema",
        "warehouse",
        "service_role",
    }
)

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_LINE_COMMENT = re.compile(r"--[^\n]*")
_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.sql$")


@dataclass(frozen=True)
class SchemaTarget:
    """Where the queue objects live, and who gets access to them."""

    table: TableRef
    warehouse: str | None = None
    service_role: str | None = None

    def __post_init__(self) -> None:
        if self.warehouse is not None:
            object.__setattr__(self, "warehouse", validate_identifier(self.warehouse, "warehouse"))
        if self.service_role is not None:
            object.__setattr__(
                self, "service_role", validate_identifier(self.service_role, "service role")
            )

    @property
    def status_view(self) -> TableRef:
        return self.table.sibling(STATUS_VIEW_SUFFIX)

    @property
    def dead_letter_view(self) -> TableRef:
        return self.table.sibling(DEAD_LETTER_VIEW_SUFFIX)

    def placeholders(self) -> dict[str, str]:
        """Placeholder name -> quoted identifier; optional ones only when set."""
        values = {
            "queue_table": self.table.sql,
            "status_view": self.status_view.sql,
            "dead_letter_view": self.dead_letter_view.sql,
            "database": quote_identifier(self.table.database, "database"),
            "schema": quote_identifier(self.table.schema, "schema"),
        }
        if self.warehouse is not None:
            values["warehouse"] = quote_identifier(self.warehouse, "warehouse")
        if self.service_role is not None:
            values["service_role"] = quote_identifier(self.service_role, "service role")
        return values


def _read(file_name: str) -> str:
    if not _FILE_NAME.fullmatch(file_name):
        raise ValueError(f"invalid SQL file name {file_name!r}: give a bare name like 001_x.sql")
    path = SQL_DIR / file_name
    if not path.is_file():
        available = ", ".join(sorted(p.name for p in SQL_DIR.glob("*.sql")))
        raise ValueError(f"no SQL file {file_name!r} in {SQL_DIR} (have: {available})")
    return path.read_text(encoding="utf-8")


def render_text(sql: str, target: SchemaTarget, source: str = "<sql>") -> list[str]:
    """Render SQL text (see :func:`render`); ``source`` names it in error messages."""
    values = target.placeholders()
    without_comments = _LINE_COMMENT.sub("", sql)

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in KNOWN_PLACEHOLDERS:
            known = ", ".join(sorted(KNOWN_PLACEHOLDERS))
            raise ValueError(f"{source}: unknown placeholder {{{{ {name} }}}} (known: {known})")
        if name not in values:
            raise ValueError(
                f"{source}: needs placeholder {{{{ {name} }}}} but the target has no {name}"
            )
        return values[name]

    rendered = _PLACEHOLDER.sub(substitute, without_comments)
    if "{{" in rendered or "}}" in rendered:
        raise ValueError(f"{source}: malformed placeholder (use {{{{ name }}}})")
    statements: list[str] = []
    for part in rendered.split(";"):
        # Tidy for logs: drop blank lines (where comments were) and trailing spaces.
        lines = [line.rstrip() for line in part.splitlines() if line.strip()]
        if lines:
            statements.append("\n".join(lines).strip())
    return statements


def render(file_name: str, target: SchemaTarget) -> list[str]:
    """The statements of one file in ``SQL_DIR``, placeholders replaced, comments removed.

    Raises ValueError naming the placeholder if a file uses an unknown one, or one the
    target does not have (``warehouse`` or ``service_role`` left unset).
    """
    return render_text(_read(file_name), target, source=file_name)


def apply(conn: Any, file_names: Sequence[str], target: SchemaTarget) -> int:
    """Run the files' statements in order on a connector connection; return how many ran.

    Every file is rendered before the first statement runs, so a bad placeholder or file
    name changes nothing. Statements run one by one (no transaction: Snowflake DDL commits
    implicitly); every file is written to be safe to run again after a partial run.
    """
    return run_statements(conn, [s for name in file_names for s in render(name, target)])


def run_statements(conn: Any, statements: Sequence[str]) -> int:
    """Run rendered statements in order on one cursor; how many ran."""
    cursor = conn.cursor()
    try:
        for statement in statements:
            cursor.execute(statement)
    finally:
        cursor.close()
    return len(statements)


def ensure_queue_table(conn: Any, target: SchemaTarget) -> None:
    """Create the queue table and views if missing, upgrading a legacy table in place.

    Idempotent. Runs 001 (create if missing), 002 (add protocol columns, backfill), 003
    (views), then 005 (the result column), i.e. CREATE_FILES and MIGRATE_FILES in the order
    that also works on a legacy table.
    """
    apply(conn, ENSURE_FILES, target)
