"""Versions, addresses and the on-disk layout of the local test cluster (pure data)."""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from pathlib import Path

# Must match the Terraform default EKS version (terraform/eks/variables.tf).
KUBERNETES_VERSION = "v1.34.12"
# Its tag's commit and date (from the Go module proxy's .info), stamped into the
# binaries: without them they report v0.0.0-master, and Helm's kubeVersion checks fail.
KUBERNETES_COMMIT = "26c89157669bdc7e3657302bc1abde758507095b"
KUBERNETES_BUILD_DATE = "2026-09-23T17:08:30Z"
# The etcd version k8s.io/kubernetes v1.34.x requires in its go.mod.
ETCD_VERSION = "v3.6.4"

# The Debian bookworm base with Python 3.11 the Dockerfiles build on here (base_image.py).
BASE_IMAGE = "localhost/snowflake-processor-base:bookworm-py3.11"

# The OCI runtime buildah and containerd run containers with (Debian's runc). buildah's
# default (crun) fails on these cgroup-v1 hybrid hosts.
RUNTIME = "/usr/sbin/runc"

# The multi-call binary's components; each gets a symlink named after it.
COMPONENTS = (
    "etcd",
    "kube-apiserver",
    "kube-controller-manager",
    "kube-scheduler",
    "kubelet",
    "kube-proxy",
)

# Unix socket paths are limited to 108 bytes; the kubelet's deepest socket is
# <state>/kubelet/plugins_registry/<driver>.sock, so keep the state dir short.
MAX_STATE_DIR_LENGTH = 64


def cache_root(environ: dict[str, str] | None = None) -> Path:
    """${SFP_CACHE_DIR:-$HOME/.cache/snowflake-processor}: outside any clone."""
    env = os.environ if environ is None else environ
    if env.get("SFP_CACHE_DIR"):
        return Path(env["SFP_CACHE_DIR"])
    return Path(env.get("HOME", "/root")) / ".cache" / "snowflake-processor"


@dataclass(frozen=True)
class Network:
    """Addresses of the cluster. Pods only reach this machine, through the bridge."""

    bridge: str = "sfpbr0"
    # Not podman's/buildah's default 10.88.0.0/16: a `buildah bud` without
    # --network host creates that bridge, and it must not clash with ours.
    pod_cidr: str = "10.244.0.0/16"
    service_cidr: str = "10.96.0.0/24"
    apiserver_port: int = 6443
    # Below the ephemeral port range (32768+) that port-0 servers of other test
    # suites draw from, so these fixed ports do not collide with them.
    etcd_client_port: int = 2379
    etcd_peer_port: int = 2380
    controller_manager_port: int = 10257
    scheduler_port: int = 10259
    kubelet_port: int = 10250
    kubelet_healthz_port: int = 10248
    proxy_metrics_port: int = 10249
    proxy_healthz_port: int = 10256

    @property
    def host_address(self) -> str:
        """The bridge's address: pods reach this machine (and the API server) here."""
        return str(next(ipaddress.ip_network(self.pod_cidr).hosts()))

    @property
    def bridge_prefix(self) -> int:
        return ipaddress.ip_network(self.pod_cidr).prefixlen

    @property
    def kubernetes_service_ip(self) -> str:
        """The `kubernetes` Service's ClusterIP: the first address of the service range."""
        return str(next(ipaddress.ip_network(self.service_cidr).hosts()))

    @property
    def apiserver_url(self) -> str:
        return f"https://{self.host_address}:{self.apiserver_port}"

    @property
    def etcd_url(self) -> str:
        return f"http://127.0.0.1:{self.etcd_client_port}"


@dataclass(frozen=True)
class Layout:
    """Where every file of one cluster lives: all of it under state_dir."""

    state_dir: Path

    def __post_init__(self) -> None:
        if len(str(self.state_dir)) > MAX_STATE_DIR_LENGTH:
            raise ValueError(
                f"state dir {self.state_dir} is longer than {MAX_STATE_DIR_LENGTH} characters:"
                " unix socket paths under it would exceed the kernel's 108-byte limit"
            )

    @property
    def state_file(self) -> Path:
        return self.state_dir / "cluster.json"

    @property
    def pki(self) -> Path:
        return self.state_dir / "pki"

    @property
    def config(self) -> Path:
        return self.state_dir / "config"

    @property
    def logs(self) -> Path:
        return self.state_dir / "logs"

    @property
    def admin_kubeconfig(self) -> Path:
        return self.state_dir / "admin.kubeconfig"

    @property
    def etcd_data(self) -> Path:
        return self.state_dir / "etcd"

    @property
    def containerd_root(self) -> Path:
        return self.state_dir / "containerd" / "root"

    @property
    def containerd_state(self) -> Path:
        return self.state_dir / "containerd" / "state"

    @property
    def containerd_socket(self) -> Path:
        return self.state_dir / "containerd" / "containerd.sock"

    @property
    def runc_root(self) -> Path:
        return self.state_dir / "containerd" / "runc"

    @property
    def kubelet_root(self) -> Path:
        return self.state_dir / "kubelet"

    @property
    def pod_logs(self) -> Path:
        return self.state_dir / "pod-logs"

    @property
    def cni_conf_dir(self) -> Path:
        return self.state_dir / "cni" / "net.d"

    @property
    def cni_ipam_dir(self) -> Path:
        return self.state_dir / "cni" / "ipam"


@dataclass(frozen=True)
class ClusterSettings:
    """Everything that decides how the cluster's components are configured."""

    layout: Layout
    binaries: Path  # directory holding the component symlinks
    network: Network = field(default_factory=Network)
    node_name: str = "fargate-sfp-local"
    cni_bin_dir: Path = Path("/usr/lib/cni")
    sandbox_image: str = "localhost/snowflake-processor-pause:1"
    # Marks this node like an EKS Fargate node, so pods must opt in as they do there.
    node_labels: tuple[tuple[str, str], ...] = (("eks.amazonaws.com/compute-type", "fargate"),)
    node_taints: tuple[tuple[str, str, str], ...] = (
        ("eks.amazonaws.com/compute-type", "fargate", "NoSchedule"),
    )

    def binary(self, component: str) -> Path:
        return self.binaries / component

    @property
    def nft_guard_table(self) -> str:
        """Our own nftables table (inet family) that keeps pods' traffic on this machine."""
        return f"sfp_guard_{self.network.bridge}"
