"""Command lines and configuration files of every cluster component.

Pure functions of ClusterSettings: nothing here touches the machine, so every
decision (flags, addresses, paths) is unit-tested in tests/unit/test_cluster_config.py.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .settings import RUNTIME, ClusterSettings

# Controller-manager, scheduler and kube-proxy identities (their client certs'
# CN); each is bound to its role by Kubernetes' default RBAC bindings.
CLIENT_IDENTITIES: dict[str, tuple[str, tuple[str, ...]]] = {
    "admin": ("kubernetes-admin", ("system:masters",)),
    "kube-controller-manager": ("system:kube-controller-manager", ()),
    "kube-scheduler": ("system:kube-scheduler", ()),
    "kube-proxy": ("system:kube-proxy", ()),
    # The API server's identity towards the kubelet (logs, exec, port-forward).
    "apiserver-kubelet-client": ("kube-apiserver-kubelet-client", ("system:masters",)),
}

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"
FRONT_PROXY_CLIENT = "front-proxy-client"


def kubelet_identity(node_name: str) -> tuple[str, tuple[str, ...]]:
    """The Node authorizer and NodeRestriction only accept this exact shape."""
    return f"system:node:{node_name}", ("system:nodes",)


@dataclass(frozen=True)
class Pki:
    """Paths of the generated certificates and keys (see pki.py)."""

    root: Path

    def cert(self, name: str) -> Path:
        return self.root / f"{name}.crt"

    def key(self, name: str) -> Path:
        return self.root / f"{name}.key"

    @property
    def ca(self) -> Path:
        return self.cert("ca")

    @property
    def service_account_key(self) -> Path:
        return self.root / "sa.key"

    @property
    def service_account_public_key(self) -> Path:
        return self.root / "sa.pub"


def pki_of(s: ClusterSettings) -> Pki:
    return Pki(s.layout.pki)


def kubeconfig_path(s: ClusterSettings, identity: str) -> Path:
    if identity == "admin":
        return s.layout.admin_kubeconfig
    return s.layout.config / f"{identity}.kubeconfig"


def apiserver_sans(s: ClusterSettings) -> tuple[list[str], list[str]]:
    """(DNS names, IP addresses) the API server's serving certificate covers."""
    dns = [
        "kubernetes",
        "kubernetes.default",
        "kubernetes.default.svc",
        "kubernetes.default.svc.cluster.local",
        "localhost",
    ]
    ips = [s.network.kubernetes_service_ip, "127.0.0.1", s.network.host_address]
    return dns, ips


def _flags(values: dict[str, str | int | bool]) -> list[str]:
    out = []
    for name, value in values.items():
        text = str(value).lower() if isinstance(value, bool) else str(value)
        out.append(f"--{name}={text}")
    return out


def etcd_command(s: ClusterSettings) -> list[str]:
    n = s.network
    peer = f"http://127.0.0.1:{n.etcd_peer_port}"
    return [
        str(s.binary("etcd")),
        *_flags(
            {
                "name": "sfp",
                "data-dir": str(s.layout.etcd_data),
                # Loopback only: pods reach the bridge address, never etcd.
                "listen-client-urls": n.etcd_url,
                "advertise-client-urls": n.etcd_url,
                "listen-peer-urls": peer,
                "initial-advertise-peer-urls": peer,
                "initial-cluster": f"sfp={peer}",
                "initial-cluster-state": "new",
                # A throwaway test cluster: durability is not worth the fsync latency.
                "unsafe-no-fsync": True,
                "log-level": "warn",
            }
        ),
    ]


