"""The pod bridge, a forward guard, and removal of the packet filter rules of a cluster."""

from __future__ import annotations

import shlex
import subprocess

from .settings import ClusterSettings

KUBE_PREFIX = "KUBE-"
KUBE_PROXY_NFT_TABLES = (("ip", "kube-proxy"), ("ip6", "kube-proxy"))


def _run(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=check)


def link_exists(name: str) -> bool:
    return _run("ip", "link", "show", "dev", name, check=False).returncode == 0


def create_bridge(s: ClusterSettings) -> None:
    """Create the bridge with the host address before anything starts.

    The API server and kubelet bind to that address, so it must exist before the
    first pod makes the CNI plugin look for the bridge (it reuses ours).
    """
    n = s.network
    if not link_exists(n.bridge):
        _run("ip", "link", "add", n.bridge, "type", "bridge")
    address = f"{n.host_address}/{n.bridge_prefix}"
    shown = _run("ip", "-o", "-4", "addr", "show", "dev", n.bridge).stdout
    if address not in shown:
        _run("ip", "addr", "add", address, "dev", n.bridge)
    _run("ip", "link", "set", n.bridge, "up")


def delete_bridge(s: ClusterSettings) -> None:
    bridge = s.network.bridge
    if not link_exists(bridge):
        return
    # Host ends of veths whose pod namespace is still around.
    ports = _run("ip", "-o", "link", "show", "master", bridge, check=False).stdout
    for line in ports.splitlines():
        name = line.split(":", 2)[1].strip().split("@", 1)[0]
        _run("ip", "link", "del", name, check=False)
    _run("ip", "link", "del", bridge, check=False)


def guard_ruleset(s: ClusterSettings) -> str:
    """nftables table that drops anything routed between the pod bridge and elsewhere.

    Pods have no default route already; this makes "pods only reach this machine"
    hold even if forwarding is on (the bridge plugin turns ip_forward on).
    """
    bridge = s.network.bridge
    return "\n".join(
        [
            f"table inet {s.nft_guard_table} {{",
            "  chain forward {",
            "    type filter hook forward priority -10; policy accept;",
            f'    iifname "{bridge}" oifname != "{bridge}" drop',
            f'    oifname "{bridge}" iifname != "{bridge}" drop',
            "  }",
            "}",
            "",
        ]
    )


def install_guard(s: ClusterSettings) -> None:
    remove_guard(s)
    subprocess.run(["nft", "-f", "-"], input=guard_ruleset(s), text=True, check=True)


def remove_guard(s: ClusterSettings) -> None:
    _run("nft", "delete", "table", "inet", s.nft_guard_table, check=False)


def kube_chain_cleanup(save_output: str) -> list[list[str]]:
    """iptables arguments that remove every KUBE-* chain and the rules jumping to them.

    Works on `iptables-save` output: first delete the jumps from other chains, then
    flush all KUBE-* chains (they reference each other), then delete them.
    """
    deletes: list[list[str]] = []
    flushes: list[list[str]] = []
    removals: list[list[str]] = []
    table = ""
    for line in save_output.splitlines():
        if line.startswith("*"):
            table = line[1:].strip()
        elif line.startswith(":" + KUBE_PREFIX):
            chain = line[1:].split()[0]
            flushes.append(["-t", table, "-F", chain])
            removals.append(["-t", table, "-X", chain])
        elif line.startswith("-A "):
            words = shlex.split(line)
            chain = words[1]
            target = words[words.index("-j") + 1] if "-j" in words else ""
            if not chain.startswith(KUBE_PREFIX) and target.startswith(KUBE_PREFIX):
                deletes.append(["-t", table, "-D", *words[1:]])
    return deletes + flushes + removals


def remove_kube_rules(kube_proxy: str | None) -> None:
    """Remove what kube-proxy (and a kubelet) added, even after a crash."""
    if kube_proxy:
        # kube-proxy knows its own rules best (nftables, and iptables leftovers).
        subprocess.run(
            [kube_proxy, "--cleanup"],
            capture_output=True,
            timeout=60,
            check=False,
        )
    for family, table in KUBE_PROXY_NFT_TABLES:
        _run("nft", "delete", "table", family, table, check=False)
    for tool in ("iptables", "ip6tables"):
        saved = _run(f"{tool}-save", check=False)
        if saved.returncode != 0:
            continue
        for args in kube_chain_cleanup(saved.stdout):
            _run(tool, "-w", *args, check=False)
