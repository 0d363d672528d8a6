"""Find and unmount everything mounted under the state dir (pod volumes, rootfs, netns, shm)."""

from __future__ import annotations

import subprocess
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo octal.
    out, i = [], 0
    while i < len(field):
        code = field[i + 1 : i + 4]
        if field[i] == "\\" and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts_under(root: Path, mountinfo: str) -> list[str]:
    """Mount points at or below root, deepest first (the order to unmount them in)."""
    prefix = str(root).rstrip("/")
    found = []
    for line in mountinfo.splitlines():
        fields = line.split()
        if len(fields) < 5:
            continue
        point = _unescape(fields[4])
        if point == prefix or point.startswith(prefix + "/"):
            found.append(point)
    # Deepest first; a path mounted twice is listed twice and unmounted twice.
    return sorted(found, key=lambda p: (p.count("/"), p), reverse=True)


def unmount_all(root: Path) -> list[str]:
    """Unmount everything under root; lazily if a mount is busy. Returns what stays."""
    for _ in range(3):
        points = mounts_under(root, MOUNTINFO.read_text())
        if not points:
            return []
        for point in points:
            done = subprocess.run(["umount", point], capture_output=True, check=False)
            if done.returncode != 0:
                subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    return mounts_under(root, MOUNTINFO.read_text())
