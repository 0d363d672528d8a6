"""The few fixed host paths the components write to outside the state dir, and their cleanup.

Upstream hard-codes them: the kubelet's container log links (/var/log/containers) and
device-plugin socket (/var/lib/kubelet/device-plugins), libcni's result cache
(/var/lib/cni, used by containerd's CRI) and containerd 1.6's shim sockets
(/run/containerd/s). We remove our entries, and the directories if we created them.
"""

from __future__ import annotations

from pathlib import Path

VAR_LOG_CONTAINERS = Path("/var/log/containers")
KUBELET_DEVICE_PLUGINS = Path("/var/lib/kubelet/device-plugins")
CNI_RESULTS = Path("/var/lib/cni/results")
SHIM_SOCKETS = Path("/run/containerd/s")
# Deepest first: a directory is removed only when empty, after its children.
WATCHED = (
    VAR_LOG_CONTAINERS,
    KUBELET_DEVICE_PLUGINS,
    KUBELET_DEVICE_PLUGINS.parent,
    CNI_RESULTS,
    CNI_RESULTS.parent,
    SHIM_SOCKETS,
    SHIM_SOCKETS.parent,
)


def missing_now(paths: tuple[Path, ...] = WATCHED) -> list[str]:
    """The watched directories that do not exist yet (recorded before `up`)."""
    return [str(p) for p in paths if not p.exists()]


def cni_cache_entries(names: list[str], network: str) -> list[str]:
    """libcni cache files of our network, and the loopback entries of the same sandboxes."""
    ours = [n for n in names if n.startswith(f"{network}-")]
    sandboxes = {n[len(network) + 1 :].rsplit("-", 1)[0] for n in ours}
    loopback = [n for n in names if n.startswith("cni-loopback-")]
    ours += [n for n in loopback if n[len("cni-loopback-") :].rsplit("-", 1)[0] in sandboxes]
    return ours


def _kubelet_running() -> bool:
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv0 = (entry / "cmdline").read_bytes().split(b"\0", 1)[0]
        except OSError:
            continue
        if argv0.rsplit(b"/", 1)[-1] == b"kubelet":
            return True
    return False


def clean(pod_logs: Path, network: str, created: list[str]) -> None:
    """Remove our entries under the watched paths, then the directories we created."""
    if VAR_LOG_CONTAINERS.is_dir():
        for link in VAR_LOG_CONTAINERS.iterdir():
            if link.is_symlink() and str(link.readlink()).startswith(str(pod_logs)):
                link.unlink()
    if not _kubelet_running():
        # Left by the kubelet we stopped; no other kubelet would be using it.
        (KUBELET_DEVICE_PLUGINS / "kubelet.sock").unlink(missing_ok=True)
    if CNI_RESULTS.is_dir():
        for name in cni_cache_entries([p.name for p in CNI_RESULTS.iterdir()], network):
            (CNI_RESULTS / name).unlink(missing_ok=True)
    for directory in WATCHED:
        if str(directory) in created and directory.is_dir() and not any(directory.iterdir()):
            directory.rmdir()
