"""The install documents agree: one order of steps, one story for the image tag (images are
pushed under the release version, which the chart pulls when values.yaml names no tag), and
the values they show install with the real helm."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import yaml

from tests.deploy.test_chart import (
    CHART,
    ROOT,
    helm,
    of_kind,
    one,
    operator_container,
    template_args,
)

INSTALL = ROOT / "docs" / "install.md"
IMAGES = ROOT / "docs" / "images.md"
TERRAFORM = ROOT / "terraform" / "eks" / "README.md"
README = ROOT / "README.md"
# The install order, each step by a word its heading holds.
ORDER = ("AWS", "Snowflake", "Images", "Certificates", "chart", "SnowflakeProcessor")


def app_version() -> str:
    return str(yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"])


def step_of(title: str) -> str:
    found = [step for step in ORDER if re.search(rf"\b{step}\b", title, re.IGNORECASE)]
    assert len(found) == 1, f"{title!r} names no single step of {ORDER}"
    return found[0]


def test_the_install_guide_has_the_steps_in_order() -> None:
    headings = re.findall(r"^## (\d)\. (.+)$", INSTALL.read_text(), re.MULTILINE)
    assert [int(number) for number, _ in headings] == list(range(1, len(ORDER) + 1))
    assert tuple(step_of(title) for _, title in headings) == ORDER
    table = INSTALL.read_text().split("## The order", 1)[1].split("\n## ", 1)[0]
    rows = re.findall(r"^\| \[\d\. ([^\]]+)\]", table, re.MULTILINE)
    assert tuple(step_of(row) for row in rows) == ORDER


def test_the_readme_gives_the_same_order() -> None:
    install = README.read_text().split("## Install\n", 1)[1].split("\n## ", 1)[0]
    steps = re.findall(r"^\d\. \*\*(.+?)\*\*", install, re.MULTILINE)
    assert tuple(step_of(step) for step in steps) == ORDER


def test_the_terraform_readme_goes_on_in_the_same_order() -> None:
    then = TERRAFORM.read_text().split("## Then\n", 1)[1].split("\n## ", 1)[0]
    steps = re.findall(r"^\d\. \*\*(.+?)\.\*\*", then, re.MULTILINE)
    assert tuple(step_of(step) for step in steps) == ORDER[1:]  # after AWS, its own subject


def test_no_install_command_sets_an_image_tag() -> None:
    """The tag is the chart's appVersion: an install that sets another one (or a <tag>
    placeholder) is the second tag story that ends in ImagePullBackOff."""
    for path in (INSTALL, IMAGES, TERRAFORM, README):
        text = path.read_text()
        assert "image.tag=" not in text, path
        assert "<tag>" not in text, path


def test_images_are_pushed_under_the_tag_the_chart_pulls() -> None:
    (line,) = re.findall(r"^TAG=.*$", IMAGES.read_text(), re.MULTILINE)
    tag = subprocess.run(
        ["bash", "-c", f'{line}\nprintf %s "$TAG"'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    ).stdout
    assert tag == app_version()
    assert '-t "$REGISTRY/snowflake-processor-worker:$TAG"' in IMAGES.read_text()
    assert '-t "$REGISTRY/snowflake-processor-operator:$TAG"' in IMAGES.read_text()


def yaml_block_after(text: str, marker: str) -> str:
    found = re.search(re.escape(marker) + r".*?```yaml\n(.*?)```", text, re.DOTALL)
    assert found, f"no yaml block after {marker!r}"
    return found.group(1)


def test_the_guide_values_install_the_images_pushed(tmp_path: Path) -> None:
    """values.yaml as the guide shows it (Terraform's helm_values): no tag, and the chart
    runs <repository>:<appVersion>, what step 3 pushed."""
    guide = INSTALL.read_text()
    values = tmp_path / "values.yaml"
    values.write_text(yaml_block_after(guide, "output -raw helm_values > values.yaml"))
    shown = yaml.safe_load(values.read_text())
    assert "tag" not in shown["operator"]["image"] and "tag" not in shown["worker"]["image"]
    docs = tuple(
        d
        for d in yaml.safe_load_all(helm(*template_args("-f", str(values), images=False)).stdout)
        if d
    )
    container = operator_container(docs)
    repository = shown["operator"]["image"]["repository"]
    assert container["image"] == f"{repository}:{app_version()}"
    worker = {e["name"]: e.get("value") for e in container["env"]}["SFP_OPERATOR_WORKER_IMAGE"]
    assert worker == f"{shown['worker']['image']['repository']}:{app_version()}"


def test_the_guide_cronjob_mode_installs_with_values_and_processors(tmp_path: Path) -> None:
    guide = INSTALL.read_text()
    values = tmp_path / "values.yaml"
    values.write_text(yaml_block_after(guide, "output -raw helm_values > values.yaml"))
    processors = tmp_path / "processors.yaml"
    processors.write_text(yaml_block_after(guide, "## CronJob mode"))
    assert "-f values.yaml -f processors.yaml" in guide
    out = helm(*template_args("-f", str(values), "-f", str(processors), images=False)).stdout
    docs = tuple(d for d in yaml.safe_load_all(out) if d)
    cronjob = one(docs, "CronJob")
    assert cronjob["metadata"]["namespace"] == "team-a"
    reconciler = [
        a for a in of_kind(docs, "ServiceAccount") if a["metadata"]["name"].endswith("reconciler")
    ]
    (account,) = reconciler
    role = account["metadata"]["annotations"]["eks.amazonaws.com/role-arn"]
    assert role.endswith(":role/snowflake-processor-reconciler")


def test_the_guide_lint_command_passes_on_its_values(tmp_path: Path) -> None:
    """`helm lint charts/snowflake-processor -f values.yaml`, run as the guide says, prints
    what the guide says it prints when it worked."""
    guide = INSTALL.read_text()
    command = "helm lint charts/snowflake-processor -f values.yaml"
    assert command in guide
    values = tmp_path / "values.yaml"
    values.write_text(yaml_block_after(guide, "output -raw helm_values > values.yaml"))
    out = helm("lint", str(CHART), "-f", str(values)).stdout
    assert "1 chart(s) linted, 0 chart(s) failed" in out
    assert "1 chart(s) linted, 0 chart(s) failed" in guide.split(command, 1)[1]
