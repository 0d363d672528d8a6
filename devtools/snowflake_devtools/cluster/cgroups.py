"""Kill what is left in the kubelet's pod cgroups and remove them.

The kubelet (cgroupfs driver, cgroupRoot "/") puts every pod under a "kubepods"
cgroup in each hierarchy. After a crash, containers can outlive their shims there.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")
POD_CGROUP = "kubepods"


def pod_cgroup_dirs(root: Path = CGROUP_ROOT) -> list[Path]:
    """The kubepods directory of every mounted hierarchy (v1 controllers and v2)."""
    candidates = [root / POD_CGROUP]
    if root.is_dir():
        for entry in root.iterdir():
            # cpu -> cpu,cpuacct style links point at hierarchies listed anyway.
            if entry.is_dir() and not entry.is_symlink():
                candidates.append(entry / POD_CGROUP)
    return [c for c in candidates if c.is_dir()]


def _tree(top: Path) -> list[Path]:
    """top and its descendants, deepest first."""
    dirs = [Path(d) for d, _subdirs, _files in os.walk(top)]
    return sorted(dirs, key=lambda p: len(p.parts), reverse=True)


def _pids(directory: Path) -> list[int]:
    try:
        text = (directory / "cgroup.procs").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def remove_pod_cgroups(root: Path = CGROUP_ROOT) -> list[Path]:
    """SIGKILL every process in the pod cgroups, then rmdir them. Returns what stays."""
    tops = pod_cgroup_dirs(root)
    for _ in range(20):
        alive = [pid for top in tops for d in _tree(top) for pid in _pids(d)]
        if not alive:
            break
        for pid in alive:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)
    left = []
    for top in tops:
        for directory in _tree(top):
            try:
                directory.rmdir()
            except OSError:
                left.append(directory)
    return left
