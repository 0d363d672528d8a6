"""One queue table, one SnowflakeProcessor. Pure.

Two resources on the same table would launch Jobs for the same backlog twice and recover
the same rows with different leases. The operator indexes every resource it watches by
the table it names (:func:`table_key`); the earliest resource on a table keeps it, and
any later one (by creation time, then namespace and name) is refused while the earlier
one exists.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from snowflake_worker.identifiers import InvalidIdentifier, validate_identifier

TableKey = tuple[str, str, str, str]  # account, database, schema, table


@dataclass(frozen=True, order=True)
class TableClaim:
    """A resource naming a table. Ordered by creation time (RFC 3339 in UTC with a
    fixed width, as the API server writes it, sorts as text), then namespace and name."""

    created: str
    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"


def account_name(account: str) -> str:
    """The account the Snowflake connector logs in to for ``account`` as a resource spells
    it: everything after a dot is a region or cloud part to it (acme-prod.x is acme-prod),
    a global URL's name ends in an external id it drops (acme-prod-ab12.global), and the
    name is case-insensitive. (The connector's util_text.parse_account; a test holds the
    two together.) Whatever host a resource names, this is the account it logs in to."""
    first, _, rest = account.partition(".")
    if rest.split(".")[0] == "global" and "-" in first:
        first = first[: first.rfind("-")]
    return first.lower()


def table_key(spec: Mapping[str, Any]) -> TableKey | None:
    """(account, database, schema, table) as Snowflake resolves them (:func:`account_name`;
    unquoted identifiers are case-insensitive), or None when the spec names no valid
    table (such a resource is refused for its spec anyway)."""
    snowflake = spec.get("snowflake")
    if not isinstance(snowflake, Mapping):
        return None
    try:
        return (
            account_name(str(snowflake["account"])),
            validate_identifier(snowflake["database"]),
            validate_identifier(snowflake["schema"]),
            validate_identifier(snowflake["table"]),
        )
    except (KeyError, InvalidIdentifier):
        return None


def earlier_claim(mine: TableClaim, claims: Iterable[TableClaim]) -> TableClaim | None:
    """The resource that keeps the table, when it is not ``mine``."""
    first = min([mine, *claims])
    return None if first == mine else first
