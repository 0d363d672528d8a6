"""What the emulator's model remembers of each table it saw created, and fakesnow does not:
its owner (the role that created it, or the one GRANT OWNERSHIP gave it to), and SHOW
TABLES' ``kind`` (TABLE, TRANSIENT) and ``retention_time`` (DATA_RETENTION_TIME_IN_DAYS).

fakesnow's SHOW TABLES answers the constants SYSADMIN, TABLE and 1 for every table. A table
the model has no record of (made before the emulator restarted: records live in memory,
the data on disk) keeps those figures, and so is owned by SYSADMIN, the role a login without
one gets here. Names are DATABASE.SCHEMA.TABLE as snowflake_rules.qualified_name gives them.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from .snowflake_rules import DEFAULT_RETENTION_DAYS

DEFAULT_OWNER = "SYSADMIN"  # fakesnow's owner of everything; the model's default role


@dataclass(frozen=True)
class TableRecord:
    owner: str
    kind: str = "TABLE"
    retention_days: int = DEFAULT_RETENTION_DAYS

    def show_columns(self) -> dict[str, Any]:
        """The SHOW TABLES columns this record fills."""
        return {"owner": self.owner, "kind": self.kind, "retention_time": self.retention_days}


class TableRecords:
    def __init__(self) -> None:
        self._records: dict[str, TableRecord] = {}

    def get(self, name: str) -> TableRecord | None:
        return self._records.get(name)

    def owner(self, name: str) -> str:
        record = self._records.get(name)
        return record.owner if record is not None else DEFAULT_OWNER

    def created(self, name: str, record: TableRecord) -> None:
        self._records[name] = record

    def dropped(self, name: str) -> None:
        self._records.pop(name, None)

    def dropped_under(self, prefix: str) -> None:
        """DROP SCHEMA or DATABASE: every table whose name starts with ``prefix``."""
        for name in [name for name in self._records if name.startswith(prefix)]:
            del self._records[name]

    def renamed(self, old: str, new: str, swap: bool = False) -> None:
        """RENAME TO moves the record to the new name; SWAP WITH exchanges the two (an
        unrecorded table has fakesnow's defaults)."""
        first, second = self._records.pop(old, None), self._records.pop(new, None)
        if first is not None:
            self._records[new] = first
        if swap and second is not None:
            self._records[old] = second

    def owned_by(self, name: str, owner: str) -> None:
        record = self._records.get(name) or TableRecord(DEFAULT_OWNER)
        self._records[name] = replace(record, owner=owner)

    def stats(self) -> dict[str, dict[str, Any]]:
        return {name: record.show_columns() for name, record in sorted(self._records.items())}
