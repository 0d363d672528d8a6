"""Render and apply the SQL files in ``sql/`` (queue table, migration, views, grants).

The files hold ``{{ name }}`` placeholders for identifiers, each replaced by a validated,
double-quoted identifier from :class:`SchemaTarget`, and two for 001's optional clauses
(``table_kind``, ``table_options``), rendered from a flag and a checked 0 or 1, never from
text. Rendering drops ``--`` comments and splits on ``;``, so the SQL files must not
contain ``;`` or ``--`` inside string literals (they do not; identifiers substituted in
cannot contain either, as they are validated).

002's widening of ``id`` and its backfill look at the table first and run in batches, so
they are code (:mod:`.legacy_upgrade`), a step run after the file's statements: ``apply``
runs it, ``render`` prints its one-statement script form.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from snowflake_worker.identifiers import TableRef, quote_identifier, validate_identifier

from . import legacy_upgrade

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

# 001's optional clauses: empty unless asked for (a permanent table, the account's retention).
CLAUSE_PLACEHOLDERS = frozenset({"table_kind", "table_options"})
# A transient table keeps 0 or 1 day of Time Travel, nothing else (Snowflake's limit).
TRANSIENT_RETENTION_DAYS = (0, 1)
MIGRATE_FILE = "002_migrate_from_legacy.sql"

_PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
_LINE_COMMENT = re.compile(r"--[^\n]*")
_FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*\.sql$")


@dataclass(frozen=True)
class SchemaTarget:
    """Where the queue objects live, and who gets access to them."""

    table: TableRef
    warehouse: str | None = None
    service_role: str | None = None
    # 001 creates a TRANSIENT table (no Fail-safe) keeping this many days of Time Travel.
    transient: bool = False
    retention_days: int | None = None

    def __post_init__(self) -> None:
        if self.retention_days is not None:
            if not self.transient:
                raise ValueError("a retention period goes with a transient table (--transient)")
            days = self.retention_days
            if isinstance(days, bool) or days not in TRANSIENT_RETENTION_DAYS:
                raise ValueError(f"a transient table keeps 0 or 1 day of Time Travel, not {days!r}")
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

    def clauses(self) -> dict[str, str]:
        """001's optional clauses, from the flag and the checked integer only."""
        days = self.retention_days
        return {
            "table_kind": "TRANSIENT " if self.transient else "",
            "table_options": "" if days is None else f"DATA_RETENTION_TIME_IN_DAYS = {int(days)}",
        }


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
    values = {**target.clauses(), **target.placeholders()}
    without_comments = _LINE_COMMENT.sub("", sql)

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in KNOWN_PLACEHOLDERS | CLAUSE_PLACEHOLDERS:
            known = ", ".join(sorted(KNOWN_PLACEHOLDERS | CLAUSE_PLACEHOLDERS))
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


class Action(Protocol):
    """A step that looks at the table before it acts (002's upgrade, a part's role)."""

    def script(self) -> list[str]:
        """What a script runs instead, for Snowflake's own tools: ``sql render``."""
        ...

    def run(self, conn: Any, options: RunOptions) -> int:
        """Do it on a connection; how many statements ran."""
        ...


Step = str | Action


@dataclass(frozen=True)
class RunOptions:
    batch_rows: int = legacy_upgrade.DEFAULT_BATCH_ROWS  # rows per backfill UPDATE
    note: Callable[[str], None] | None = None  # told what a step decided, one line each


@dataclass(frozen=True)
class LegacyUpgrade:
    """002's widening of id (only when narrower than 64) and its batched backfill."""

    table: TableRef

    def script(self) -> list[str]:
        return legacy_upgrade.script_statements(self.table)

    def run(self, conn: Any, options: RunOptions) -> int:
        report = legacy_upgrade.upgrade(conn, self.table, batch_rows=options.batch_rows)
        if options.note is not None:
            widened = "widened to VARCHAR(64)" if report.id_widened else "wide enough, kept"
            options.note(
                f"002: id {widened}; {report.rows_filled} rows filled in "
                f"{len(report.batches)} batch(es) of at most {options.batch_rows}"
            )
        return report.statements


def steps(file_name: str, target: SchemaTarget) -> list[Step]:
    """One file's statements, and for 002 the upgrade step after them."""
    statements: list[Step] = list(render_text(_read(file_name), target, source=file_name))
    if file_name == MIGRATE_FILE:
        statements.append(LegacyUpgrade(target.table))
    return statements


def script(planned: Sequence[Step]) -> list[str]:
    """The statements a script runs for these steps (an action's script form)."""
    return [s for step in planned for s in ([step] if isinstance(step, str) else step.script())]


def render(file_name: str, target: SchemaTarget) -> list[str]:
    """The statements of one file in ``SQL_DIR``, placeholders replaced, comments removed;
    for 002 the upgrade's script form follows (widen, one backfill).

    Raises ValueError naming the placeholder if a file uses an unknown one, or one the
    target does not have (``warehouse`` or ``service_role`` left unset).
    """
    return script(steps(file_name, target))


def apply(
    conn: Any,
    file_names: Sequence[str],
    target: SchemaTarget,
    options: RunOptions | None = None,
) -> int:
    """Run the files' steps in order on a connector connection; return how many statements
    ran.

    Every file is rendered before the first statement runs, so a bad placeholder or file
    name changes nothing. Statements run one by one (no transaction: Snowflake DDL commits
    implicitly); every file is written to be safe to run again after a partial run.
    """
    return run_steps(conn, [s for name in file_names for s in steps(name, target)], options)


def run_steps(conn: Any, planned: Sequence[Step], options: RunOptions | None = None) -> int:
    """Run statements and actions in order; how many statements ran."""
    ran = 0
    for step in planned:
        if isinstance(step, str):
            ran += run_statements(conn, [step])
        else:
            ran += step.run(conn, options or RunOptions())
    return ran


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

    Idempotent. Runs 001 (create if missing), 002 (add protocol columns, widen id if
    narrow, backfill), 003 (views), then 005 (the result column), i.e. CREATE_FILES and
    MIGRATE_FILES in the order that also works on a legacy table.
    """
    apply(conn, ENSURE_FILES, target)
