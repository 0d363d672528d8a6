"""Stop a cluster and undo everything it did to the machine, crashed or not.

Order matters: pods go first through CRI (that runs the CNI DEL and unmounts their
network namespaces), then the runtime, then anything that outlived it (shims,
containers in the pod cgroups), then mounts, packet filter rules, the bridge and the
kernel settings.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

from . import cgroups, config, hostpaths, mounts, network, processes, sysctls
from .state import ClusterState

# Stopped together, first; containerd next (after the pods), the store last.
CONTROL_ORDER = ("kube-proxy", "kubelet", "kube-scheduler", "kube-controller-manager")


def _remove_pods(state: ClusterState, say: Callable[[str], None]) -> None:
    s = state.settings
    kube = s.binaries / "kube"
    socket = s.layout.containerd_socket
    if not (kube.exists() and socket.exists()):
        return
    done = subprocess.run(
        [str(kube), "cri-cleanup", f"--endpoint=unix://{socket}", "--timeout=60s"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    removed = done.stdout.count("removed pod sandbox")
    if removed:
        say(f"removed {removed} pod sandbox(es) through CRI")


def _runc_leftovers(state: ClusterState) -> None:
    """Containers whose shim is gone: delete them with runc directly."""
    root = state.settings.layout.runc_root
    if not root.is_dir():
        return
    for namespace_root in root.iterdir():
        listed = subprocess.run(
            ["runc", "--root", str(namespace_root), "list", "-q"],
            capture_output=True,
            text=True,
            check=False,
        )
        for container in listed.stdout.split():
            subprocess.run(
                ["runc", "--root", str(namespace_root), "delete", "--force", container],
                capture_output=True,
                check=False,
            )


def _our_processes(state: ClusterState) -> list[int]:
    """Leftover component, containerd and shim processes of this state dir.

    Matched by executable as well as by path, so a shell that merely mentions the
    state dir on its command line is never touched.
    """
    executables = ("/kube", "/containerd", "/containerd-shim-runc-v2", "/runc")
    candidates = processes.pids_referring_to([state.settings.layout.state_dir])
    ours = []
    for pid in candidates:
        try:
            exe = Path(f"/proc/{pid}/exe").readlink().as_posix()
        except OSError:
            continue
        if exe.removesuffix(" (deleted)").endswith(executables):
            ours.append(pid)
    return ours


def teardown(state: ClusterState, say: Callable[[str], None] = print) -> list[str]:
    """Undo the cluster; return what could not be cleaned (empty when all is gone)."""
    s = state.settings

    def stop(names: tuple[str, ...]) -> None:
        killed = processes.stop([state.procs[n] for n in names if n in state.procs])
        if killed:
            say(f"killed (did not stop on SIGTERM in time): {', '.join(killed)}")

    stop(CONTROL_ORDER)
    containerd = state.procs.get("containerd")
    if containerd is not None and containerd.alive():
        try:
            _remove_pods(state, say)
        except (OSError, subprocess.SubprocessError) as error:
            say(f"removing pods through CRI failed ({error}); killing them instead")
    stop(("containerd",))
    stop(("kube-apiserver",))  # before etcd: it would log errors without its store
    stop(("etcd",))
    processes.kill_pids(_our_processes(state))
    _runc_leftovers(state)
    stuck_cgroups = cgroups.remove_pod_cgroups()
    processes.kill_pids(_our_processes(state))
    stuck_mounts = mounts.unmount_all(s.layout.state_dir)
    network.remove_kube_rules(str(s.binary("kube-proxy")) if s.binaries.is_dir() else None)
    network.delete_bridge(s)
    network.remove_guard(s)
    sysctls.restore(state.sysctls)
    hostpaths.clean(s.layout.pod_logs, config.cni_config(s)["name"], state.created_host_dirs)
    problems = [f"mount still present: {m}" for m in stuck_mounts]
    problems += [f"cgroup still present: {c}" for c in stuck_cgroups]
    problems += [f"process still running: {p}" for p in _our_processes(state)]
    if network.link_exists(s.network.bridge):
        problems.append(f"bridge {s.network.bridge} still present")
    return problems