def apiserver_command(s: ClusterSettings) -> list[str]:
    n, p = s.network, pki_of(s)
    return [
        str(s.binary("kube-apiserver")),
        *_flags(
            {
                "etcd-servers": n.etcd_url,
                # The bridge address: pods reach it behind the `kubernetes`
                # Service, the host reaches it as a local address.
                "bind-address": n.host_address,
                "advertise-address": n.host_address,
                "secure-port": n.apiserver_port,
                "service-cluster-ip-range": n.service_cidr,
                "tls-cert-file": str(p.cert("apiserver")),
                "tls-private-key-file": str(p.key("apiserver")),
                "client-ca-file": str(p.ca),
                "kubelet-client-certificate": str(p.cert("apiserver-kubelet-client")),
                "kubelet-client-key": str(p.key("apiserver-kubelet-client")),
                "kubelet-certificate-authority": str(p.ca),
                "kubelet-preferred-address-types": "InternalIP",
                "authorization-mode": "Node,RBAC",
                "anonymous-auth": False,
                # Added to the default plugins (which include ServiceAccount,
                # DefaultTolerationSeconds, ...); PodSecurity is what EKS enforces.
                # PodTolerationRestriction lets a namespace give its pods the Fargate
                # node's toleration (annotation scheduler.alpha.kubernetes.io/
                # defaultTolerations): tests mark the namespaces of the Fargate
                # profiles so, as on EKS Fargate, only their pods run here.
                "enable-admission-plugins": "NodeRestriction,PodSecurity,PodTolerationRestriction",
                # Privileged pods must be refused by PodSecurity, not by this switch,
                # so tests can see the admission plugin work.
                "allow-privileged": True,
                # The aggregation layer (front proxy), as on EKS; without it the
                # controller-manager and scheduler complain about a missing CA bundle.
                "requestheader-client-ca-file": str(p.cert("front-proxy-ca")),
                "requestheader-allowed-names": FRONT_PROXY_CLIENT,
                "requestheader-username-headers": "X-Remote-User",
                "requestheader-group-headers": "X-Remote-Group",
                "requestheader-extra-headers-prefix": "X-Remote-Extra-",
                "proxy-client-cert-file": str(p.cert("front-proxy-client")),
                "proxy-client-key-file": str(p.key("front-proxy-client")),
                "service-account-issuer": SERVICE_ACCOUNT_ISSUER,
                "service-account-key-file": str(p.service_account_public_key),
                "service-account-signing-key-file": str(p.service_account_key),
                "profiling": False,
                "v": 1,
            }
        ),
    ]


def controller_manager_command(s: ClusterSettings) -> list[str]:
    p = pki_of(s)
    kubeconfig = str(kubeconfig_path(s, "kube-controller-manager"))
    return [
        str(s.binary("kube-controller-manager")),
        *_flags(
            {
                "kubeconfig": kubeconfig,
                "authentication-kubeconfig": kubeconfig,
                "authorization-kubeconfig": kubeconfig,
                "bind-address": "127.0.0.1",
                "secure-port": s.network.controller_manager_port,
                # Every default controller: job, cronjob, ttl-after-finished,
                # garbage-collector, namespace, serviceaccount(-token), replicaset,
                # deployment, endpoint(slice), nodelifecycle, podgc, ...
                "controllers": "*",
                # Each controller acts as its own ServiceAccount, as on EKS.
                "use-service-account-credentials": True,
                "service-account-private-key-file": str(p.service_account_key),
                "root-ca-file": str(p.ca),
                # Its default is under /usr/libexec; it creates the directory at start.
                "flex-volume-plugin-dir": str(s.layout.kubelet_root / "volume-plugins"),
                "cluster-signing-cert-file": str(p.ca),
                "cluster-signing-key-file": str(p.key("ca")),
                # One instance: leader election would only delay the start.
                "leader-elect": False,
                "profiling": False,
                "v": 1,
            }
        ),
    ]


def scheduler_command(s: ClusterSettings) -> list[str]:
    kubeconfig = str(kubeconfig_path(s, "kube-scheduler"))
    return [
        str(s.binary("kube-scheduler")),
        *_flags(
            {
                "kubeconfig": kubeconfig,
                "authentication-kubeconfig": kubeconfig,
                "authorization-kubeconfig": kubeconfig,
                "bind-address": "127.0.0.1",
                "secure-port": s.network.scheduler_port,
                "leader-elect": False,
                "profiling": False,
                "v": 1,
            }
        ),
    ]


