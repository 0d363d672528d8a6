"""The record a running cluster leaves in its state dir (cluster.json).

It is written as soon as `up` starts changing the machine, so `down` (or the next
`up`) can undo a half-started or crashed cluster from another process.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .processes import Proc
from .settings import ClusterSettings, Layout, Network


@dataclass
class ClusterState:
    settings: ClusterSettings
    procs: dict[str, Proc] = field(default_factory=dict)
    sysctls: dict[str, str] = field(default_factory=dict)  # values before we started
    # Fixed host directories that did not exist before `up` (see hostpaths.py).
    created_host_dirs: list[str] = field(default_factory=list)
    ready: bool = False
    timings: dict[str, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        s = self.settings
        return {
            "state_dir": str(s.layout.state_dir),
            "binaries": str(s.binaries),
            "network": asdict(s.network),
            "node_name": s.node_name,
            "procs": [p.to_json() for p in self.procs.values()],
            "sysctls": self.sysctls,
            "created_host_dirs": self.created_host_dirs,
            "ready": self.ready,
            "timings": self.timings,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ClusterState:
        settings = ClusterSettings(
            layout=Layout(Path(data["state_dir"])),
            binaries=Path(data["binaries"]),
            network=Network(**data["network"]),
            node_name=str(data["node_name"]),
        )
        procs = [Proc.from_json(p) for p in data.get("procs", [])]
        return cls(
            settings=settings,
            procs={p.name: p for p in procs},
            sysctls=dict(data.get("sysctls", {})),
            created_host_dirs=[str(d) for d in data.get("created_host_dirs", [])],
            ready=bool(data.get("ready", False)),
            timings=dict(data.get("timings", {})),
        )

    def save(self) -> None:
        path = self.settings.layout.state_file
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n")
        tmp.replace(path)


def load(layout: Layout) -> ClusterState | None:
    try:
        return ClusterState.from_json(json.loads(layout.state_file.read_text()))
    except (OSError, ValueError, KeyError, TypeError):
        return None
