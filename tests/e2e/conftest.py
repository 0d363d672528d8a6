"""A real single-node Kubernetes cluster for end-to-end tests (see docs/cluster.md).

`real_cluster` reuses a cluster started by `make cluster-up` (same state dir) and
leaves it running; otherwise it starts one (building the binaries on the first run,
about 20 minutes cold) and stops it when the session ends. It needs root. When the
cluster cannot start, every test using it fails with the reason and the failing
component's log: never a silent skip.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from snowflake_devtools.cluster import Cluster, ClusterError
from snowflake_devtools.cluster.cluster import default_state_dir
from snowflake_devtools.cluster.locking import file_lock
from snowflake_devtools.cluster.settings import BASE_IMAGE, cache_root
from snowflake_devtools.cluster.sharing import ClusterLease
from snowflake_devtools.e2e_report import REPORT_ENV
from tests.e2e import figures, monitoring, release
from tests.e2e.commands import Commands
from tests.e2e.host_services import HostServices, host_services
from tests.e2e.monitoring import Watching
from tests.e2e.release import Release

STATE_DIR_ENV = "SFP_CLUSTER_STATE_DIR"
# Why release 0.1.0 could not be built (a clone without its commit), said by its test.
EARLIER_RELEASE_MISSING: list[str] = []
ROOT = Path(__file__).resolve().parents[2]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "e2e: needs the real local Kubernetes cluster (root)")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/e2e/" in item.nodeid:
            item.add_marker(pytest.mark.e2e)

    # The upgrade test installs release 0.1.0 with its own CRD (deleting the one there):
    # it runs before any test that uses this release's install. The chaos test breaks
    # the cluster on purpose (restarts, a drain, the operator's replicas killed): it runs
    # after every test that checks the install as it was made.
    def order(item: pytest.Item) -> int:
        if "earlier_release_images" in getattr(item, "fixturenames", ()):
            return 0
        return 2 if "test_chaos_on_cluster" in item.nodeid else 1

    items.sort(key=order)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the binaries and images before any test runs: a cold build takes 10-30
    minutes, far beyond the per-test timeout that would otherwise include it."""
    if session.config.option.collectonly or os.geteuid() != 0:
        return
    used = {name for item in session.items for name in getattr(item, "fixturenames", ())}
    if "real_cluster" not in used:
        return
    from snowflake_devtools.cluster import base_image, build, project_images

    def say(message: str) -> None:
        print(f"[cluster] {message}", flush=True)

    began = time.monotonic()
    binaries = build.ensure_binaries(say=say)
    # How long the build that made the cached binaries took (cold, or a relink).
    figures.record(binaries_built_in_seconds=binaries.build_seconds)
    images_began = time.monotonic()
    # `make cold-check` reads these lines as the phases of a run.
    print(f"[phase] kubernetes binaries: {images_began - began:.1f} s", flush=True)
    if Cluster.attach(_state_dir()) is None:
        base_image.ensure_pause_image(binaries.pause, say)
    base_image.ensure_base_image(say)
    if used & {"operator_release", "project_images", "earlier_release_images"}:
        project_images.ensure_project_images(ROOT, say)
    if "earlier_release_images" in used:
        from snowflake_devtools.cluster.release_images import MissingRelease, ensure_release_images
        from tests.e2e.upgrade import RELEASE_0_1_0

        try:
            ensure_release_images(ROOT, RELEASE_0_1_0, say)
        except MissingRelease as missing:  # the fixture reports it on the test
            EARLIER_RELEASE_MISSING.append(str(missing))
    if "operator_release" in used or "prometheus" in used:
        from snowflake_devtools.cluster.prometheus import ensure_prometheus_tool

        ensure_prometheus_tool("prometheus", say)
    print(f"[phase] images: {time.monotonic() - images_began:.1f} s", flush=True)
    figures.record(build_seconds=round(time.monotonic() - began, 1))


