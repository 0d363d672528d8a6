"""Build (or reuse) the cluster's binaries from devtools/kubernetes, cached outside the clone.

The cache is keyed by the Kubernetes version and, inside build.json, by a hash of the
Go sources: editing go.mod or main.go rebuilds, a fresh clone of the same sources reuses.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import golang
from .locking import file_lock
from .settings import (
    COMPONENTS,
    ETCD_VERSION,
    KUBERNETES_BUILD_DATE,
    KUBERNETES_COMMIT,
    KUBERNETES_VERSION,
    cache_root,
)

SOURCE_DIR = Path(__file__).resolve().parents[2] / "kubernetes"
SOURCE_FILES = ("go.mod", "go.sum", "main.go", "pause/main.go")
MULTI_CALL = "kube"
PAUSE = "pause"
STAMP = "build.json"


@dataclass(frozen=True)
class Binaries:
    directory: Path
    build_seconds: float
    reused: bool

    def path(self, component: str) -> Path:
        return self.directory / component

    @property
    def pause(self) -> Path:
        return self.directory / PAUSE


def binaries_dir(environ: dict[str, str] | None = None) -> Path:
    return cache_root(environ) / "kubernetes" / KUBERNETES_VERSION


def version_ldflags(version: str = KUBERNETES_VERSION) -> str:
    """What the upstream build (hack/lib/version.sh) stamps into every binary."""
    major, minor = version.lstrip("v").split(".")[:2]
    values = {
        "gitVersion": version,
        "gitMajor": major,
        "gitMinor": minor,
        "gitCommit": KUBERNETES_COMMIT,
        "gitTreeState": "clean",
        "buildDate": KUBERNETES_BUILD_DATE,
    }
    packages = ("k8s.io/component-base/version", "k8s.io/client-go/pkg/version")
    return " ".join(f"-X {pkg}.{key}={value}" for pkg in packages for key, value in values.items())


def source_hash(source_dir: Path = SOURCE_DIR) -> str:
    """Changes whenever the sources or the way they are built change."""
    digest = hashlib.sha256(version_ldflags().encode() + b"\0")
    for name in SOURCE_FILES:
        digest.update(name.encode() + b"\0" + (source_dir / name).read_bytes() + b"\0")
    return digest.hexdigest()


def build_commands(go: Path, out_dir: Path) -> list[list[str]]:
    """Static, stripped binaries; -trimpath keeps the cache independent of the clone's path."""
    kube_flags = ["-trimpath", "-ldflags", f"-s -w {version_ldflags()}"]
    pause_flags = ["-trimpath", "-ldflags", "-s -w"]
    return [
        [str(go), "build", *kube_flags, "-o", str(out_dir / f"{MULTI_CALL}.new"), "."],
        [str(go), "build", *pause_flags, "-o", str(out_dir / f"{PAUSE}.new"), "./pause"],
    ]


def build_env(toolchain: golang.Toolchain, base: dict[str, str]) -> dict[str, str]:
    env = toolchain.env(base)
    # Static binaries need no C toolchain on CI and run inside any image.
    env["CGO_ENABLED"] = "0"
    # The toolchain in use builds it, even if go.mod would ask for a newer one.
    env["GOTOOLCHAIN"] = "local"
    env.setdefault("GOFLAGS", "-mod=readonly")
    return env


def read_stamp(directory: Path) -> dict[str, Any] | None:
    try:
        data = json.loads((directory / STAMP).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def is_current(directory: Path, stamp: dict[str, Any] | None, wanted_hash: str) -> bool:
    if stamp is None or stamp.get("source_hash") != wanted_hash:
        return False
    needed = [MULTI_CALL, PAUSE, *COMPONENTS]
    return all((directory / name).exists() for name in needed)


def _link_components(directory: Path) -> None:
    # The multi-call binary dispatches on the name it is called by.
    for component in COMPONENTS:
        link = directory / component
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(MULTI_CALL)


def ensure_binaries(
    directory: Path | None = None,
    *,
    force: bool = False,
    say: Callable[[str], None] = print,
) -> Binaries:
    """Return the cached binaries, building them first if missing or stale."""
    directory = directory or binaries_dir()
    directory.mkdir(parents=True, exist_ok=True)
    wanted = source_hash()
    with file_lock(directory / ".lock"):
        stamp = read_stamp(directory)
        if not force and is_current(directory, stamp, wanted):
            assert stamp is not None
            seconds = float(stamp.get("build_seconds", 0.0))
            say(f"kubernetes {KUBERNETES_VERSION} binaries cached in {directory}")
            say(f"(the build that made them took {seconds:.0f} s)")
            return Binaries(directory, seconds, reused=True)
        toolchain = golang.find(cache_root(), say)
        go_version = toolchain.version()
        say(f"building kubernetes {KUBERNETES_VERSION} + etcd {ETCD_VERSION} with {go_version}")
        say(f"(sources {SOURCE_DIR}; cold, this takes 10-30 minutes on 2 cores)")
        env = build_env(toolchain, dict(os.environ))
        started = time.monotonic()
        for command in build_commands(toolchain.go, directory):
            subprocess.run(command, cwd=SOURCE_DIR, env=env, check=True)
        seconds = time.monotonic() - started
        (directory / f"{MULTI_CALL}.new").rename(directory / MULTI_CALL)
        (directory / f"{PAUSE}.new").rename(directory / PAUSE)
        _link_components(directory)
        record = {
            "kubernetes_version": KUBERNETES_VERSION,
            "etcd_version": ETCD_VERSION,
            "go_version": go_version,
            "source_hash": wanted,
            "build_seconds": round(seconds, 1),
            "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        (directory / STAMP).write_text(json.dumps(record, indent=2) + "\n")
        say(f"built in {seconds:.0f} s into {directory}")
        return Binaries(directory, seconds, reused=False)
