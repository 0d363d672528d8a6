"""The local base image (Debian bookworm + Python 3.11) and the pod sandbox (pause) image.

No registry is reachable, so both are made here: the base from Debian's packages with
debootstrap, the pause image from our own static binary. Each carries a label with
the hash of its recipe; an image whose label matches is reused.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from . import buildah, hostdeps
from .locking import file_lock
from .settings import BASE_IMAGE, cache_root

PAUSE_IMAGE = "localhost/snowflake-processor-pause:1"
RECIPE_LABEL = "org.snowflake-processor.recipe"

SUITE = "bookworm"
PACKAGES = ("python3.11", "python3.11-venv", "ca-certificates", "netbase", "tzdata")
# Only for the pip/setuptools/wheel install below (python:3.11-slim ships all three).
HELPER_PACKAGES = ("python3-wheel-whl",)
IMAGE_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
# Commands run in the chroot once the packages are in (see docs/cluster.md).
CHROOT_STEPS = (
    # The Dockerfiles pip-install into the system interpreter, as in python:3.11-slim.
    "rm -f /usr/lib/python3.11/EXTERNALLY-MANAGED",
    # pip/setuptools/wheel in /usr/local from Debian's bundled wheels: the Dockerfiles'
    # last stage uninstalls pip, which Debian's own python3-pip would not allow.
    "python3.11 $(ls /usr/share/python-wheels/pip-*.whl)/pip install --no-index --no-cache-dir"
    " --disable-pip-version-check --root-user-action=ignore"
    " --find-links /usr/share/python-wheels pip setuptools wheel",
    "ln -sf /usr/bin/python3.11 /usr/local/bin/python3",
    "ln -sf /usr/bin/python3.11 /usr/local/bin/python",
    "apt-get clean",
    "rm -rf /var/lib/apt/lists/* /var/cache/apt/* /var/log/* /root/.cache",
)
RECIPE_VERSION = 1  # bump when the steps above change in a way the hash cannot see


def recipe_hash() -> str:
    recipe = {
        "version": RECIPE_VERSION,
        "suite": SUITE,
        "variant": "minbase",
        "packages": PACKAGES + HELPER_PACKAGES,
        "steps": CHROOT_STEPS,
        "path": IMAGE_PATH,
    }
    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]


def debian_mirror(sources: str, suite: str = SUITE) -> str:
    """The Debian mirror apt on this machine uses (one-line or deb822 format)."""
    for block in re.split(r"\n\s*\n", sources):
        fields: dict[str, str] = {}
        for line in block.splitlines():
            key, colon, value = line.partition(":")
            if colon and not key.lstrip().startswith("#"):
                fields[key.strip().lower()] = value.strip()
        suites = fields.get("suites", "").split()
        if suite in suites and "deb" in fields.get("types", "").split():
            return fields.get("uris", "").split()[0]
    for line in sources.splitlines():
        words = line.split()
        if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
            return words[1]
        if len(words) >= 4 and words[0] == "deb" and words[1].startswith("[") and suite in words:
            return next(w for w in words[1:] if "://" in w)
    return "http://deb.debian.org/debian"


def host_mirror() -> str:
    texts = []
    for path in [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]:
        if path.suffix in ("", ".list", ".sources") and path.is_file():
            texts.append(path.read_text())
    return debian_mirror("\n\n".join(texts))


def _chroot(rootfs: Path, command: str) -> None:
    # env -i: the host's REQUESTS_CA_BUNDLE, PIP_* and proxies must not leak in.
    env = ["env", "-i", f"PATH={IMAGE_PATH}", "HOME=/root", "LANG=C.UTF-8"]
    env.append("DEBIAN_FRONTEND=noninteractive")
    done = subprocess.run(
        ["chroot", str(rootfs), *env, "sh", "-ec", command],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        output = (done.stdout + done.stderr).strip()[-1500:]
        raise RuntimeError(f"in the base image chroot, `{command}` failed:\n{output}")


def _commit_rootfs(rootfs: Path, name: str, config: list[str]) -> None:
    container = buildah.buildah("from", "scratch").strip()
    try:
        mountpoint = buildah.buildah("mount", container).strip()
        # --numeric-owner: uids of the image, not of the host's /etc/passwd.
        pack = subprocess.Popen(
            ["tar", "--numeric-owner", "-C", str(rootfs), "-cf", "-", "."],
            stdout=subprocess.PIPE,
        )
        subprocess.run(
            ["tar", "--numeric-owner", "-C", mountpoint, "-xpf", "-"],
            stdin=pack.stdout,
            check=True,
        )
        if pack.wait() != 0:
            raise RuntimeError(f"tar of {rootfs} failed")
        buildah.buildah("config", *config, container)
        buildah.buildah("commit", "--rm", container, name)
    except BaseException:
        subprocess.run(["buildah", *buildah.storage_args(), "rm", container], check=False)
        raise


def _is_current(name: str, wanted: str) -> bool:
    info = buildah.inspect_image(name)
    return info is not None and buildah.image_labels(info).get(RECIPE_LABEL) == wanted


def ensure_base_image(say: Callable[[str], None] = print, force: bool = False) -> str:
    """Build localhost/snowflake-processor-base:bookworm-py3.11 unless an up-to-date one exists."""
    wanted = recipe_hash()
    hostdeps.ensure_step("image", say)
    with file_lock(cache_root() / "images.lock"):
        if not force and _is_current(BASE_IMAGE, wanted):
            say(f"base image {BASE_IMAGE} is up to date (recipe {wanted})")
            return BASE_IMAGE
        mirror = host_mirror()
        say(f"building {BASE_IMAGE} with debootstrap from {mirror}")
        started = time.monotonic()
        work = cache_root() / "tmp"
        work.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            rootfs = Path(tmp) / "rootfs"
            subprocess.run(
                ["debootstrap", "--variant=minbase", SUITE, str(rootfs), mirror],
                check=True,
                capture_output=True,
            )
            _chroot(rootfs, "apt-get -qq update")
            _chroot(
                rootfs,
                "apt-get -qq install -y --no-install-recommends "
                + " ".join(PACKAGES + HELPER_PACKAGES),
            )
            for step in CHROOT_STEPS:
                _chroot(rootfs, step)
            _commit_rootfs(
                rootfs,
                BASE_IMAGE,
                [
                    "--env",
                    f"PATH={IMAGE_PATH}",
                    "--env",
                    "LANG=C.UTF-8",
                    "--cmd",
                    '["python3"]',
                    "--label",
                    f"{RECIPE_LABEL}={wanted}",
                ],
            )
        say(f"built {BASE_IMAGE} in {time.monotonic() - started:.0f} s")
        return BASE_IMAGE


def ensure_pause_image(pause_binary: Path, say: Callable[[str], None] = print) -> str:
    """The sandbox image: our static pause binary alone, run as 65535 like upstream's."""
    wanted = hashlib.sha256(pause_binary.read_bytes()).hexdigest()[:16]
    hostdeps.ensure_step("image", say)
    with file_lock(cache_root() / "images.lock"):
        if _is_current(PAUSE_IMAGE, wanted):
            return PAUSE_IMAGE
        say(f"building {PAUSE_IMAGE}")
        work = cache_root() / "tmp"
        work.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=work) as tmp:
            rootfs = Path(tmp)
            rootfs.chmod(0o755)  # becomes the image's "/": the 65535 user must traverse it
            shutil.copy2(pause_binary, rootfs / "pause")
            (rootfs / "pause").chmod(0o755)
            _commit_rootfs(
                rootfs,
                PAUSE_IMAGE,
                [
                    "--entrypoint",
                    '["/pause"]',
                    "--user",
                    "65535:65535",
                    "--label",
                    f"{RECIPE_LABEL}={wanted}",
                ],
            )
        return PAUSE_IMAGE