def pytest_deselected(items: list[pytest.Item]) -> None:
    """A test left out by -k, -m or --deselect is a part `make e2e` did not run (said only
    when there is a report to write: a selection in a run of every suite is no news)."""
    if not os.environ.get(REPORT_ENV):
        return
    for item in items:
        if "tests/e2e/" in item.nodeid:
            figures.not_run(item.nodeid, figures.DESELECTED)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    """A skipped test (a skip marker, or pytest.skip() in a fixture or the test) did not
    run: its reason goes into the JSON line's not_run. An expected failure ran."""
    if report.skipped and not hasattr(report, "wasxfail") and "tests/e2e/" in report.nodeid:
        figures.record_skipped(report.nodeid, report.longrepr)


def pytest_sessionfinish(session: pytest.Session) -> None:
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    stats = getattr(reporter, "stats", {}) if reporter is not None else {}
    outcomes = {
        key: len(stats.get(key, []))
        for key in ("passed", "failed", "error", "skipped", "xfailed", "xpassed")
    }
    figures.write_report(outcomes)


def _state_dir() -> Path:
    value = os.environ.get(STATE_DIR_ENV)
    return Path(value) if value else default_state_dir()


@pytest.fixture(scope="session")
def real_cluster() -> Iterator[Cluster]:
    if os.geteuid() != 0:
        pytest.fail("the real cluster needs root (bridge, mounts, cgroups); run as root")
    state_dir = _state_dir()
    lease = ClusterLease(state_dir)
    began = time.monotonic()

    def start() -> Cluster:
        try:
            return Cluster.start(state_dir, images=[BASE_IMAGE], say=lambda m: print(f"\n{m}"))
        except ClusterError as error:
            tail = f"\n--- {error.component}.log ---\n{error.log_tail}" if error.log_tail else ""
            pytest.fail(f"the local cluster did not start: {error}{tail}")

    cluster, started = lease.acquire(start)
    if started:
        print(f"\ncluster started in {time.monotonic() - began:.0f} s")
    else:
        print(f"\nreusing the cluster running in {state_dir}")
        cluster.import_images([BASE_IMAGE])  # cheap if present; picks up a rebuilt base
    yield cluster
    problems = lease.release(lambda: cluster.stop(say=lambda _m: None))
    assert not problems, f"cluster teardown left things behind: {problems}"


@pytest.fixture(scope="session")
def api_client(real_cluster: Cluster) -> Any:
    from kubernetes import config as kube_config

    new_client: Any = kube_config.new_client_from_config
    return new_client(config_file=str(real_cluster.kubeconfig))


@pytest.fixture
def new_namespace(api_client: Any) -> Iterator[Callable[..., str]]:
    """Create fresh namespaces (deleted after the test), usable once their default
    ServiceAccount exists (the ServiceAccount admission refuses pods before)."""
    from kubernetes import client

    from tests.e2e.helpers import wait_until

    core: Any = client.CoreV1Api(api_client)
    created: list[str] = []

    def create(labels: dict[str, str] | None = None) -> str:
        name = f"e2e-{uuid.uuid4().hex[:8]}"
        core.create_namespace({"metadata": {"name": name, "labels": labels or {}}})
        created.append(name)

        def has_default_sa() -> bool:
            accounts = core.list_namespaced_service_account(name).items
            return any(sa.metadata.name == "default" for sa in accounts)

        wait_until(has_default_sa, 60, f"the default ServiceAccount of {name}")
        return name

    yield create
    for name in created:
        core.delete_namespace(name)


@pytest.fixture
def namespace(new_namespace: Callable[..., str]) -> str:
    return new_namespace()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    """On a failed e2e test, attach the tail of every component's log to the report."""
    report = yield
    if (
        report.failed
        and call.when == "call"
        and "real_cluster" in getattr(item, "fixturenames", ())
    ):
        cluster = Cluster.attach(_state_dir())
        if cluster is not None:
            report.sections.append(("cluster logs", cluster.dump_logs(lines=30)))
            report.sections.append(("operator and worker logs", _project_logs(cluster)))
    return report


