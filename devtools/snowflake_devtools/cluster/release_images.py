"""The images and chart of an earlier release, built from that release's commit.

The upgrade test installs a release as it was (its chart, its operator and worker built
from its own Dockerfiles and sources), then upgrades to this clone's. The sources come
from git (`git archive COMMIT`), unpacked once into the cache outside any clone.

An old Dockerfile names its base by a registry tag (`FROM python:3.11.14-slim-bookworm`)
that cannot be pulled here: the local base image (Debian bookworm's Python, see
base_image.py) is tagged with each name the Dockerfile's FROM lines use, so the files are
built as written. The images are tagged `<repository>:<version>-<commit>` and rebuilt only
when missing or built on another base.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from . import buildah
from .locking import file_lock
from .project_images import IMAGES, SOURCE_LABEL, ProjectImage
from .settings import BASE_IMAGE, cache_root

_FROM = re.compile(r"^\s*FROM\s+(?:--\S+\s+)*(\S+)(?:\s+AS\s+(\S+))?\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class EarlierRelease:
    version: str  # its SemVer, e.g. 0.1.0
    commit: str  # the commit it was cut from

    def tag(self, image: ProjectImage) -> str:
        return f"{image.repository}:{self.version}-{self.commit}"


def base_names(dockerfile: str) -> list[str]:
    """The images a Dockerfile's FROM lines name, stage names excluded, in order."""
    stages: set[str] = set()
    names: list[str] = []
    for line in dockerfile.splitlines():
        match = _FROM.match(line)
        if match is None:
            continue
        name, alias = match.group(1), match.group(2)
        if name.lower() not in stages and name not in names:
            names.append(name)
        if alias:
            stages.add(alias.lower())
    return names


class MissingRelease(RuntimeError):
    """The release's commit is not in the repository (a shallow clone without its origin)."""


def _archive(root: Path, commit: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        ["git", "-C", str(root), "archive", "--format=tar", commit],
        capture_output=True,
        check=False,
    )


def release_sources(root: Path, release: EarlierRelease) -> Path:
    """The release's tree, unpacked from the repository in ``root`` (cached)."""
    target = cache_root() / "releases" / release.commit / "src"
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    archive = _archive(root, release.commit)
    if archive.returncode != 0:
        # A shallow clone lacks the commit: its origin (a clone's source) has it.
        subprocess.run(
            ["git", "-C", str(root), "fetch", "--quiet", "--unshallow", "origin"],
            capture_output=True,
            check=False,
        )
        archive = _archive(root, release.commit)
    if archive.returncode != 0:
        detail = archive.stderr.decode(errors="replace").strip()
        raise MissingRelease(
            f"release {release.version} (commit {release.commit}) is not in this clone's "
            f"history, nor in its origin's: {detail}"
        )
    unpacking = Path(tempfile.mkdtemp(dir=target.parent))
    archive_file = unpacking / "sources.tar"
    archive_file.write_bytes(archive.stdout)
    with tarfile.open(archive_file) as tar:
        tar.extractall(unpacking / "src", filter="data")
    archive_file.unlink()
    (unpacking / "src").rename(target)
    shutil.rmtree(unpacking, ignore_errors=True)
    return target


def ensure_release_images(
    root: Path, release: EarlierRelease, say: Callable[[str], None] = print
) -> dict[str, str]:
    """Each image of ``release`` built from its commit (name -> tag); reused when built
    on the current base."""
    base_id = buildah.image_id(BASE_IMAGE)
    if not base_id:
        raise RuntimeError(f"the base image {BASE_IMAGE} is missing: run `make cluster-build`")
    wanted = f"{release.commit}-{base_id[:12]}"
    tags: dict[str, str] = {}
    with file_lock(cache_root() / "images.lock"):
        sources = release_sources(root, release)
        for image in IMAGES:
            tag = tags[image.name] = release.tag(image)
            info = buildah.inspect_image(tag)
            if info is not None and buildah.image_labels(info).get(SOURCE_LABEL) == wanted:
                say(f"image {tag} is up to date")
                continue
            dockerfile = sources / image.dockerfile
            for name in base_names(dockerfile.read_text()):
                buildah.buildah("tag", BASE_IMAGE, name)
            say(f"building {tag} from release {release.version}'s {image.dockerfile}")
            started = time.monotonic()
            buildah.build_dockerfile(
                sources, tag, dockerfile=dockerfile, labels={SOURCE_LABEL: wanted}
            )
            say(f"built {tag} in {time.monotonic() - started:.0f} s")
    return tags
