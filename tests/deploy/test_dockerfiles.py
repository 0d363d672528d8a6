"""The container images: hadolint, checkov, and the rules their Dockerfiles must keep.

No image is built here (there may be no Docker engine); the Dockerfiles are checked
statically: both linters report nothing, the final stage runs as the numeric user the Job
expects, carries only the venv, the worker image installs only the worker distribution, base
images are pinned, and the build context leaves out what the images do not need.

hadolint and checkov come from PATH or .tools/bin (``make tools``, which ``make test``
runs); a missing tool fails the test rather than skipping it.
"""

from __future__ import annotations

import fnmatch
import importlib.metadata
import importlib.util
import json
import re
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from packaging.requirements import Requirement

from snowflake_operator.constants import WORKER_UID
from snowflake_operator.kube.job_manifest import build_job
from snowflake_operator.kube.processor_ref import ProcessorRef
from snowflake_operator.spec.model import ProcessorSpec
from snowflake_operator.spec.operator_settings import OperatorSettings
from tests.support.deploy_tools import checkov_report as shared_checkov_report
from tests.support.deploy_tools import passed_checks, tool

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = {
    "worker": ROOT / "worker" / "Dockerfile",
    "operator": ROOT / "operator" / "Dockerfile",
}
IMAGES = sorted(DOCKERFILES)
DOCKERIGNORE = ROOT / ".dockerignore"
VENV = "/opt/venv"
USER = f"{WORKER_UID}:{WORKER_UID}"
# The wheels each image installs: the worker image holds no operator code.
WHEELS = {
    "worker": {"snowflake_processor_worker"},
    "operator": {"snowflake_processor", "snowflake_processor_worker"},
}
ENTRYPOINTS = {"worker": ["snowflake-processor-worker"], "operator": ["snowflake-processor"]}
CMDS: dict[str, list[str]] = {
    "worker": [],
    "operator": ["operator"],
}
# The production base: python:3.11.14-slim-bookworm's multi-architecture index, as the
# registry published it (docs/images.md says how to look it up for a new tag).
BASE_DIGEST = "sha256:65a93d69fa75478d554f4ad27c85c1e69fa184956261b4301ebaf6dbb0a3543d"
# An exact patch tag (python:3.11.14-slim-bookworm), optionally with a digest.
PINNED_IMAGE = re.compile(r"^[a-z0-9./-]+:\d+\.\d+\.\d+(?:-[a-z0-9.-]+)?(?:@sha256:[0-9a-f]{64})?$")
BUILD_TOOLS = re.compile(
    r"\b(build-essential|gcc|g\+\+|clang|make|cmake|cargo|rustc|python3?-dev|libc6-dev"
    r"|[a-z0-9.+-]+-dev)\b"
)


# -- a small Dockerfile parser ---------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    line: int  # 1-based line of the instruction's keyword
    keyword: str  # upper case
    args: str  # continuation lines joined, comments inside them removed


def parse(path: Path) -> list[Instruction]:
    instructions: list[Instruction] = []
    pending: list[str] = []
    start = 0
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            continue  # blank lines and comments (also inside a continued instruction)
        if not pending:
            start = number
        continued = stripped.endswith("\\")
        pending.append(stripped[:-1].strip() if continued else stripped)
        if not continued:
            keyword, _, args = " ".join(pending).partition(" ")
            instructions.append(Instruction(start, keyword.upper(), args.strip()))
            pending = []
    assert not pending, f"{path}: the last instruction ends with a line continuation"
    return instructions


def stages(instructions: list[Instruction]) -> list[list[Instruction]]:
    """The build stages, each starting with its FROM (global ARGs before it are left out)."""
    found: list[list[Instruction]] = []
    for instruction in instructions:
        if instruction.keyword == "FROM":
            found.append([])
        if not found and instruction.keyword == "ARG":
            continue  # a global build argument, usable in FROM lines
        assert found, f"line {instruction.line}: {instruction.keyword} before the first FROM"
        found[-1].append(instruction)
    return found


