"""Prometheus's promtool (and server), built from the Go module proxy at a pinned version and
cached outside the clone, the way the cluster's Kubernetes binaries are.

    ensure_prometheus_tool("promtool")   # -> ~/.cache/snowflake-processor/prometheus/<v>/promtool

No registry serves a Prometheus binary here; `go install <module>/cmd/<tool>@<version>`
builds it (about 5 minutes on 2 cores with an empty module cache, then seconds).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from . import golang
from .locking import file_lock
from .settings import cache_root

PROMETHEUS_MODULE = "github.com/prometheus/prometheus"
# Prometheus v3.x is published to the Go module proxy as v0.3xx.y (v3.6.0 is v0.306.0).
PROMETHEUS_VERSION = "v0.316.0"
TOOLS = ("promtool", "prometheus")


def tool_dir(environ: dict[str, str] | None = None) -> Path:
    return cache_root(environ) / "prometheus" / PROMETHEUS_VERSION


def install_command(go: Path, tool: str) -> list[str]:
    if tool not in TOOLS:
        raise ValueError(f"unknown Prometheus tool {tool!r}: one of {', '.join(TOOLS)}")
    return [str(go), "install", f"{PROMETHEUS_MODULE}/cmd/{tool}@{PROMETHEUS_VERSION}"]


def build_env(toolchain: golang.Toolchain, target: Path, base: dict[str, str]) -> dict[str, str]:
    env = toolchain.env(base)
    env["GOBIN"] = str(target)
    env["CGO_ENABLED"] = "0"  # static: runs anywhere, needs no C toolchain
    env["GOTOOLCHAIN"] = "local"  # the toolchain at hand builds it
    env.pop("GOFLAGS", None)  # `go install pkg@version` ignores the clone's go.mod anyway
    return env


def ensure_prometheus_tool(tool: str, say: Callable[[str], None] = print) -> Path:
    """The tool's path, built first when it is not cached yet."""
    target = tool_dir()
    binary = target / tool
    with file_lock(target.parent / f"{PROMETHEUS_VERSION}.lock"):
        if binary.is_file() and os.access(binary, os.X_OK):
            return binary
        toolchain = golang.find(cache_root(), say)
        say(f"building {tool} {PROMETHEUS_VERSION} from the Go module proxy (minutes, once)")
        started = time.monotonic()
        target.mkdir(parents=True, exist_ok=True)
        subprocess.run(
            install_command(toolchain.go, tool),
            env=build_env(toolchain, target, dict(os.environ)),
            check=True,
        )
        say(f"built {binary} in {time.monotonic() - started:.0f} s")
    return binary
