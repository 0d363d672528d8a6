"""Which SnowflakeProcessor an object belongs to: its owner reference."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .constants import GROUP, KIND, VERSION


@dataclass(frozen=True)
class ProcessorRef:
    """A SnowflakeProcessor by name, namespace and uid (what an ownerReference needs)."""

    name: str
    namespace: str
    uid: str

    def owner_reference(self) -> dict[str, Any]:
        """Controller reference: deleting the resource garbage-collects what it owns."""
        return {
            "apiVersion": f"{GROUP}/{VERSION}",
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }
