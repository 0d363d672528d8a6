"""Start and stop the single-node cluster; the API test fixtures use.

cluster = Cluster.start(state_dir)      # or Cluster.start() for the default dir
cluster.kubeconfig, cluster.host_address, cluster.logs_dir
cluster.stop()
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

from . import (
    base_image,
    build,
    buildah,
    config,
    containerd_images,
    hostdeps,
    hostpaths,
    kubeapi,
    network,
    pki,
    processes,
    sysctls,
    teardown,
)
from .settings import BASE_IMAGE, ClusterSettings, Layout, Network, cache_root
from .state import ClusterState, load

Say = Callable[[str], None]


class ClusterError(RuntimeError):
    """A start-up step failed; `component` names whose log tells why."""

    def __init__(self, message: str, component: str | None = None, log_tail: str = "") -> None:
        super().__init__(message)
        self.component = component
        self.log_tail = log_tail


def default_state_dir() -> Path:
    return cache_root() / "cluster"


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _port_free(host: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            # The bridge address does not exist before we create it: nobody listens there.
            return error.errno == errno.EADDRNOTAVAIL
    return True


def _check_ports(n: Network) -> None:
    """Fail early and clearly when another program holds one of our fixed ports."""
    wanted = [
        ("127.0.0.1", n.etcd_client_port),
        ("127.0.0.1", n.etcd_peer_port),
        ("127.0.0.1", n.controller_manager_port),
        ("127.0.0.1", n.scheduler_port),
        ("127.0.0.1", n.kubelet_healthz_port),
        ("127.0.0.1", n.proxy_metrics_port),
        ("127.0.0.1", n.proxy_healthz_port),
        (n.host_address, n.apiserver_port),
        (n.host_address, n.kubelet_port),
    ]
    busy = [f"{h}:{p}" for h, p in wanted if not _port_free(h, p)]
    if busy:
        raise ClusterError(f"ports already in use by another program: {', '.join(busy)}")


class Cluster:
    def __init__(self, state: ClusterState) -> None:
        self.state = state

    # What tests need -----------------------------------------------------------------
    @property
    def settings(self) -> ClusterSettings:
        return self.state.settings

    @property
    def state_dir(self) -> Path:
        return self.settings.layout.state_dir

    @property
    def kubeconfig(self) -> Path:
        return self.settings.layout.admin_kubeconfig

    @property
    def host_address(self) -> str:
        """The bridge address: where pods reach servers on this machine."""
        return self.settings.network.host_address

    @property
    def logs_dir(self) -> Path:
        return self.settings.layout.logs

    @property
    def node_name(self) -> str:
        return self.settings.node_name

    def api(self) -> kubeapi.KubeApi:
        p = config.pki_of(self.settings)
        return kubeapi.KubeApi(
            self.settings.network.apiserver_url, p.ca, p.cert("admin"), p.key("admin")
        )

    def dead_component(self) -> str | None:
        return next((n for n, p in self.state.procs.items() if not p.alive()), None)

    def dump_logs(self, lines: int = 40) -> str:
        """The last lines of every component's log, for a failed test's report."""
        parts = []
        for log in sorted(self.logs_dir.glob("*.log")):
            parts.append(f"===== {log.name} (last {lines} lines) =====\n{log_tail(log, lines)}")
        return "\n".join(parts)

    def import_images(self, names: Sequence[str]) -> None:
        """Hand images from buildah's storage to the cluster (skipped when already there)."""
        layout = self.settings.layout
        containerd_images.import_into_containerd(
            names, layout.containerd_socket, record=layout.containerd_root / "sfp-imported.json"
        )

    def build_image(self, context: Path, tag: str, dockerfile: Path | None = None) -> None:
        """Build a Dockerfile on the local base image and make it available to pods."""
        buildah.build_dockerfile(context, tag, dockerfile=dockerfile)
        self.import_images([tag])

    def restart(
        self, name: str, sig: signal.Signals, down_seconds: float = 0.0, timeout: float = 120.0
    ) -> None:
        """Stop one component with ``sig``, keep it down ``down_seconds``, start it again with
        the same command and wait until it answers (what a crash and a service manager's
        restart do). Only its own process is signalled, as systemd's KillMode=process does
        for containerd: what it started (the shims holding the containers) keeps running."""
        proc = self.state.procs[name]
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        kubeapi.wait_for(f"{name} to exit", lambda: not processes.running(proc), timeout)
        time.sleep(down_seconds)
        self._spawn(name, config.component_commands(self.settings)[name])
        answers = self._answers(name)
        kubeapi.wait_for(f"{name} to answer again", answers, timeout, alive=self.dead_component)

    def _answers(self, name: str) -> Callable[[], bool]:
        s = self.settings
        checks: dict[str, Callable[[], bool]] = {
            "etcd": lambda: _etcd_healthy(s),
            "kube-apiserver": lambda: _ok(self.api(), "/readyz"),
            "containerd": lambda: _containerd_up(s),
            "kubelet": lambda: _kubelet_healthy(s),
        }
        return checks.get(name, lambda: self.state.procs[name].alive())

    def stop(self, say: Say = print) -> list[str]:
        problems = teardown.teardown(self.state, say)
        self.state.procs.clear()
        self.state.ready = False
        self.state.save()
        return problems

    # Life cycle ----------------------------------------------------------------------
    @classmethod
    def attach(cls, state_dir: Path | None = None) -> Cluster | None:
        """The cluster already running in state_dir, if it is up and all alive."""
        state = load(Layout(state_dir or default_state_dir()))
        if state is None or not state.ready or not state.procs:
            return None
        cluster = cls(state)
        return None if cluster.dead_component() else cluster

    @classmethod
    def start(
        cls,
        state_dir: Path | None = None,
        *,
        images: Sequence[str] = (),
        say: Say = print,
        timeout: float = 180.0,
    ) -> Cluster:
        """Build what is missing, clean up leftovers, start everything, wait until usable."""
        if os.geteuid() != 0:
            raise ClusterError("the cluster needs root (network, mounts, cgroups)")
        started = time.monotonic()
        layout = Layout((state_dir or default_state_dir()).absolute())
        hostdeps.ensure_step("cluster", say)
        binaries = build.ensure_binaries(say=say)
        pause = base_image.ensure_pause_image(binaries.pause, say)
        for image in images:
            if image == BASE_IMAGE:
                base_image.ensure_base_image(say)
        settings = ClusterSettings(layout=layout, binaries=binaries.directory, sandbox_image=pause)
        clean_up_leftovers(layout, say)
        _check_ports(settings.network)
        state = ClusterState(settings=settings)
        state.sysctls = sysctls.snapshot()
        state.created_host_dirs = hostpaths.missing_now()
        _reset_state_dir(layout)
        state.save()  # from here on, a crash leaves enough behind to be undone
        cluster = cls(state)
        try:
            cluster._boot(list(images), say, timeout)
        except BaseException as error:
            failed = error.component if isinstance(error, ClusterError) else None
            failed = failed or cluster.dead_component()
            tail = log_tail(layout.logs / f"{failed}.log") if failed else ""
            say("start failed; cleaning up")
            cluster.stop(say=lambda _m: None)
            if isinstance(error, ClusterError):
                error.component, error.log_tail = failed, tail
                raise
            if isinstance(error, Exception):
                raise ClusterError(str(error), failed, tail) from error
            raise
        state.timings["start_seconds"] = round(time.monotonic() - started, 1)
        state.ready = True
        state.save()
        say(f"cluster ready in {state.timings['start_seconds']:.0f} s")
        return cluster

    def _spawn(self, name: str, command: list[str]) -> None:
        log = self.logs_dir / f"{name}.log"
        self.state.procs[name] = processes.spawn(name, command, log)
        self.state.save()

    def _wait(self, what: str, component: str, check: Callable[[], bool], timeout: float) -> None:
        began = time.monotonic()
        try:
            kubeapi.wait_for(what, check, timeout, alive=self.dead_component)
        except (TimeoutError, RuntimeError) as error:
            dead = self.dead_component()
            raise ClusterError(str(error), dead or component) from error
        self.state.timings[what] = round(time.monotonic() - began, 1)

    def _boot(self, images: list[str], say: Say, timeout: float) -> None:
        s = self.settings
        commands = config.component_commands(s)
        say(f"state dir {s.layout.state_dir}")
        network.create_bridge(s)
        network.install_guard(s)
        write_files(s)
        api = self.api()

        # containerd and the image import do not need the API server: they overlap
        # with its start-up, the slowest step.
        say("starting etcd, containerd")
        self._spawn("etcd", commands["etcd"])
        self._spawn("containerd", commands["containerd"])
        self._wait("etcd", "etcd", lambda: _etcd_healthy(s), 60)

        say("starting kube-apiserver")
        self._spawn("kube-apiserver", commands["kube-apiserver"])
        self._wait("containerd", "containerd", lambda: _containerd_up(s), 60)
        say(f"importing images into containerd: {', '.join([s.sandbox_image, *images])}")
        began = time.monotonic()
        self.import_images([s.sandbox_image, *images])
        self.state.timings["image import"] = round(time.monotonic() - began, 1)
        self._wait("kube-apiserver /readyz", "kube-apiserver", lambda: _ok(api, "/readyz"), 90)

        say("starting kube-controller-manager, kube-scheduler")
        for name in ("kube-controller-manager", "kube-scheduler"):
            self._spawn(name, commands[name])

        say("starting kubelet, kube-proxy")
        self._spawn("kubelet", commands["kubelet"])
        self._spawn("kube-proxy", commands["kube-proxy"])
        node = f"/api/v1/nodes/{s.node_name}"
        self._wait("node Ready", "kubelet", lambda: kubeapi.node_ready(api.get(node)), timeout)
        self._wait("kube-proxy healthz", "kube-proxy", lambda: _proxy_healthy(s), 60)
        self._wait(
            "default ServiceAccount",
            "kube-controller-manager",
            lambda: bool(api.get("/api/v1/namespaces/default/serviceaccounts/default")),
            60,
        )
        self._wait(
            "kube-root-ca.crt ConfigMap",
            "kube-controller-manager",
            lambda: bool(api.get("/api/v1/namespaces/default/configmaps/kube-root-ca.crt")),
            60,
        )
        _check_node_marks(s, api.get(node))


def write_files(s: ClusterSettings) -> None:
    """PKI, kubeconfigs and every component's configuration file."""
    pairs = pki.write_pki(s)
    ca_pem = pairs["ca"].cert_pem
    identities = {**config.CLIENT_IDENTITIES, "kubelet": config.kubelet_identity(s.node_name)}
    for name, (user, _groups) in identities.items():
        if name == "apiserver-kubelet-client":
            continue
        doc = config.kubeconfig(
            s.network.apiserver_url, ca_pem, pairs[name].cert_pem, pairs[name].key_pem, user
        )
        path = config.kubeconfig_path(s, name)
        path.write_text(config.render_yaml(doc))
        path.chmod(0o600)
    (s.layout.config / "kubelet.yaml").write_text(config.render_yaml(config.kubelet_config(s)))
    (s.layout.config / "kube-proxy.yaml").write_text(
        config.render_yaml(config.kube_proxy_config(s))
    )
    (s.layout.config / "containerd.toml").write_text(config.containerd_config(s))
    (s.layout.cni_conf_dir / "10-sfp-pods.conflist").write_text(
        json.dumps(config.cni_config(s), indent=2)
    )


def _reset_state_dir(layout: Layout) -> None:
    """A fresh cluster every time: tests then never see a previous run's objects.

    Only containerd's root survives: it holds the imported images (importing and
    unpacking the 200 MB base image again, and deleting it, costs tens of seconds).
    Its containers were removed through CRI at teardown; after a crash the kubelet
    removes the stale ones.
    """
    keep = layout.containerd_root
    if layout.state_dir.exists():
        for entry in [*layout.state_dir.iterdir(), *keep.parent.glob("*")]:
            if entry in (keep, keep.parent):
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink(missing_ok=True)
    for directory in (
        layout.pki,
        layout.config,
        layout.logs,
        layout.cni_conf_dir,
        layout.cni_ipam_dir,
        layout.kubelet_root,
        layout.pod_logs,
        layout.containerd_root,
        layout.containerd_state,
    ):
        directory.mkdir(parents=True, exist_ok=True)
    layout.state_dir.chmod(0o755)  # keys inside are 0600


def clean_up_leftovers(layout: Layout, say: Say = print) -> list[str]:
    """Undo a previous cluster in this state dir (crashed or never stopped)."""
    previous = load(layout)
    if previous is None:
        if not layout.state_dir.exists():
            return []
        # No record: still sweep processes, mounts and rules by their known places.
        binaries = build.binaries_dir()
        previous = ClusterState(ClusterSettings(layout=layout, binaries=binaries))
    if previous.procs or previous.ready:
        say("stopping the previous cluster of this state dir")
    problems = teardown.teardown(previous, say)
    if layout.state_file.exists():
        previous.procs.clear()
        previous.ready = False
        previous.save()  # keeps the logs and timings; nothing is left to stop
    return problems


def stop_cluster(state_dir: Path | None = None, say: Say = print) -> list[str]:
    layout = Layout((state_dir or default_state_dir()).absolute())
    return clean_up_leftovers(layout, say)


def _ok(api: kubeapi.KubeApi, path: str) -> bool:
    return api.text(path).strip() == "ok"


def _etcd_healthy(s: ClusterSettings) -> bool:
    with urllib.request.urlopen(f"{s.network.etcd_url}/health", timeout=5) as response:  # noqa: S310
        return bool(json.loads(response.read()).get("health") == "true")


def _proxy_healthy(s: ClusterSettings) -> bool:
    url = f"http://127.0.0.1:{s.network.proxy_healthz_port}/healthz"
    with urllib.request.urlopen(url, timeout=5) as response:
        return bool(response.status == 200)


def _kubelet_healthy(s: ClusterSettings) -> bool:
    url = f"http://127.0.0.1:{s.network.kubelet_healthz_port}/healthz"
    with urllib.request.urlopen(url, timeout=5) as response:
        return bool(response.status == 200)


def _containerd_up(s: ClusterSettings) -> bool:
    if not s.layout.containerd_socket.exists():
        return False
    done = subprocess.run(
        ["ctr", "--address", str(s.layout.containerd_socket), "version"],
        capture_output=True,
        check=False,
        timeout=10,
    )
    return done.returncode == 0


def _check_node_marks(s: ClusterSettings, node: dict[str, object]) -> None:
    """The node must look like an EKS Fargate node, or tests would prove nothing."""
    metadata = node.get("metadata", {})
    spec = node.get("spec", {})
    assert isinstance(metadata, dict) and isinstance(spec, dict)
    labels = metadata.get("labels", {}) or {}
    taints = {(t["key"], t.get("value", ""), t["effect"]) for t in spec.get("taints", []) or []}
    for key, value in s.node_labels:
        if labels.get(key) != value:
            raise ClusterError(f"node lacks label {key}={value}", "kubelet")
    for taint in s.node_taints:
        if taint not in taints:
            raise ClusterError(f"node lacks taint {taint}", "kubelet")