def kubelet_command(s: ClusterSettings) -> list[str]:
    labels = ",".join(f"{k}={v}" for k, v in s.node_labels)
    return [
        str(s.binary("kubelet")),
        *_flags(
            {
                "config": str(s.layout.config / "kubelet.yaml"),
                "kubeconfig": str(kubeconfig_path(s, "kubelet")),
                "root-dir": str(s.layout.kubelet_root),
                "hostname-override": s.node_name,
                "node-ip": s.network.host_address,
                # Labels outside kubernetes.io/k8s.io: NodeRestriction lets the
                # kubelet set them itself, at registration, before any pod lands.
                "node-labels": labels,
                "v": 1,
            }
        ),
    ]


def kube_proxy_command(s: ClusterSettings) -> list[str]:
    return [str(s.binary("kube-proxy")), f"--config={s.layout.config / 'kube-proxy.yaml'}"]


def containerd_command(s: ClusterSettings) -> list[str]:
    # Debian's containerd (1.6): its own root, state and socket, apart from any
    # system containerd.
    return ["containerd", "--config", str(s.layout.config / "containerd.toml")]


def kubelet_config(s: ClusterSettings) -> dict[str, Any]:
    n, p = s.network, pki_of(s)
    return {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "address": n.host_address,
        "port": n.kubelet_port,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": n.kubelet_healthz_port,
        "tlsCertFile": str(p.cert("kubelet-serving")),
        "tlsPrivateKeyFile": str(p.key("kubelet-serving")),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True},
            "x509": {"clientCAFile": str(p.ca)},
        },
        "authorization": {"mode": "Webhook"},
        "containerRuntimeEndpoint": f"unix://{s.layout.containerd_socket}",
        "cgroupDriver": "cgroupfs",
        # These machines run cgroup v1 (hybrid); 1.34 still supports it when asked.
        "failCgroupV1": False,
        "failSwapOn": False,
        "podLogsDir": str(s.layout.pod_logs),
        "volumePluginDir": str(s.layout.kubelet_root / "volume-plugins"),
        # No cluster DNS; an empty resolv.conf keeps pods from querying the
        # host's resolvers (pods may only talk to this machine).
        "resolvConf": "",
        # kube-proxy owns the packet filter rules; the kubelet adds none.
        "makeIPTablesUtilChains": False,
        "registerWithTaints": [
            {"key": k, "value": v, "effect": effect} for k, v, effect in s.node_taints
        ],
        # Locally imported images cannot be pulled again: never garbage-collect
        # them, and only evict pods when the machine is really full.
        "imageGCHighThresholdPercent": 100,
        "imageGCLowThresholdPercent": 99,
        "evictionHard": {
            "memory.available": "100Mi",
            "nodefs.available": "1%",
            "imagefs.available": "1%",
        },
        "serializeImagePulls": False,
        # Lowering an OOM score needs CAP_SYS_RESOURCE, which these machines withhold.
        "oomScoreAdj": 0,
        "nodeStatusReportFrequency": "10s",
        "shutdownGracePeriod": "0s",
    }


def kube_proxy_config(s: ClusterSettings) -> dict[str, Any]:
    n = s.network
    return {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        # Everything in one nftables table ("kube-proxy"), easy to remove.
        "mode": "nftables",
        "clientConnection": {"kubeconfig": str(kubeconfig_path(s, "kube-proxy"))},
        "hostnameOverride": s.node_name,
        "bindAddress": n.host_address,
        "clusterCIDR": n.pod_cidr,
        "metricsBindAddress": f"127.0.0.1:{n.proxy_metrics_port}",
        "healthzBindAddress": f"127.0.0.1:{n.proxy_healthz_port}",
        "nodePortAddresses": [f"{n.host_address}/32"],
        "oomScoreAdj": 0,  # see kubelet_config
        # Zero means "leave the host's conntrack sysctls alone".
        "conntrack": {
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
            "udpTimeout": "0s",
            "udpStreamTimeout": "0s",
        },
    }


