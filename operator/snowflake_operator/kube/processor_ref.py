"""Which SnowflakeProcessor an object belongs to: its owner reference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from snowflake_operator.constants import GROUP, KIND, VERSION


@dataclass(frozen=True)
class ProcessorRef:
    """A processor by name and namespace, and the object that owns what is made for it (its
    Jobs, its certificates Secret): the SnowflakeProcessor itself, or in CronJob mode
    (cronjob/reconcile_once.py) the ConfigMap holding its spec, named ``owner_name``."""

    name: str
    namespace: str
    uid: str  # the owner's
    owner_kind: str = KIND
    owner_api_version: str = f"{GROUP}/{VERSION}"
    owner_name: str | None = None  # None: ``name``

    def owner_reference(self) -> dict[str, Any]:
        """Controller reference: deleting the owner garbage-collects what it owns. Only a
        SnowflakeProcessor blocks its owner's foreground deletion (setting that on a
        ConfigMap would need rights on configmaps/finalizers where the API server enforces
        owner-reference permissions)."""
        return {
            "apiVersion": self.owner_api_version,
            "kind": self.owner_kind,
            "name": self.owner_name or self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": self.owner_kind == KIND,
        }
