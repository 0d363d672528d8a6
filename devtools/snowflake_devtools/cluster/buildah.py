"""Build images with buildah (no daemon, no registry) and hand them to the cluster's containerd."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .locking import file_lock
from .settings import BASE_IMAGE, RUNTIME, cache_root

DEFAULT_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def storage_args(environ: Mapping[str, str] | None = None) -> list[str]:
    """Global buildah flags: the storage driver, if one is forced ($SFP_BUILDAH_STORAGE_DRIVER).

    By default buildah's own (overlay here): then `buildah bud` without our flags sees
    the images too.
    """
    env = os.environ if environ is None else environ
    driver = env.get("SFP_BUILDAH_STORAGE_DRIVER", "")
    return ["--storage-driver", driver] if driver else []


def buildah(*args: str, capture: bool = True) -> str:
    result = subprocess.run(
        ["buildah", *storage_args(), *args],
        capture_output=capture,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        detail = (result.stderr or "").strip()[-2000:] if capture else ""
        raise RuntimeError(f"buildah {' '.join(args[:2])} failed: {detail}")
    return result.stdout if capture else ""


def inspect_image(name: str) -> dict[str, Any] | None:
    try:
        data = json.loads(buildah("inspect", "--type", "image", name))
    except RuntimeError:
        return None
    return data if isinstance(data, dict) else None


def image_labels(info: Mapping[str, Any]) -> dict[str, str]:
    config = info.get("OCIv1", {}).get("config", {}) or {}
    labels = config.get("Labels") or {}
    return {str(k): str(v) for k, v in labels.items()}


def image_id(name: str) -> str | None:
    info = inspect_image(name)
    return None if info is None else str(info.get("FromImageID") or "")


def host_ca_bundle(environ: Mapping[str, str] | None = None) -> Path:
    """The CA bundle this machine's pip trusts (a proxy's CA may be in it)."""
    env = os.environ if environ is None else environ
    for var in ("PIP_CERT", "REQUESTS_CA_BUNDLE", "SSL_CERT_FILE"):
        value = env.get(var)
        if value and Path(value).is_file():
            return Path(value)
    return DEFAULT_CA_BUNDLE


def bud_command(
    context: Path,
    dockerfile: Path,
    tag: str,
    build_args: Mapping[str, str],
    ca_bundle: Path,
    labels: Mapping[str, str] | None = None,
) -> list[str]:
    args = [
        "bud",
        "--runtime",
        RUNTIME,
        "--pull=never",  # no registry: FROM must name a local image
        "--format",
        "docker",
        # RUN steps use this machine's network as the host's pip does: no bridge, no NAT.
        "--network",
        "host",
        # pip inside the build trusts what the host trusts; mounted at build time only.
        "-v",
        f"{ca_bundle}:/etc/ssl/certs/ca-certificates.crt:ro",
        "-f",
        str(dockerfile),
        "-t",
        tag,
    ]
    for key, value in build_args.items():
        args += ["--build-arg", f"{key}={value}"]
    for key, value in (labels or {}).items():
        args += ["--label", f"{key}={value}"]
    return ["buildah", *storage_args(), *args, str(context)]


def build_dockerfile(
    context: Path,
    tag: str,
    *,
    dockerfile: Path | None = None,
    build_args: Mapping[str, str] | None = None,
    labels: Mapping[str, str] | None = None,
) -> None:
    """`buildah bud` a Dockerfile into buildah's storage as `tag` (BASE_IMAGE: the local base)."""
    from . import hostdeps

    hostdeps.ensure_step("image")
    args = {"BASE_IMAGE": BASE_IMAGE, **(build_args or {})}
    command = bud_command(
        context, dockerfile or context / "Dockerfile", tag, args, host_ca_bundle(), labels
    )
    had_cni_dir = CNI_ETC.exists()
    try:
        subprocess.run(command, check=True)
    finally:
        if not had_cni_dir:
            _remove_cni_lock_dir()


# `buildah bud` sets up its CNI backend even with --network host, leaving an empty
# /etc/cni/net.d with a lock file; remove it again when it was not there before.
CNI_ETC = Path("/etc/cni")


def _remove_cni_lock_dir() -> None:
    net_d = CNI_ETC / "net.d"
    if net_d.is_dir() and [p.name for p in net_d.iterdir()] in ([], ["cni.lock"]):
        (net_d / "cni.lock").unlink(missing_ok=True)
        net_d.rmdir()
    if CNI_ETC.is_dir() and not any(CNI_ETC.iterdir()):
        CNI_ETC.rmdir()


def archive_name(name: str, ident: str) -> tuple[str, str]:
    """(prefix for this image name, file name for this name at this image id).

    The archive carries the name it was pushed under, so it is keyed by name as well
    as by id; a rebuilt image replaces the older archive of the same name.
    """
    prefix = hashlib.sha256(name.encode()).hexdigest()[:12]
    return prefix, f"{prefix}-{ident[:12]}.tar"


def archive_for(name: str) -> Path:
    """A docker-archive of the image, cached (pushing a 200 MB image takes seconds)."""
    ident = image_id(name)
    if not ident:
        raise RuntimeError(f"image {name} is not in buildah's storage")
    directory = cache_root() / "image-archives"
    prefix, file_name = archive_name(name, ident)
    target = directory / file_name
    with file_lock(directory / ".lock"):
        if not target.is_file():
            partial = target.with_suffix(".partial")
            partial.unlink(missing_ok=True)
            buildah("push", name, f"docker-archive:{partial}:{name}")
            partial.rename(target)
        for old in directory.glob(f"{prefix}-*.tar"):
            if old != target:
                old.unlink()
    return target
