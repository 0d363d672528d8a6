"""Install the Debian packages the image and cluster steps need, once, quietly.

A new machine has none of them. Each step installs what it runs before it runs it: the
image step (buildah and the runtime buildah runs RUN steps with) may come first, alone,
as `make test` does when it builds the images before any cluster starts. A unit test
holds every program the tooling executes against these tables.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable, Iterable

# Debian package: what we use it for. Installed before images are built.
IMAGE_PACKAGES = {
    "buildah": "building images without a daemon",
    # buildah only recommends a runtime (crun | runc); crun fails on cgroup-v1 hybrid hosts.
    "runc": "the OCI runtime buildah runs RUN steps with (buildah.RUNTIME)",
    "debootstrap": "the Debian root filesystem of the base image",
    "ca-certificates": "TLS to Debian's mirror and PyPI during builds",
}
# Installed (with the image packages) before a cluster starts.
CLUSTER_PACKAGES = {
    "containerd": "the container runtime (CRI)",
    "runc": "the OCI runtime containerd runs containers with",
    "containernetworking-plugins": "the CNI bridge and host-local plugins",
    "iptables": "kube-proxy's cleanup of legacy rules",
    "nftables": "kube-proxy's nftables mode and our forward guard",
    "conntrack": "kube-proxy flushes stale UDP conntrack entries with it",
    "iproute2": "the pod bridge",
    "mount": "unmounting leftovers",
}
# Packages every machine of this kind ships (Debian's required and important sets, git,
# ca-certificates): listed above where a step needs them, but never removed by a cold
# rehearsal.
MACHINE_PACKAGES = frozenset(
    {"apt", "ca-certificates", "coreutils", "dpkg", "git", "iproute2", "mount", "tar", "util-linux"}
)
# Installed by earlier versions of the tooling or pulled in as buildah's recommended
# runtime: a cold rehearsal removes them too, so that no step relies on them.
FORMER_PACKAGES = frozenset({"crun", "umoci"})

# Each program the tooling executes by name: the package that provides it.
PROGRAM_PACKAGES = {
    "apt-get": "apt",
    "dpkg-query": "dpkg",
    "chroot": "coreutils",
    "env": "coreutils",
    "tar": "tar",
    "git": "git",
    "buildah": "buildah",
    "runc": "runc",
    "debootstrap": "debootstrap",
    "containerd": "containerd",
    "ctr": "containerd",
    "nft": "nftables",
    "iptables": "iptables",
    "iptables-save": "iptables",
    "ip6tables": "iptables",
    "ip6tables-save": "iptables",
    "conntrack": "conntrack",
    "ip": "iproute2",
    "umount": "mount",
}


def step_packages(step: str) -> frozenset[str]:
    """Packages present once a step ("image" or "cluster") has installed what it needs."""
    if step == "image":
        return MACHINE_PACKAGES | IMAGE_PACKAGES.keys()
    if step == "cluster":
        return MACHINE_PACKAGES | IMAGE_PACKAGES.keys() | CLUSTER_PACKAGES.keys()
    raise ValueError(f"unknown step {step!r}")


def installable(packages: Iterable[str]) -> list[str]:
    """The packages the project installs (and a cold rehearsal removes): not the machine's."""
    return sorted(set(packages) - MACHINE_PACKAGES)


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


def ensure_step(step: str, say: Callable[[str], None] = print) -> None:
    """Install what a step needs that is not there yet."""
    ensure(installable(step_packages(step)), say)
