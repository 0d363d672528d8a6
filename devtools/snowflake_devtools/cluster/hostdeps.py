"""Install the Debian packages the cluster needs, once, quietly (CI machines start without)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable

# Debian package: what we use it for.
CLUSTER_PACKAGES = {
    "containerd": "the container runtime (CRI)",
    "runc": "the OCI runtime containerd and buildah run containers with",
    "containernetworking-plugins": "the CNI bridge and host-local plugins",
    "iptables": "kube-proxy's cleanup of legacy rules",
    "nftables": "kube-proxy's nftables mode and our forward guard",
    "conntrack": "kube-proxy flushes stale UDP conntrack entries with it",
    "iproute2": "the pod bridge",
    "mount": "unmounting leftovers",
}
IMAGE_PACKAGES = {
    "buildah": "building images without a daemon",
    "debootstrap": "the Debian root filesystem of the base image",
    "ca-certificates": "TLS to Debian's mirror and PyPI during builds",
}


def missing(packages: Iterable[str]) -> list[str]:
    """Packages dpkg does not report as installed."""
    absent = []
    for name in packages:
        result = subprocess.run(
            ["dpkg-query", "-W", "-f=${Status}", name],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0 or "install ok installed" not in result.stdout:
            absent.append(name)
    return absent


def ensure(packages: Iterable[str], say: Callable[[str], None] = print) -> None:
    """apt-get install whatever is missing (root only); a no-op when all are there."""
    needed = missing(packages)
    if not needed:
        return
    if os.geteuid() != 0:
        raise RuntimeError(f"missing Debian packages {needed}; install them as root")
    say(f"installing Debian packages: {' '.join(needed)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    quiet = ["-qq", "-o", "Dpkg::Use-Pty=0"]
    subprocess.run(["apt-get", *quiet, "update"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(
        ["apt-get", *quiet, "install", "-y", "--no-install-recommends", *needed],
        check=True,
        env=env,
        stdout=subprocess.DEVNULL,
    )
