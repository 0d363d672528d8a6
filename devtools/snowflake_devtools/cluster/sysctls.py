"""Kernel settings the cluster changes, saved at `up` and put back at `down`.

The kubelet sets vm.overcommit_memory, kernel.panic and kernel.panic_on_oops (it
refuses to start if told not to), the CNI bridge plugin turns on ip_forward. The
machine is shared: leave it as we found it.
"""

from __future__ import annotations

from pathlib import Path

TOUCHED = (
    "net/ipv4/ip_forward",
    "net/ipv4/conf/all/forwarding",
    "net/ipv4/conf/all/route_localnet",
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
PROC_SYS = Path("/proc/sys")


def snapshot(names: tuple[str, ...] = TOUCHED, root: Path = PROC_SYS) -> dict[str, str]:
    values = {}
    for name in names:
        try:
            values[name] = (root / name).read_text().strip()
        except OSError:
            continue
    return values


def restore(values: dict[str, str], root: Path = PROC_SYS) -> list[str]:
    """Write back every value that changed; return the names that were restored."""
    restored = []
    for name, value in values.items():
        path = root / name
        try:
            if path.read_text().strip() != value:
                path.write_text(value + "\n")
                restored.append(name)
        except OSError:
            continue
    return restored