def _project_logs(cluster: Cluster) -> str:
    """The last lines of every pod of the release's two namespaces, if they exist."""
    commands = Commands(cluster.kubeconfig)
    parts = []
    for namespace in release.terraform_namespaces():
        result = commands.run(
            "kubectl", "logs", "-n", namespace, "-l", "app.kubernetes.io/name=snowflake-processor",
            "--tail=30", "--prefix", "--all-containers", check=False,
        )  # fmt: skip
        parts.append(f"--- {namespace} ---\n{result.stdout}{result.stderr}")
    return "\n".join(parts)


# --- the project on the cluster ----------------------------------------------------------


@pytest.fixture(scope="session")
def kube_version(api_client: Any) -> str:
    from kubernetes import client

    version: str = client.VersionApi(api_client).get_code().git_version
    figures.record(kubernetes=version)
    return version


@pytest.fixture(scope="session")
def commands(real_cluster: Cluster) -> Commands:
    return Commands(real_cluster.kubeconfig)


@pytest.fixture(scope="session")
def project_images(real_cluster: Cluster) -> tuple[str, ...]:
    """The worker and operator images (built before the session) in containerd."""
    from snowflake_devtools.cluster.project_images import current_tags

    tags = tuple(current_tags(ROOT).values())
    real_cluster.import_images(list(tags))
    return tags


@pytest.fixture(scope="session")
def earlier_release_images(real_cluster: Cluster) -> dict[str, str]:
    """Release 0.1.0's worker and operator images (built before the session from its
    commit, release_images.py) in containerd."""
    from tests.e2e.upgrade import earlier_tags

    if EARLIER_RELEASE_MISSING:
        pytest.skip(f"the upgrade from an earlier release cannot run: {EARLIER_RELEASE_MISSING[0]}")
    tags = earlier_tags()
    real_cluster.import_images(list(tags.values()))
    return tags


@pytest.fixture(scope="session")
def services(
    real_cluster: Cluster, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HostServices]:
    """Snowflake emulator, S3 emulator and mTLS service on the bridge address."""
    with host_services(real_cluster.host_address, tmp_path_factory.mktemp("host")) as running:
        yield running


@pytest.fixture(scope="session")
def installed_release(
    commands: Commands,
    services: HostServices,
    project_images: tuple[str, ...],
    kube_version: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Release, Path]]:
    """`helm install` of the chart, operator running; uninstalled at the end. The release
    and its namespaces are fixed (the Terraform's), so test sessions sharing the cluster
    take turns: the lock is held until this session's release is gone. With the values
    file it was installed from."""
    values = tmp_path_factory.mktemp("helm") / "values.json"
    with file_lock(cache_root() / "release.lock"):
        try:
            installed = release.install(commands, services, values)
        except AssertionError:
            figures.record(helm="failed")
            raise
        try:
            yield installed, values
        finally:
            release.uninstall(commands, installed.namespace, installed.jobs_namespace)


@pytest.fixture(scope="session")
def prometheus(
    real_cluster: Cluster,
    commands: Commands,
    installed_release: tuple[Release, Path],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Watching]:
    """A real Prometheus scraping the release from its install on (every test that uses the
    release starts it), with the chart's rules: what it saw goes into `prometheus` of
    `make e2e`'s JSON line at the end of the session."""
    installed, values = installed_release
    began = time.monotonic()
    workdir = tmp_path_factory.mktemp("prometheus")
    with monitoring.prometheus_for(real_cluster, commands, installed, values, workdir) as (
        server,
        rendered,
    ):
        watching = Watching(server, rendered)
        try:
            yield watching
        finally:
            watching.record(time.monotonic() - began)


@pytest.fixture(scope="session")
def operator_release(installed_release: tuple[Release, Path], prometheus: Watching) -> Release:
    """The installed release, watched by Prometheus from the first test that uses it."""
    return installed_release[0]
