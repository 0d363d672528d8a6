"""The project's own images (worker/Dockerfile, operator/Dockerfile) built on the local base.

Both Dockerfiles are built exactly as written, with `--build-arg BASE_IMAGE=` the local
Debian bookworm base (no registry is reachable here). Each image carries a label with
the hash of its sources and of the base image's id; an image whose label matches is
reused, so only a change to the code, a Dockerfile or the base rebuilds it.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from . import buildah
from .locking import file_lock
from .settings import BASE_IMAGE, cache_root

SOURCE_LABEL = "org.snowflake-processor.sources"
TAG = "e2e"
# Never part of an image (mirrors .dockerignore).
IGNORED_PARTS = {"__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache", "build", "dist"}
IGNORED_SUFFIXES = (".pyc", ".pyo", ".egg-info")


@dataclass(frozen=True)
class ProjectImage:
    """One Dockerfile of the repository and the paths its build context copies."""

    name: str
    dockerfile: str
    sources: tuple[str, ...]

    @property
    def tag(self) -> str:
        return f"localhost/snowflake-processor-{self.name}:{TAG}"


# requirements/ (pinned versions, when the repository has it) is copied by both.
WORKER = ProjectImage("worker", "worker/Dockerfile", ("requirements", "worker"))
OPERATOR = ProjectImage(
    "operator",
    "operator/Dockerfile",
    ("pyproject.toml", "README.md", "requirements", "sql", "worker", "operator"),
)
IMAGES = (WORKER, OPERATOR)


def _files(root: Path, relative: str) -> Iterable[Path]:
    path = root / relative
    candidates = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for candidate in candidates:
        parts = candidate.relative_to(root).parts
        if IGNORED_PARTS.intersection(parts) or any(
            part.endswith(IGNORED_SUFFIXES) for part in parts
        ):
            continue
        yield candidate


def source_hash(root: Path, image: ProjectImage, base_id: str) -> str:
    """Hash of what the build reads: the Dockerfile, the copied sources and the base."""
    digest = hashlib.sha256(base_id.encode())
    for relative in (image.dockerfile, *image.sources):
        for path in _files(root, relative):
            digest.update(str(path.relative_to(root)).encode() + b"\0")
            digest.update(path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def ensure_project_images(
    root: Path, say: Callable[[str], None] = print, images: Iterable[ProjectImage] = IMAGES
) -> float:
    """Build each image unless an up-to-date one exists; returns the seconds spent building."""
    base_id = buildah.image_id(BASE_IMAGE)
    if not base_id:
        raise RuntimeError(f"the base image {BASE_IMAGE} is missing: run `make cluster-build`")
    spent = 0.0
    with file_lock(cache_root() / "images.lock"):
        for image in images:
            wanted = source_hash(root, image, base_id)
            info = buildah.inspect_image(image.tag)
            if info is not None and buildah.image_labels(info).get(SOURCE_LABEL) == wanted:
                say(f"image {image.tag} is up to date (sources {wanted})")
                continue
            say(f"building {image.tag} from {image.dockerfile} on {BASE_IMAGE}")
            started = time.monotonic()
            buildah.build_dockerfile(
                root,
                image.tag,
                dockerfile=root / image.dockerfile,
                labels={SOURCE_LABEL: wanted},
            )
            took = time.monotonic() - started
            spent += took
            say(f"built {image.tag} in {took:.0f} s")
    return spent
