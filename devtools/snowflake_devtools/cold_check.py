"""`make cold-check`: rehearse CI on a machine put back to a new machine's state.

It removes what the project installs on a machine (the Debian packages of the image and
cluster steps and what they pulled in, buildah's image storage, the project's cache:
images, archives, the cluster's state, with the Kubernetes binaries kept unless
--full), clones the current commit fresh into a temporary directory and runs
`make demo`, then `bash .ci/run` there, as a new user would, and prints the wall time of
each phase. Needs root: it runs apt-get and deletes system directories. Uncommitted
changes are not part of the clone.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from snowflake_devtools.cluster import hostdeps
from snowflake_devtools.cluster.settings import cache_root

ROOT = Path(__file__).resolve().parents[2]
BUILDAH_STORAGE = (Path("/var/lib/containers"), Path("/run/containers"))
KEPT_WITH_GO_BUILD = "kubernetes"  # cache_root()/kubernetes: the Go build of the binaries
# Printed by tests/e2e/conftest.py once the binaries and images are ready.
PHASE_LINE = re.compile(r"^\[phase\] (?P<name>[a-z ]+): (?P<seconds>[0-9.]+) s$")
SESSION_START = re.compile(r"^=+ test session starts =+$")
# Set by the make and venv running this; a fresh CI run starts without them.
INHERITED_BY_MAKE = ("VIRTUAL_ENV", "MAKEFLAGS", "MFLAGS", "MAKELEVEL", "ARGS")
Say = Callable[[str], None]


@dataclass
class Timeline:
    """What the run printed, read as phases (pure: fed one line at a time)."""

    started: float
    session_started: float | None = None
    phases: dict[str, float] = field(default_factory=dict)

    def feed(self, line: str, now: float) -> None:
        text = line.rstrip("\n")
        if self.session_started is None and SESSION_START.match(text):
            self.session_started = now
        matched = PHASE_LINE.match(text)
        if matched:
            self.phases[matched["name"]] = float(matched["seconds"])

    def report(self, finished: float) -> dict[str, float]:
        """Seconds per phase: bootstrap (venv, lint, typecheck, tools) until pytest starts,
        the build phases pytest reported, and the tests as the rest."""
        total = finished - self.started
        bootstrap = (self.session_started or finished) - self.started
        built = sum(self.phases.values())
        result = {"bootstrap": bootstrap, **self.phases}
        result["tests"] = max(0.0, total - bootstrap - built)
        result["total"] = total
        return {name: round(seconds, 1) for name, seconds in result.items()}


def packages_to_remove() -> list[str]:
    both = hostdeps.step_packages("cluster") | hostdeps.FORMER_PACKAGES
    return hostdeps.installable(both)


def _autoremovable() -> set[str]:
    done = subprocess.run(
        ["apt-get", "-s", "autoremove"], capture_output=True, text=True, check=True
    )
    return {line.split()[1] for line in done.stdout.splitlines() if line.startswith("Remv ")}


def remove_packages(say: Say) -> None:
    """Purge the project's packages and the dependencies only they needed."""
    installed = [name for name in packages_to_remove() if not hostdeps.missing([name])]
    if not installed:
        say("no project packages installed")
        return
    before = _autoremovable()
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    quiet = ["-qq", "-o", "Dpkg::Use-Pty=0"]
    say(f"purging {' '.join(installed)}")
    subprocess.run(["apt-get", *quiet, "purge", "-y", *installed], check=True, env=env)
    pulled_in = sorted(_autoremovable() - before)
    if pulled_in:
        say(f"purging what they pulled in: {' '.join(pulled_in)}")
        subprocess.run(["apt-get", *quiet, "purge", "-y", *pulled_in], check=True, env=env)


def stop_cluster(say: Say) -> None:
    from snowflake_devtools.cluster import Cluster
    from snowflake_devtools.cluster.cluster import default_state_dir

    cluster = Cluster.attach(default_state_dir())
    if cluster is not None:
        say("stopping the local cluster")
        problems = cluster.stop(say=say)
        if problems:
            raise RuntimeError(f"the cluster did not stop cleanly: {problems}")


def remove_images(say: Say) -> None:
    """buildah's storage: its containers and images first (they hold mounts), then the
    directories (the package's purge leaves them)."""
    if shutil.which("buildah"):
        subprocess.run(["buildah", "rm", "--all"], capture_output=True, check=False)
        subprocess.run(["buildah", "rmi", "--all", "--force"], capture_output=True, check=False)
    for directory in BUILDAH_STORAGE:
        if directory.exists():
            say(f"removing {directory}")
            shutil.rmtree(directory)


def cache_entries_to_remove(cache: Path, keep_go_build: bool) -> list[Path]:
    if not cache.is_dir():
        return []
    kept = {KEPT_WITH_GO_BUILD} if keep_go_build else set()
    return sorted(p for p in cache.iterdir() if p.name not in kept)


def remove_cache(keep_go_build: bool, say: Say) -> None:
    for entry in cache_entries_to_remove(cache_root(), keep_go_build):
        say(f"removing {entry}")
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
    if not keep_go_build:
        for directory in _go_caches():
            say(f"removing {directory}")
            shutil.rmtree(directory, ignore_errors=True)


def _go_caches() -> list[Path]:
    go = shutil.which("go")
    if go is None:
        return []
    found = []
    for variable in ("GOMODCACHE", "GOCACHE"):
        done = subprocess.run([go, "env", variable], capture_output=True, text=True)
        value = done.stdout.strip()
        if done.returncode == 0 and value and Path(value).is_dir():
            found.append(Path(value))
    return found


def clone_head(target: Path, say: Say) -> str:
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
    ).stdout.strip()
    dirty = subprocess.run(
        ["git", "-C", str(ROOT), "status", "--porcelain"], capture_output=True, text=True
    ).stdout
    if dirty.strip():
        say("note: uncommitted changes are not in the clone (it is of HEAD)")
    subprocess.run(["git", "clone", "--quiet", "--no-local", str(ROOT), str(target)], check=True)
    subprocess.run(["git", "-C", str(target), "checkout", "--quiet", head], check=True)
    return head


def run_logged(
    command: Sequence[str], clone: Path, out: TextIO, timeline: Timeline | None = None
) -> tuple[int, float]:
    """Run a command in the clone, echoing and logging its output with elapsed times;
    (exit code, seconds). Lines are fed to ``timeline`` when one is given."""
    started = time.monotonic()
    process = subprocess.Popen(
        list(command),
        cwd=clone,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={k: v for k, v in os.environ.items() if k not in INHERITED_BY_MAKE},
    )
    assert process.stdout is not None
    for line in process.stdout:
        now = time.monotonic()
        if timeline is not None:
            timeline.feed(line, now)
        stamped = f"[{now - started:7.0f} s] {line}"
        sys.stdout.write(stamped)
        sys.stdout.flush()
        out.write(stamped)
    return process.wait(), time.monotonic() - started


def rehearse(
    clone: Path, head: str, out: TextIO, *, demo: bool, say: Say
) -> tuple[dict[str, float], int]:
    """`make demo` (what a new user tries first), then `bash .ci/run`: (phases, exit code)."""
    phases: dict[str, float] = {}
    if demo:
        say(f"running make demo on a fresh clone of {head[:12]}")
        code, seconds = run_logged(["make", "demo"], clone, out)
        phases["demo"] = round(seconds, 1)
        if code != 0:
            return {**phases, "total": phases["demo"]}, code
    say(f"running bash .ci/run on a fresh clone of {head[:12]}")
    timeline = Timeline(started=time.monotonic())
    code, _ = run_logged(["bash", ".ci/run"], clone, out, timeline)
    ci = timeline.report(time.monotonic())
    ci["total"] = round(ci["total"] + phases.get("demo", 0.0), 1)
    return {**phases, **ci}, code


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="make cold-check", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument(
        "--full",
        action="store_true",
        help="also remove the Kubernetes binaries and Go's module and build caches",
    )
    parser.add_argument(
        "--clean-only", action="store_true", help="put the machine back, do not run CI"
    )
    parser.add_argument(
        "--no-demo", action="store_true", help="skip `make demo` before `bash .ci/run`"
    )
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)

    def say(message: str) -> None:
        print(f"[cold-check] {message}", flush=True)

    if os.geteuid() != 0:
        print("cold-check: needs root (it removes Debian packages and system directories)")
        return 2
    # Started in the background, this process inherits SIGINT ignored, and so would every
    # program of the run: the tests that send SIGINT must meet it as a terminal would.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    began = time.monotonic()
    try:
        stop_cluster(say)
        remove_images(say)
        remove_packages(say)
        remove_cache(keep_go_build=not args.full, say=say)
    except (subprocess.CalledProcessError, RuntimeError, OSError) as error:
        print(f"cold-check: could not put the machine back: {error}")
        return 1
    cleaned = time.monotonic() - began
    say(f"machine put back in {cleaned:.0f} s")
    if args.clean_only:
        return 0
    with tempfile.TemporaryDirectory(prefix="sfp-cold-") as tmp:
        clone = Path(tmp) / "clone"
        head = clone_head(clone, say)
        log = cache_root().parent / "snowflake-processor-cold-check.log"
        log.parent.mkdir(parents=True, exist_ok=True)
        say(f"log: {log}")
        with log.open("w") as out:
            phases, code = rehearse(clone, head, out, demo=not args.no_demo, say=say)
    result = {"commit": head[:12], "exit_code": code, "full": args.full, "seconds": phases}
    say("phases (s): " + ", ".join(f"{name} {value}" for name, value in phases.items()))
    print(json.dumps(result))
    return code


if __name__ == "__main__":
    sys.exit(main())
