"""Which role runs a setup part that changes the queue table itself (parts ``table`` and
``release-legacy-claims``): the table's owner.

``ALTER TABLE`` needs OWNERSHIP, and a legacy table may be owned by a role other than
``--objects-role`` (SYSADMIN by default). So ``sql apply`` switches to the objects role,
reads the owner from ``SHOW TABLES`` (no warehouse), and then: no table yet, or that role
owns it, runs as planned; another owner, with the objects role left at its default, runs
as the owner (said on stderr; the login must hold that role); with ``--objects-role``
given and not the owner, stops with a message naming the owner before anything changes.
``sql render`` prints the plain ``USE ROLE`` of the objects role.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from snowflake_operator import queue_schema
from snowflake_worker.errors import ConfigError, FatalError
from snowflake_worker.identifiers import TableRef, quote_identifier


def role_for_table(
    table: TableRef, owner: str | None, planned: str, chosen: bool, part: str
) -> str:
    """The role that runs ``part`` on ``table``: ``planned`` unless the table exists and
    another role owns it; then that owner, or an error when ``planned`` was chosen."""
    if owner is None or owner.upper() == planned.upper():
        return planned
    if not chosen:
        return owner
    raise ConfigError(
        f"{table} is owned by role {owner}, and part {part} changes it (ALTER TABLE needs "
        f"OWNERSHIP): run it as {owner} (--objects-role {owner}, with a login that holds it), "
        f"or move the table to {planned} first (GRANT OWNERSHIP ON TABLE {table} TO ROLE "
        f"{planned} COPY CURRENT GRANTS, run by {owner})"
    )


def owner_of(rows: Sequence[Mapping[str, Any]], table: TableRef) -> str | None:
    """The owner SHOW TABLES IN SCHEMA lists for ``table``; None when it is not listed
    (not there, or not visible to the current role)."""
    for row in rows:
        if str(row.get("name", "")) == table.table:
            owner = row.get("owner")
            return str(owner) if owner else None
    return None


@dataclass(frozen=True)
class UseTableOwnerRole:
    """The first step of a part that changes the table: USE ROLE of its owner."""

    part: str
    table: TableRef
    planned: str  # validated: the objects role
    chosen: bool  # --objects-role was given

    def script(self) -> list[str]:
        return [f"USE ROLE {quote_identifier(self.planned, 'role')}"]

    def run(self, conn: Any, options: queue_schema.RunOptions) -> int:
        cursor = conn.cursor()
        try:
            cursor.execute(self.script()[0])
            table = self.table
            schema = f"{quote_identifier(table.database)}.{quote_identifier(table.schema)}"
            cursor.execute(f"SHOW TABLES IN SCHEMA {schema}")
            names = [column[0].lower() for column in cursor.description]
            rows = [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
            owner = owner_of(rows, self.table)
            role = role_for_table(self.table, owner, self.planned, self.chosen, self.part)
            if role == self.planned:
                return 2
            try:
                cursor.execute(f"USE ROLE {quote_identifier(role, 'table owner role')}")
            except Exception as exc:  # the connector's error: say what to do about it
                raise FatalError(
                    f"{self.table} is owned by role {role}, and part {self.part} changes it "
                    f"(ALTER TABLE needs OWNERSHIP), but this login cannot use {role} ({exc}): "
                    "log in as a user who holds it"
                ) from None
        finally:
            cursor.close()
        if options.note is not None:
            options.note(f"part {self.part}: {self.table} is owned by {role}; running it as {role}")
        return 3
