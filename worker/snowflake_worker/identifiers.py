"""Snowflake identifiers: validated, normalised and quoted before they reach SQL text.

Only identifiers are ever placed in SQL text; values are always bound. An identifier
must look like an unquoted Snowflake identifier; it is upper-cased (what Snowflake does
with unquoted names) and then double-quoted, so no input can change the statement.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator

UNQUOTED_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_$]{0,254}$")


class InvalidIdentifier(ValueError):
    """A database, schema, table, warehouse or role name that is not a plain identifier."""


def validate_identifier(name: str, what: str = "identifier") -> str:
    """Return the normalised (upper-case) form of ``name`` or raise InvalidIdentifier."""
    if not isinstance(name, str) or not UNQUOTED_IDENTIFIER.fullmatch(name):
        raise InvalidIdentifier(
            f"invalid {what} {name!r}: use letters, digits, '_' or '$', starting with a "
            "letter or '_', at most 255 characters"
        )
    return name.upper()


def quote_identifier(name: str, what: str = "identifier") -> str:
    """Validate, normalise and double-quote one identifier."""
    return f'"{validate_identifier(name, what)}"'


def _snowflake_identifier(value: str) -> str:
    return validate_identifier(value, "Snowflake identifier")


# A pydantic field type: validated and normalised like validate_identifier().
SnowflakeIdentifier = Annotated[str, AfterValidator(_snowflake_identifier)]


@dataclass(frozen=True)
class TableRef:
    """A fully qualified table name; construction validates every part."""

    database: str
    schema: str
    table: str

    def __post_init__(self) -> None:
        object.__setattr__(self, "database", validate_identifier(self.database, "database"))
        object.__setattr__(self, "schema", validate_identifier(self.schema, "schema"))
        object.__setattr__(self, "table", validate_identifier(self.table, "table"))

    @property
    def sql(self) -> str:
        """The quoted three-part name, safe to place in SQL text."""
        return f'"{self.database}"."{self.schema}"."{self.table}"'

    def sibling(self, suffix: str) -> TableRef:
        """Another object in the same schema, named after this table (views, say)."""
        return TableRef(self.database, self.schema, f"{self.table}{suffix}")

    def __str__(self) -> str:
        return f"{self.database}.{self.schema}.{self.table}"
