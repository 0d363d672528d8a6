"""The local cluster's pure decisions: flags, configuration files, PKI, parsers."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.x509.oid import NameOID

from snowflake_devtools.cluster import (
    base_image,
    build,
    buildah,
    config,
    hostdeps,
    hostpaths,
    mounts,
    network,
    pki,
)
from snowflake_devtools.cluster.processes import Proc
from snowflake_devtools.cluster.settings import ClusterSettings, Layout, Network, cache_root
from snowflake_devtools.cluster.state import ClusterState


@pytest.fixture
def settings() -> ClusterSettings:
    # Pure functions only: these paths are never created.
    return ClusterSettings(layout=Layout(Path("/srv/sfp/state")), binaries=Path("/srv/sfp/bin"))


def flag(command: list[str], name: str) -> str:
    prefix = f"--{name}="
    values = [part[len(prefix) :] for part in command if part.startswith(prefix)]
    assert len(values) == 1, f"{name} given {len(values)} times in {command}"
    return values[0]


def test_network_addresses_derive_from_the_cidrs() -> None:
    n = Network(pod_cidr="10.50.0.0/16", service_cidr="10.60.0.0/24")
    assert n.host_address == "10.50.0.1"
    assert n.kubernetes_service_ip == "10.60.0.1"
    assert n.apiserver_url == "https://10.50.0.1:6443"
    assert n.bridge_prefix == 16


def test_default_pod_network_avoids_podmans_default_bridge() -> None:
    podman_default = ipaddress.ip_network("10.88.0.0/16")
    assert not ipaddress.ip_network(Network().pod_cidr).overlaps(podman_default)


def test_cache_root_follows_sfp_cache_dir() -> None:
    assert cache_root({"SFP_CACHE_DIR": "/x/cache", "HOME": "/h"}) == Path("/x/cache")
    assert cache_root({"HOME": "/h"}) == Path("/h/.cache/snowflake-processor")
    assert build.binaries_dir({"HOME": "/h"}).name.startswith("v1.34.")


def test_state_dir_too_long_for_unix_sockets_is_refused() -> None:
    with pytest.raises(ValueError, match="108-byte"):
        Layout(Path("/tmp/" + "x" * 80))


def test_etcd_listens_on_loopback_only(settings: ClusterSettings) -> None:
    command = config.etcd_command(settings)
    assert command[0] == str(settings.binaries / "etcd")
    assert flag(command, "listen-client-urls") == "http://127.0.0.1:2379"
    assert flag(command, "listen-peer-urls").startswith("http://127.0.0.1:")
    assert flag(command, "data-dir").startswith(str(settings.layout.state_dir))


def test_apiserver_flags(settings: ClusterSettings) -> None:
    command = config.apiserver_command(settings)
    host = settings.network.host_address
    assert flag(command, "bind-address") == host
    assert flag(command, "advertise-address") == host
    assert flag(command, "authorization-mode") == "Node,RBAC"
    plugins = flag(command, "enable-admission-plugins").split(",")
    assert {"NodeRestriction", "PodSecurity"} <= set(plugins)
    assert flag(command, "service-cluster-ip-range") == settings.network.service_cidr
    assert flag(command, "service-account-signing-key-file").endswith("sa.key")
    assert flag(command, "service-account-key-file").endswith("sa.pub")
    assert flag(command, "anonymous-auth") == "false"
    assert flag(command, "requestheader-client-ca-file").endswith("front-proxy-ca.crt")
    assert flag(command, "proxy-client-cert-file").endswith("front-proxy-client.crt")
    # Privileged pods must reach PodSecurity to be refused by it.
    assert flag(command, "allow-privileged") == "true"


def test_controller_manager_runs_every_default_controller_with_own_credentials(
    settings: ClusterSettings,
) -> None:
    command = config.controller_manager_command(settings)
    assert flag(command, "controllers") == "*"
    assert flag(command, "use-service-account-credentials") == "true"
    assert flag(command, "service-account-private-key-file").endswith("sa.key")
    assert flag(command, "bind-address") == "127.0.0.1"


def test_kubelet_registers_as_a_fargate_node(settings: ClusterSettings) -> None:
    command = config.kubelet_command(settings)
    assert flag(command, "node-labels") == "eks.amazonaws.com/compute-type=fargate"
    assert flag(command, "node-ip") == settings.network.host_address
    assert flag(command, "hostname-override") == settings.node_name
    cfg = config.kubelet_config(settings)
    assert cfg["registerWithTaints"] == [
        {"key": "eks.amazonaws.com/compute-type", "value": "fargate", "effect": "NoSchedule"}
    ]


def test_kubelet_config(settings: ClusterSettings) -> None:
    cfg = config.kubelet_config(settings)
    assert cfg["cgroupDriver"] == "cgroupfs"
    assert cfg["failCgroupV1"] is False
    assert cfg["authentication"]["anonymous"]["enabled"] is False
    assert cfg["authentication"]["webhook"]["enabled"] is True
    assert cfg["authorization"]["mode"] == "Webhook"
    assert cfg["readOnlyPort"] == 0
    assert cfg["resolvConf"] == ""  # pods never query the host's resolvers
    assert cfg["containerRuntimeEndpoint"] == f"unix://{settings.layout.containerd_socket}"
    for key in ("podLogsDir", "volumePluginDir", "tlsCertFile"):
        assert cfg[key].startswith(str(settings.layout.state_dir)), key
    # Round-trips through YAML as the kubelet reads it.
    assert yaml.safe_load(config.render_yaml(cfg)) == cfg


def test_kube_proxy_uses_nftables_and_leaves_conntrack_sysctls_alone(
    settings: ClusterSettings,
) -> None:
    cfg = config.kube_proxy_config(settings)
    assert cfg["mode"] == "nftables"
    assert cfg["clusterCIDR"] == settings.network.pod_cidr
    assert cfg["nodePortAddresses"] == [f"{settings.network.host_address}/32"]
    assert cfg["conntrack"]["maxPerCore"] == 0
    assert cfg["metricsBindAddress"].startswith("127.0.0.1:")


def test_cni_keeps_pods_on_this_machine(settings: ClusterSettings) -> None:
    (bridge,) = config.cni_config(settings)["plugins"]
    assert bridge["type"] == "bridge"
    assert bridge["ipMasq"] is False
    assert bridge["isDefaultGateway"] is False
    routes = bridge["ipam"]["routes"]
    # Only the Service range is routed (via the bridge); no default route.
    assert routes == [{"dst": settings.network.service_cidr, "gw": settings.network.host_address}]
    assert all(r["dst"] != "0.0.0.0/0" for r in routes)
    assert bridge["ipam"]["dataDir"].startswith(str(settings.layout.state_dir))


def test_containerd_config_keeps_everything_under_the_state_dir(
    settings: ClusterSettings,
) -> None:
    text = config.containerd_config(settings)
    state = str(settings.layout.state_dir)
    assert f'root = "{state}/containerd/root"' in text
    assert f'state = "{state}/containerd/state"' in text
    assert f'address = "{settings.layout.containerd_socket}"' in text
    assert f'sandbox_image = "{settings.sandbox_image}"' in text
    assert "netns_mounts_under_state_dir = true" in text
    assert "SystemdCgroup = false" in text
    assert "restrict_oom_score_adj = true" in text  # no CAP_SYS_RESOURCE here
    assert f'Root = "{settings.layout.runc_root}"' in text


def test_component_start_order(settings: ClusterSettings) -> None:
    names = list(config.component_commands(settings))
    assert names.index("etcd") < names.index("kube-apiserver") < names.index("kubelet")
    assert names.index("containerd") < names.index("kubelet")


def test_kubeconfig_embeds_credentials() -> None:
    doc = config.kubeconfig("https://10.0.0.1:6443", "CA", "CERT", "KEY", "someone")
    assert doc["clusters"][0]["cluster"]["server"] == "https://10.0.0.1:6443"
    assert doc["users"][0]["user"]["client-key-data"] == "S0VZ"
    assert doc["current-context"] == "sfp-local"


def test_pki_identities_and_sans(settings: ClusterSettings) -> None:
    pairs = pki.issue_all(settings, pki.Authority.create())

    def load(stem: str) -> x509.Certificate:
        return x509.load_pem_x509_certificate(pairs[stem].cert_pem.encode())

    server = load("apiserver")
    sans = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    ips = {str(ip) for ip in sans.get_values_for_type(x509.IPAddress)}
    assert {"10.96.0.1", "127.0.0.1", settings.network.host_address} <= ips
    assert "kubernetes.default.svc" in sans.get_values_for_type(x509.DNSName)

    def subject(stem: str) -> tuple[str, list[str]]:
        name = load(stem).subject
        cn = name.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
        orgs = [a.value for a in name.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
        return str(cn), [str(o) for o in orgs]

    assert subject("kubelet") == (f"system:node:{settings.node_name}", ["system:nodes"])
    assert subject("admin") == ("kubernetes-admin", ["system:masters"])
    assert subject("kube-controller-manager") == ("system:kube-controller-manager", [])
    assert subject("kube-scheduler") == ("system:kube-scheduler", [])
    assert subject("kube-proxy") == ("system:kube-proxy", [])
    ca, front_proxy = load("ca"), load("front-proxy-ca")
    assert load("front-proxy-client").issuer == front_proxy.subject
    for stem in pairs:
        if not stem.startswith("front-proxy"):
            assert load(stem).issuer == ca.subject


def test_kube_chain_cleanup_removes_jumps_then_chains() -> None:
    saved = "\n".join(
        [
            "*filter",
            ":INPUT ACCEPT [0:0]",
            ":KUBE-FIREWALL - [0:0]",
            ":KUBE-SERVICES - [0:0]",
            '-A INPUT -m comment --comment "kube firewall" -j KUBE-FIREWALL',
            "-A INPUT -j ACCEPT",
            "-A KUBE-SERVICES -j KUBE-FIREWALL",
            "COMMIT",
            "*nat",
            ":OUTPUT ACCEPT [0:0]",
            "COMMIT",
        ]
    )
    commands = network.kube_chain_cleanup(saved)
    assert commands[0] == [
        "-t",
        "filter",
        "-D",
        "INPUT",
        "-m",
        "comment",
        "--comment",
        "kube firewall",
        "-j",
        "KUBE-FIREWALL",
    ]
    assert ["-t", "filter", "-F", "KUBE-SERVICES"] in commands
    assert commands[-1] == ["-t", "filter", "-X", "KUBE-SERVICES"]
    assert len(commands) == 5  # one jump, two flushes, two deletions


def test_guard_ruleset_names_our_bridge(settings: ClusterSettings) -> None:
    text = network.guard_ruleset(settings)
    assert f"table inet {settings.nft_guard_table}" in text
    assert 'iifname "sfpbr0" oifname != "sfpbr0" drop' in text


def test_mounts_under_lists_deepest_first_and_unescapes() -> None:
    info = "\n".join(
        [
            "22 1 0:21 / /proc rw - proc proc rw",
            "30 22 0:40 / /s/kubelet/pods/a/volumes rw - tmpfs tmpfs rw",
            "31 30 0:41 / /s/kubelet/pods/a/volumes/with\\040space rw - tmpfs tmpfs rw",
            "32 1 0:42 / /s rw - tmpfs tmpfs rw",
            "33 1 0:43 / /state-other rw - tmpfs tmpfs rw",
        ]
    )
    assert mounts.mounts_under(Path("/s"), info) == [
        "/s/kubelet/pods/a/volumes/with space",
        "/s/kubelet/pods/a/volumes",
        "/s",
    ]


def test_debian_mirror_from_deb822_and_one_line_sources() -> None:
    deb822 = (
        "Types: deb\n# http://snapshot.debian.org/x\nURIs: http://mirror.example/debian\n"
        "Suites: bookworm bookworm-updates\nComponents: main\n\n"
        "Types: deb\nURIs: http://security.example/debian-security\nSuites: bookworm-security\n"
    )
    assert base_image.debian_mirror(deb822) == "http://mirror.example/debian"
    one_line = "deb [arch=amd64] http://m.example/debian bookworm main\n"
    assert base_image.debian_mirror(one_line) == "http://m.example/debian"
    assert base_image.debian_mirror("") == "http://deb.debian.org/debian"


def test_recipe_hash_is_stable_and_short() -> None:
    assert base_image.recipe_hash() == base_image.recipe_hash()
    assert len(base_image.recipe_hash()) == 16


def test_bud_command_mounts_the_ca_bundle_and_never_pulls(tmp_path: Path) -> None:
    command = buildah.bud_command(
        tmp_path, tmp_path / "Dockerfile", "img:dev", {"BASE_IMAGE": "b:1"}, Path("/ca.pem")
    )
    assert "--pull=never" in command
    assert command[command.index("--runtime") + 1] == "/usr/sbin/runc"
    assert command[command.index("-v") + 1] == "/ca.pem:/etc/ssl/certs/ca-certificates.crt:ro"
    assert command[command.index("--build-arg") + 1] == "BASE_IMAGE=b:1"
    assert command[command.index("--network") + 1] == "host"
    assert command[-1] == str(tmp_path)


def test_host_ca_bundle_prefers_pips_own(tmp_path: Path) -> None:
    bundle = tmp_path / "ca.pem"
    bundle.write_text("x")
    assert buildah.host_ca_bundle({"PIP_CERT": str(bundle)}) == bundle
    assert buildah.host_ca_bundle({"PIP_CERT": "/missing"}) == buildah.DEFAULT_CA_BUNDLE


def test_build_commands_are_static_and_stripped(tmp_path: Path) -> None:
    kube, pause = build.build_commands(Path("/go/bin/go"), tmp_path)
    assert kube[:2] == ["/go/bin/go", "build"]
    ldflags = kube[kube.index("-ldflags") + 1]
    assert "-trimpath" in kube and ldflags.startswith("-s -w ")
    # Stamped like upstream builds: Helm checks the chart's kubeVersion against it.
    assert "-X k8s.io/component-base/version.gitVersion=v1.34." in ldflags
    assert "-X k8s.io/client-go/pkg/version.gitMinor=34" in ldflags
    assert pause[-1] == "./pause"


def test_build_stamp_must_match_sources(tmp_path: Path) -> None:
    for name in ("kube", "pause", "etcd", "kube-apiserver", "kube-controller-manager"):
        (tmp_path / name).write_text("")
    for name in ("kube-scheduler", "kubelet", "kube-proxy"):
        (tmp_path / name).write_text("")
    assert build.is_current(tmp_path, {"source_hash": "abc"}, "abc")
    assert not build.is_current(tmp_path, {"source_hash": "old"}, "abc")
    assert not build.is_current(tmp_path, None, "abc")
    (tmp_path / "kubelet").unlink()
    assert not build.is_current(tmp_path, {"source_hash": "abc"}, "abc")


def test_source_hash_covers_the_go_sources() -> None:
    assert len(build.source_hash()) == 64


def test_state_round_trips(settings: ClusterSettings) -> None:
    state = ClusterState(
        settings=settings,
        procs={"etcd": Proc("etcd", 42, 7, "/l/etcd.log")},
        sysctls={"kernel/panic": "1"},
        created_host_dirs=["/var/lib/cni"],
    )
    again = ClusterState.from_json(json.loads(json.dumps(state.to_json())))
    assert again.settings.layout == settings.layout
    assert again.settings.network == settings.network
    assert again.procs == state.procs
    assert again.sysctls == {"kernel/panic": "1"}
    assert again.created_host_dirs == ["/var/lib/cni"]


def test_cni_cache_entries_of_our_network_and_their_loopbacks_only() -> None:
    names = [
        "sfp-pods-abc123-eth0",
        "cni-loopback-abc123-lo",
        "cni-loopback-other9-lo",
        "podman-def456-eth0",
    ]
    assert hostpaths.cni_cache_entries(names, "sfp-pods") == [
        "sfp-pods-abc123-eth0",
        "cni-loopback-abc123-lo",
    ]


def test_controller_manager_keeps_flex_volume_dir_in_state(settings: ClusterSettings) -> None:
    command = config.controller_manager_command(settings)
    assert flag(command, "flex-volume-plugin-dir").startswith(str(settings.layout.state_dir))


def test_hostdeps_reports_only_missing_packages() -> None:
    assert hostdeps.missing(["dpkg", "sfp-no-such-package"]) == ["sfp-no-such-package"]


def test_image_archives_are_keyed_by_name_and_id() -> None:
    prefix, first = buildah.archive_name("localhost/a:1", "f" * 64)
    same_prefix, rebuilt = buildah.archive_name("localhost/a:1", "e" * 64)
    other_prefix, _ = buildah.archive_name("localhost/b:1", "f" * 64)
    assert prefix == same_prefix and first != rebuilt
    assert first.startswith(prefix + "-") and other_prefix != prefix