def cni_config(s: ClusterSettings) -> dict[str, Any]:
    n = s.network
    return {
        "cniVersion": "1.0.0",
        "name": "sfp-pods",
        "plugins": [
            {
                "type": "bridge",
                "bridge": n.bridge,
                "isGateway": True,
                # No default route and no masquerading: pods reach this machine
                # (the bridge address) and Service IPs, nothing beyond.
                "isDefaultGateway": False,
                "ipMasq": False,
                "hairpinMode": True,
                "ipam": {
                    "type": "host-local",
                    "ranges": [[{"subnet": n.pod_cidr, "gateway": n.host_address}]],
                    "routes": [{"dst": n.service_cidr, "gw": n.host_address}],
                    "dataDir": str(s.layout.cni_ipam_dir),
                },
            }
        ],
    }


def containerd_config(s: ClusterSettings) -> str:
    """containerd 1.6 (config version 2) TOML, rendered by hand: the values are simple."""
    lay = s.layout
    cri = 'plugins."io.containerd.grpc.v1.cri"'
    runc = f"{cri}.containerd.runtimes.runc"
    lines = [
        "version = 2",
        f"root = {json.dumps(str(lay.containerd_root))}",
        f"state = {json.dumps(str(lay.containerd_state))}",
        "",
        "[grpc]",
        f"  address = {json.dumps(str(lay.containerd_socket))}",
        "",
        f"[{cri}]",
        f"  sandbox_image = {json.dumps(s.sandbox_image)}",
        # Network namespaces under our state dir, not /run/netns: teardown finds them.
        "  netns_mounts_under_state_dir = true",
        '  stream_server_address = "127.0.0.1"',
        '  stream_server_port = "0"',
        # These machines withhold CAP_SYS_RESOURCE: nothing may lower its OOM score
        # below containerd's own (the kubelet asks -998 for sandboxes, which runc
        # then fails to set). Clamp instead of failing every pod.
        "  restrict_oom_score_adj = true",
        "  enable_unprivileged_ports = false",
        "",
        f"[{cri}.cni]",
        f"  bin_dir = {json.dumps(str(s.cni_bin_dir))}",
        f"  conf_dir = {json.dumps(str(lay.cni_conf_dir))}",
        "  max_conf_num = 1",
        "",
        f"[{cri}.containerd]",
        '  default_runtime_name = "runc"',
        '  snapshotter = "overlayfs"',
        "",
        f"[{runc}]",
        '  runtime_type = "io.containerd.runc.v2"',
        "",
        f"[{runc}.options]",
        f"  BinaryName = {json.dumps(RUNTIME)}",
        f"  Root = {json.dumps(str(lay.runc_root))}",
        # The kubelet uses the cgroupfs driver; both sides must agree.
        "  SystemdCgroup = false",
        "",
    ]
    return "\n".join(lines)


def kubeconfig(server: str, ca_pem: str, cert_pem: str, key_pem: str, user: str) -> dict[str, Any]:
    """A kubeconfig with its certificates embedded, so it can be copied elsewhere."""

    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode()

    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "sfp-local",
                "cluster": {"server": server, "certificate-authority-data": b64(ca_pem)},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {"client-certificate-data": b64(cert_pem), "client-key-data": b64(key_pem)},
            }
        ],
        "contexts": [{"name": "sfp-local", "context": {"cluster": "sfp-local", "user": user}}],
        "current-context": "sfp-local",
    }


def render_yaml(doc: dict[str, Any]) -> str:
    return yaml.safe_dump(doc, sort_keys=False)


def component_commands(s: ClusterSettings) -> dict[str, list[str]]:
    """Every long-running process, in start order."""
    return {
        "etcd": etcd_command(s),
        "containerd": containerd_command(s),
        "kube-apiserver": apiserver_command(s),
        "kube-controller-manager": controller_manager_command(s),
        "kube-scheduler": scheduler_command(s),
        "kubelet": kubelet_command(s),
        "kube-proxy": kube_proxy_command(s),
    }
