"""Start the components as detached process groups with one log file each, and stop them.

Each component leads its own session (process group), so stopping it also stops
whatever it forked. Its pid and start time are recorded, so a later `down` (another
Python process) never signals a recycled pid.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Proc:
    name: str
    pid: int
    start_ticks: int  # field 22 of /proc/<pid>/stat: tells a recycled pid apart
    log: str

    def alive(self) -> bool:
        return start_ticks(self.pid) == self.start_ticks

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Proc:
        return cls(str(data["name"]), int(data["pid"]), int(data["start_ticks"]), str(data["log"]))


def start_ticks(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces; fields after it follow ")".
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":  # a zombie is as good as gone
        return None
    return int(fields[19])


def spawn(name: str, command: list[str], log: Path, env: Mapping[str, str] | None = None) -> Proc:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        child = subprocess.Popen(
            command,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # own process group; survives the CLI that started it
            env=dict(env) if env is not None else None,
            close_fds=True,
        )
    ticks = start_ticks(child.pid)
    if ticks is None:
        raise RuntimeError(f"{name} exited at once; see {log}")
    return Proc(name, child.pid, ticks, str(log))


def _signal_group(proc: Proc, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)


def _reap(pid: int) -> None:
    """Collect the exit status when the process is our own child (same Python process)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def stop(procs: Iterable[Proc], grace: float = 10.0) -> list[str]:
    """SIGTERM the process groups together, SIGKILL what is left after `grace` seconds.

    Returns the names of those that had to be killed.
    """
    procs = list(procs)
    for proc in procs:
        _signal_group(proc, signal.SIGTERM if proc.alive() else signal.SIGKILL)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(running(p) for p in procs):
        time.sleep(0.1)
    killed = [p.name for p in procs if running(p)]
    for proc in procs:
        _signal_group(proc, signal.SIGKILL)  # also children of a leader that exited
    for _ in range(50):
        if not any(running(p) for p in procs):
            break
        time.sleep(0.1)
    return killed


def running(proc: Proc) -> bool:
    """Alive, collecting its exit status first when it is our own child."""
    _reap(proc.pid)
    return proc.alive()


def pids_referring_to(paths: Iterable[Path], exclude: Iterable[int] = ()) -> list[int]:
    """Processes whose command line mentions any of these paths (leftovers of a crash)."""
    needles = [str(p) for p in paths]
    skip = {os.getpid(), *exclude}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(needle in cmdline for needle in needles):
            found.append(int(entry.name))
    return found


def kill_pids(pids: Iterable[int], grace: float = 5.0) -> None:
    pids = list(pids)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(start_ticks(p) is not None for p in pids):
        time.sleep(0.1)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