def global_args(instructions: list[Instruction]) -> dict[str, str | None]:
    """ARGs declared before the first FROM, with their defaults."""
    found: dict[str, str | None] = {}
    for instruction in instructions:
        if instruction.keyword == "FROM":
            break
        if instruction.keyword == "ARG":
            name, sep, default = instruction.args.partition("=")
            found[name.strip()] = default.strip() if sep else None
    return found


def of(stage: list[Instruction], keyword: str) -> list[Instruction]:
    return [i for i in stage if i.keyword == keyword]


def exec_form(instruction: Instruction) -> list[str]:
    value = json.loads(instruction.args)
    assert isinstance(value, list), f"line {instruction.line}: not in exec (JSON) form"
    return [str(v) for v in value]


def env_of(stage: list[Instruction]) -> dict[str, str]:
    """ENV key=value pairs (values unquoted; no spaces inside values here)."""
    env: dict[str, str] = {}
    for instruction in of(stage, "ENV"):
        for pair in instruction.args.split():
            key, sep, value = pair.partition("=")
            assert sep, f"line {instruction.line}: use ENV key=value"
            env[key] = value.strip('"')
    return env


def labels_of(stage: list[Instruction]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for instruction in of(stage, "LABEL"):
        for key, value in re.findall(r'([\w.-]+)="([^"]*)"', instruction.args):
            labels[key] = value
    return labels


def pip_installs(stage: list[Instruction]) -> list[str]:
    """Each ``pip install ...`` command in the stage's RUN instructions."""
    commands: list[str] = []
    for instruction in of(stage, "RUN"):
        for command in re.split(r"&&|;|\|\|", instruction.args):
            if re.search(r"\bpip3?\s+install\b", command):
                commands.append(command.strip())
    return commands


PARSED = {image: parse(path) for image, path in DOCKERFILES.items()}


def final(image: str) -> list[Instruction]:
    return stages(PARSED[image])[-1]


def builder(image: str) -> list[Instruction]:
    found = stages(PARSED[image])
    assert len(found) >= 2, f"{image}: a multi-stage build (builder, then the final stage)"
    return found[0]


# -- the linters -----------------------------------------------------------------------


@pytest.mark.parametrize("image", IMAGES)
def test_hadolint_reports_nothing(image: str) -> None:
    result = subprocess.run(
        [tool("hadolint"), "--no-color", str(DOCKERFILES[image])],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    findings = (result.stdout + result.stderr).strip()
    assert result.returncode == 0, findings
    assert findings == "", findings


def checkov_report(path: Path) -> dict[str, Any]:
    return shared_checkov_report("dockerfile", "-f", str(path))


@pytest.mark.parametrize("image", IMAGES)
def test_checkov_dockerfile_checks_pass(image: str) -> None:
    report = checkov_report(DOCKERFILES[image])
    passed = passed_checks(report)
    assert report["summary"]["parsing_errors"] == 0
    # The ones this file is about: a non-root USER, a HEALTHCHECK, and a non-latest tag,
    # which checkov cannot see through FROM ${BASE_IMAGE} (skipped in the file with its
    # reason; test_base_image_is_one_build_argument_pinned_to_an_exact_version checks it).
    assert {"CKV_DOCKER_3", "CKV_DOCKER_8", "CKV_DOCKER_2"} <= passed
    skipped = {c["check_id"] for c in report["results"]["skipped_checks"]}
    assert skipped == {"CKV_DOCKER_7"}, skipped


@pytest.mark.parametrize("image", IMAGES)
def test_every_skip_is_made_in_the_dockerfile_with_a_reason(image: str) -> None:
    """A deliberate exception to a linter is a comment where it is made, saying why."""
    lines = DOCKERFILES[image].read_text().splitlines()
    for index, line in enumerate(lines):
        stripped = line.strip()
        skip = re.search(r"checkov:skip=([A-Z0-9_]+)(?::(.*))?", stripped)
        if skip:
            assert (skip.group(2) or "").strip(), f"line {index + 1}: checkov skip without reason"
        if re.match(r"#\s*hadolint\s+ignore=", stripped):
            before = lines[index - 1].strip() if index else ""
            assert before.startswith("#") and "hadolint" not in before, (
                f"line {index + 1}: say why on the comment line above the hadolint ignore"
            )
    # No repository-wide configuration that switches rules off out of sight.
    for name in (".hadolint.yaml", ".hadolint.yml"):
        config = ROOT / name
        assert not config.exists() or "ignored" not in config.read_text(), config
    for name in (".checkov.yaml", ".checkov.yml"):
        config = ROOT / name
        assert not config.exists() or "skip-check" not in config.read_text(), config


# -- the final stage ---------------------------------------------------------------------


@pytest.mark.parametrize("image", IMAGES)
def test_final_stage_runs_as_the_numeric_non_root_user(image: str) -> None:
    users = of(final(image), "USER")
    assert users, f"{image}: the final stage sets no USER"
    assert users[-1].args == USER, f"{image}: USER {users[-1].args}, expected {USER}"
    uid, gid = users[-1].args.split(":")
    assert uid.isdigit() and gid.isdigit() and int(uid) != 0 and int(gid) != 0
    # The passwd entry exists with the same ids (getpass.getuser() and friends need it).
    runs = " ".join(i.args for i in of(final(image), "RUN"))
    assert re.search(rf"useradd\b.*--uid {WORKER_UID}\b.*--gid {WORKER_UID}\b", runs), runs


@pytest.mark.parametrize("image", IMAGES)
def test_final_stage_carries_only_the_venv(image: str) -> None:
    stage = final(image)
    assert not of(stage, "ADD")
    copies = of(stage, "COPY")
    assert [c.args for c in copies] == [f"--from=builder {VENV} {VENV}"], copies
    assert not pip_installs(stage), f"{image}: installs belong in the builder stage"
    for run in of(stage, "RUN"):
        where = f"{image} line {run.line}: build tools in the final stage"
        assert "build-essential" not in run.args and not re.search(r"\bgcc\b", run.args), where
        if re.search(r"\bapt(-get)?\s+install\b", run.args):
            assert not BUILD_TOOLS.search(run.args), where


@pytest.mark.parametrize("image", IMAGES)
def test_final_stage_environment_and_command(image: str) -> None:
    stage = final(image)
    env = env_of(stage)
    assert env["PATH"].startswith(f"{VENV}/bin:"), env["PATH"]
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["HOME"] == "/tmp"  # the only writable place: an emptyDir, read-only root
    entrypoints = of(stage, "ENTRYPOINT")
    cmds = of(stage, "CMD")
    assert entrypoints
    assert exec_form(entrypoints[-1]) == ENTRYPOINTS[image]
    assert (exec_form(cmds[-1]) if cmds else []) == CMDS[image]
    healthchecks = of(stage, "HEALTHCHECK")
    assert [h.args for h in healthchecks] == ["NONE"], "Kubernetes probes live in the chart"


@pytest.mark.parametrize("image", IMAGES)
def test_oci_labels(image: str) -> None:
    labels = labels_of(final(image))
    for key in ("source", "description", "licenses"):
        assert labels.get(f"org.opencontainers.image.{key}"), key
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"  # as pyproject.toml


def test_operator_exposes_its_probe_and_metrics_ports() -> None:
    exposed = {p for i in of(final("operator"), "EXPOSE") for p in i.args.split()}
    assert not of(final("worker"), "EXPOSE")
    # The ports the operator listens on by default (its settings) are the exposed ones.
    defaults = OperatorSettings.model_fields
    assert exposed == {str(defaults["health_port"].default), str(defaults["metrics_port"].default)}


def test_worker_image_runs_what_the_job_asks_for() -> None:
    """The operator's Job sets the command and the user; the image must agree."""
    spec = ProcessorSpec.model_validate(
        {
            "snowflake": {"account": "acme", "database": "D", "schema": "S", "table": "T"},
            "endpoint": {"url": "https://api.example.com/process"},
            "certificates": {"s3": {"bucket": "certs", "prefix": "p/"}},
        }
    )
    job = build_job(
        "p-1",
        ProcessorRef("p", "ns", "uid"),
        spec,
        image="worker:0.1.0",
        certificates_secret="p-certificates",
        launched_at=datetime.now(UTC),
    )
    pod = job["spec"]["template"]["spec"]
    assert pod["containers"][0]["command"] == ENTRYPOINTS["worker"] + CMDS["worker"]
    assert pod["securityContext"]["runAsUser"] == WORKER_UID
    assert pod["securityContext"]["runAsGroup"] == WORKER_UID
    assert pod["containers"][0]["securityContext"]["readOnlyRootFilesystem"] is True


# -- the builder stage and the base images ---------------------------------------------------


@pytest.mark.parametrize("image", IMAGES)
def test_builder_installs_only_its_wheels_without_a_cache(image: str) -> None:
    installs = pip_installs(builder(image))
    assert installs, f"{image}: the builder installs nothing"
    wheels: set[str] = set()
    for command in installs:
        assert "--no-cache-dir" in command, command
        assert not re.search(r"\s-e\s|--editable", command), command
        assert "[" not in command, f"{image}: no extras: {command}"
        wheels |= set(re.findall(r"/wheels/([a-z_]+)-\*\.whl", command))
    assert wheels == WHEELS[image], f"{image}: wheels {wheels}"
    text = " ".join(i.args for i in PARSED[image] if i.keyword == "RUN")
    assert VENV in text
    assert "devtools" not in text
    if image == "worker":
        copies = " ".join(i.args for i in of(builder(image), "COPY"))
        assert "operator" not in copies and "operator" not in text


@pytest.mark.parametrize("image", IMAGES)
def test_base_image_is_one_build_argument_pinned_to_an_exact_version(image: str) -> None:
    """One ARG names the base of both stages, so it can be overridden (or pinned by digest)
    in one place, and the two stages cannot drift apart: the venv's interpreter is a
    symlink into the base."""
    found = stages(PARSED[image])
    arguments = global_args(PARSED[image])
    aliases: set[str] = set()
    bases: set[str] = set()
    for stage in found:
        words = [w for w in stage[0].args.split() if not w.startswith("--")]
        reference = words[0]
        if len(words) == 3 and words[1].upper() == "AS":
            aliases.add(words[2].lower())
        if reference.lower() in aliases:
            continue  # FROM an earlier stage
        bases.add(reference)
    assert bases == {"${BASE_IMAGE}"}, f"{image}: every stage FROM ${{BASE_IMAGE}}, not {bases}"
    default = arguments.get("BASE_IMAGE")
    assert default is not None, f"{image}: ARG BASE_IMAGE=<image> before the first FROM"
    # The tag says what it is; the digest (of the multi-architecture index) makes a rebuild
    # of one commit start from the same bytes, since the official tags are rebuilt.
    assert default == f"python:3.11.14-slim-bookworm@{BASE_DIGEST}", default
    assert PINNED_IMAGE.match(default), default


# -- pinned dependencies, and nothing assumed of the base's pip ---------------------------

CONSTRAINTS = ROOT / "requirements" / "constraints.txt"
LOCK_SCRIPT = ROOT / "scripts" / "lock_requirements.py"
OWN_DISTRIBUTIONS = {
    "snowflake-processor",
    "snowflake-processor-worker",
    "snowflake-processor-devtools",
}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def constraints() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in CONSTRAINTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        name, sep, version = line.partition("==")
        assert sep and version, f"{CONSTRAINTS.name}: not an exact pin: {line!r}"
        pins[canonical(name)] = version.strip()
    return pins


# The hashed lock files (scripts/lock_requirements.py writes them with constraints.txt).
HASHED_FILES = {"worker": "worker.txt", "operator": "operator.txt", "build": "build.txt"}
SHA256 = re.compile(r"^--hash=sha256:[0-9a-f]{64}$")
# The project's own wheels, built in the same RUN: the only installs without hashes.
OWN_WHEEL = re.compile(r"^/wheels/(snowflake_processor|snowflake_processor_worker)-\*\.whl$")
# What the worker image must never hold (the operator's libraries).
OPERATOR_ONLY = {"kopf", "kubernetes", "rich", "prometheus-client", "argcomplete", "pyyaml"}


@dataclass(frozen=True)
class PipInstall:
    flags: frozenset[str]  # options without a value (--require-hashes, --no-deps, ...)
    requirement_files: tuple[str, ...]  # -r
    constraint_files: tuple[str, ...]  # -c
    targets: tuple[str, ...]  # packages, paths and wheels named on the command line


def parse_pip_install(command: str) -> PipInstall:
    words = command.split()
    words = words[words.index("install") + 1 :]
    flags: set[str] = set()
    requirements: list[str] = []
    constraints_: list[str] = []
    targets: list[str] = []
    takes_value = {"-r", "--requirement", "-c", "--constraint", "--only-binary", "--no-binary"}
    index = 0
    while index < len(words):
        word = words[index]
        if word in takes_value:
            value = words[index + 1]
            if word in ("-r", "--requirement"):
                requirements.append(value)
            elif word in ("-c", "--constraint"):
                constraints_.append(value)
            else:
                flags.add(f"{word} {value}")
            index += 2
            continue
        if word.startswith("-"):
            flags.add(word)
        else:
            targets.append(word)
        index += 1
    return PipInstall(frozenset(flags), tuple(requirements), tuple(constraints_), tuple(targets))


def test_parse_pip_install_tells_files_flags_and_targets_apart() -> None:
    parsed = parse_pip_install(
        "/opt/venv/bin/pip install --no-cache-dir --require-hashes --only-binary :all: "
        "-r requirements/worker.txt -c requirements/constraints.txt requests"
    )
    assert parsed.flags == {"--no-cache-dir", "--require-hashes", "--only-binary :all:"}
    assert parsed.requirement_files == ("requirements/worker.txt",)
    assert parsed.constraint_files == ("requirements/constraints.txt",)
    assert parsed.targets == ("requests",)


@pytest.mark.parametrize("image", IMAGES)
def test_every_third_party_install_checks_hashes(image: str) -> None:
    """Third-party packages come only from hashed lock files with --require-hashes, as
    wheels; the one install without hashes is of the project's own wheels, built in the
    same RUN, with --no-deps (so it brings nothing else), followed by pip check (so the
    hashed set was complete)."""
    installs = [parse_pip_install(c) for c in pip_installs(builder(image))]
    hashed_files: list[str] = []
    own_wheels = 0
    for install in installs:
        if install.targets and all(OWN_WHEEL.match(t) for t in install.targets):
            assert "--no-deps" in install.flags, f"{image}: own wheels with dependencies"
            assert not install.requirement_files and not install.constraint_files, install
            own_wheels += 1
            continue
        assert "--require-hashes" in install.flags, f"{image}: without hashes: {install}"
        assert "--only-binary :all:" in install.flags, f"{image}: sdists allowed: {install}"
        assert not install.targets, f"{image}: named on the command line, unhashed: {install}"
        assert install.requirement_files, install
        hashed_files += install.requirement_files
    assert own_wheels == 1, f"{image}: the project's wheels, installed once with --no-deps"
    expected = [f"requirements/{HASHED_FILES['build']}", f"requirements/{HASHED_FILES[image]}"]
    assert hashed_files == expected, f"{image}: installs {hashed_files}"
    runs = " ".join(i.args for i in of(builder(image), "RUN"))
    assert re.search(r"--no-deps[^&]*/wheels/[^&]*&& /opt/venv/bin/pip check\b", runs), runs
    assert re.search(r"pip wheel\b[^&]*--no-build-isolation", runs), (
        "an isolated build fetches setuptools unhashed"
    )
    copied = " ".join(i.args for i in of(builder(image), "COPY"))
    assert re.search(r"\brequirements/? requirements/", copied), copied


def hashed_requirements(file: str) -> dict[str, tuple[str, list[str]]]:
    return parse_hashed((ROOT / "requirements" / file).read_text(), file)


def parse_hashed(text: str, file: str) -> dict[str, tuple[str, list[str]]]:
    """{name: (version, sha256 hashes)} of a hashed lock file; fails on any other line."""
    found: dict[str, tuple[str, list[str]]] = {}
    logical = re.sub(r"\\\n", " ", text)  # continuation lines joined
    for line in logical.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        requirement, *options = line.split()
        name, sep, version = requirement.partition("==")
        assert sep and version, f"{file}: not an exact pin: {line!r}"
        assert options, f"{file}: {requirement} has no hash"
        for option in options:
            assert SHA256.match(option), f"{file}: {requirement}: not a sha256 hash: {option}"
        assert canonical(name) not in found, f"{file}: {name} twice"
        found[canonical(name)] = (version, [o.removeprefix("--hash=sha256:") for o in options])
    return found


def test_parse_hashed_refuses_a_line_without_a_hash() -> None:
    good = "# header\na==1.0 \\\n    --hash=sha256:" + "0" * 64 + "\n"
    assert parse_hashed(good, "x.txt") == {"a": ("1.0", ["0" * 64])}
    with pytest.raises(AssertionError, match="has no hash"):
        parse_hashed(good + "b==2.0\n", "x.txt")
    with pytest.raises(AssertionError, match="not an exact pin"):
        parse_hashed("b>=2.0 --hash=sha256:" + "0" * 64 + "\n", "x.txt")


def dependency_closure(requirements: list[str]) -> set[str]:
    """The distributions these requirements need in this environment (the test venv,
    installed from the constraints), found from the installed distributions' metadata;
    the project's own distributions are expanded from their pyproject.toml files."""
    own_dependencies = {
        "snowflake-processor-worker": project_dependencies(ROOT / "worker" / "pyproject.toml")
    }
    seen: set[tuple[str, frozenset[str]]] = set()
    pending = [Requirement(text) for text in requirements]
    while pending:
        requirement = pending.pop()
        key = (canonical(requirement.name), frozenset(requirement.extras))
        if key in seen:
            continue
        seen.add(key)
        name, extras = key
        if name in own_dependencies:
            texts = own_dependencies[name]
        else:
            texts = importlib.metadata.requires(name) or []
        for text in texts:
            dependency = Requirement(text)
            marker = dependency.marker
            if marker is None or any(marker.evaluate({"extra": e}) for e in {"", *extras}):
                pending.append(dependency)
    return {name for name, _ in seen} - OWN_DISTRIBUTIONS


def project_dependencies(pyproject: Path) -> list[str]:
    return list(tomllib.loads(pyproject.read_text())["project"]["dependencies"])


def test_dependency_closure_follows_extras_and_markers() -> None:
    assert "annotated-types" in dependency_closure(["pydantic"])  # a dependency's dependency
    assert "colorama" not in dependency_closure(["click"])  # only on Windows
    assert dependency_closure(["moto[server]"]) > dependency_closure(["moto"])


CLOSURE_ROOTS = {
    "worker": lambda: project_dependencies(ROOT / "worker" / "pyproject.toml"),
    "operator": lambda: project_dependencies(ROOT / "pyproject.toml"),
    "build": lambda: ["pip", "setuptools", "wheel"],
}


@pytest.mark.parametrize("role", sorted(HASHED_FILES))
def test_each_hashed_file_pins_exactly_its_dependency_closure(role: str) -> None:
    """Exactly the packages the image (or the wheel build) needs, at exactly the versions
    of requirements/constraints.txt, each with at least one sha256."""
    file = HASHED_FILES[role]
    hashed = hashed_requirements(file)
    wanted = dependency_closure(CLOSURE_ROOTS[role]())
    assert set(hashed) == wanted, (
        f"{file}: missing {sorted(wanted - set(hashed))}, extra {sorted(set(hashed) - wanted)}"
        " (run `make lock`)"
    )
    pins = constraints()
    differ = {n: (v, pins.get(n)) for n, (v, _) in hashed.items() if pins.get(n) != v}
    assert differ == {}, f"{file} vs {CONSTRAINTS.name}: {differ}"
    assert all(hashes for _, hashes in hashed.values())
    header = (ROOT / "requirements" / file).read_text().split("\n", 5)
    assert any("Generated by `python scripts/lock_requirements.py`" in h for h in header)


def test_the_worker_image_holds_far_fewer_packages_than_the_operator() -> None:
    worker = set(hashed_requirements(HASHED_FILES["worker"]))
    operator = set(hashed_requirements(HASHED_FILES["operator"]))
    assert not worker & OPERATOR_ONLY, sorted(worker & OPERATOR_ONLY)
    assert worker < operator  # the operator runs the worker's queue client
    assert operator >= OPERATOR_ONLY


def load_lock_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("lock_requirements", LOCK_SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_lock_script_writes_what_the_images_install() -> None:
    """`make lock` runs the script; it writes each hashed file the Dockerfiles name, in
    the format the checks above read, sorted."""
    lock = load_lock_script()
    assert set(lock.HASHED) == set(HASHED_FILES.values())
    assert "\t$(PYTHON) scripts/lock_requirements.py $(ARGS)\n" in (ROOT / "Makefile").read_text()
    pins = {"b": "2.0", "a": "1.0", "unused": "3.0"}
    hashes = {"a": ["0" * 64], "b": ["1" * 64, "2" * 64]}
    text = lock.hashed_text("worker.txt", ["b", "a"], pins, hashes, "3.11.7")
    assert parse_hashed(text, "worker.txt") == {
        "a": ("1.0", hashes["a"]),
        "b": ("2.0", hashes["b"]),
    }
    assert text.index("a==1.0") < text.index("b==2.0")
    assert "--require-hashes -r requirements/worker.txt" in text


def test_the_lock_scripts_documented_options_exist() -> None:
    """docs/images.md tells users to run it with --keep-versions (the run itself needs
    PyPI and minutes, so it is not repeated here)."""
    result = subprocess.run(
        [sys.executable, str(LOCK_SCRIPT), "--help"],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert "--keep-versions" in result.stdout
    assert "--print-closures" not in result.stdout  # internal
    assert "--keep-versions" in (ROOT / "docs" / "images.md").read_text()


def test_the_lock_scripts_closure_follows_requested_extras() -> None:
    lock = load_lock_script()
    graph = {
        ("app", frozenset()): [("Lib_A", frozenset({"x"}))],
        ("lib-a", frozenset({"x"})): [("lib-b", frozenset())],
        ("lib-b", frozenset()): [],
    }
    found = lock.closure(["app"], lambda name, extras: graph[(name, extras)])
    assert found == {"app", "lib-a", "lib-b"}


@pytest.mark.parametrize("image", IMAGES)
def test_nothing_is_assumed_of_the_bases_pip(image: str) -> None:
    """The builder uses the venv's own pip (from the base's venv module); the final stage
    removes the base's pip only where it can be uninstalled."""
    for run in of(builder(image), "RUN"):
        for command in re.split(r"&&|;|\|\|", run.args):
            if re.search(r"\bpip3?\b", command):
                assert "/opt/venv/bin/" in command, f"{image}: the base's pip: {command.strip()}"
    assert re.search(
        r"python3 -m venv /opt/venv", " ".join(r.args for r in of(builder(image), "RUN"))
    )
    for run in of(final(image), "RUN"):
        if "pip uninstall" in run.args:
            assert re.search(r"if python3 -m pip --version[^;]*; then", run.args), run.args
            assert re.search(r"pip uninstall[^;]*\|\|", run.args), (
                "a refused uninstall fails the build"
            )


def test_the_constraints_pin_every_dependency_the_pyproject_files_allow() -> None:
    pins = constraints()
    assert not OWN_DISTRIBUTIONS & set(pins), "the project's own distributions are not pinned"
    for name in ("pip", "setuptools", "wheel"):
        assert name in pins, f"{name}: the build tools are pinned too"
        assert name in hashed_requirements(HASHED_FILES["build"])
    for pyproject in (ROOT / "pyproject.toml", ROOT / "worker" / "pyproject.toml"):
        project = tomllib.loads(pyproject.read_text())["project"]
        for text in project["dependencies"]:
            requirement = Requirement(text)
            name = canonical(requirement.name)
            if name in OWN_DISTRIBUTIONS:
                continue
            assert name in pins, f"{pyproject.parent.name}: {name} is not pinned"
            assert requirement.specifier.contains(pins[name], prereleases=True), (
                f"{name}=={pins[name]} does not satisfy {text} ({pyproject.relative_to(ROOT)})"
            )


def test_the_test_environment_is_installed_from_the_constraints() -> None:
    """What the tests run on is what the images hold: every distribution in this venv
    that the constraints name is at the pinned version (make installs with -c)."""
    pins = constraints()
    installed = {
        canonical(d.metadata["Name"]): d.version for d in importlib.metadata.distributions()
    }
    differ = {
        name: (installed[name], pins[name])
        for name in pins
        if name in installed and installed[name] != pins[name]
    }
    assert differ == {}, f"installed vs pinned: {differ} (run `make venv`)"
    unpinned = set(installed) - set(pins) - OWN_DISTRIBUTIONS
    assert unpinned == set(), f"installed but not in {CONSTRAINTS.name}: {sorted(unpinned)}"
    makefile = (ROOT / "Makefile").read_text()
    assert "CONSTRAINTS := requirements/constraints.txt" in makefile
    installs = [line for line in makefile.splitlines() if "pip install" in line]
    assert installs and all("-c $(CONSTRAINTS)" in line for line in installs), installs


@pytest.mark.parametrize("image", IMAGES)
def test_builder_copies_exist_and_are_not_ignored(image: str) -> None:
    ignored = dockerignore_patterns()
    for copy in of(builder(image), "COPY"):
        sources = [w for w in copy.args.split() if not w.startswith("--")][:-1]
        for source in sources:
            path = source.rstrip("/")
            assert (ROOT / path).exists(), f"{image}: COPY {source}: not in the repository"
            assert not is_ignored(path, ignored), f"{image}: COPY {source} is in .dockerignore"


# -- the build context -------------------------------------------------------------------


def dockerignore_patterns() -> list[str]:
    lines = DOCKERIGNORE.read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def is_ignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule, enough for these patterns: the last matching pattern wins."""
    ignored = False
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern.lstrip("!").strip("/")
        candidates = {body, body.removeprefix("**/")}
        if any(fnmatch.fnmatch(path, c) or path.startswith(c + "/") for c in candidates):
            ignored = not negated
    return ignored


def test_dockerignore_keeps_the_context_small() -> None:
    patterns = dockerignore_patterns()
    for excluded in (".venv", ".tools", ".demo", ".git", "tests", "benchmarks"):
        assert is_ignored(excluded, patterns), f".dockerignore does not exclude {excluded}"
    for cache in (".mypy_cache", ".pytest_cache", ".ruff_cache", "worker/x/__pycache__"):
        assert is_ignored(cache, patterns), cache
    # What the wheel needs stays in (operator/snowflake_operator/sql links to sql/).
    for needed in ("pyproject.toml", "README.md", "sql", "worker", "operator"):
        assert not is_ignored(needed, patterns), f".dockerignore excludes {needed}"
