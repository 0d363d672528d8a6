"""Every example in examples/ is admitted by the operator the chart installs, under exactly
the chart values its header names.

Each example's header has a `# Chart values:` line: "the defaults", or the `--set` values the
example needs. The chart is rendered with the real helm with those values and nothing else;
the operator's settings come from the rendered Deployment, and its own admission (the
allow-lists) must admit the example in a namespace the operator watches. Each value the
header names must be needed: without it the operator refuses the example (NotAllowed).
docs/security.md's sample values for the key-pair example are checked the same way.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from snowflake_operator.spec.admission import NOT_ALLOWED, Admitted, Refusal, admit
from snowflake_operator.spec.table_claims import TableClaim
from tests.deploy.test_chart import (
    ROOT,
    Manifest,
    operator_settings,
    render,
    watched_namespaces,
)

EXAMPLES = sorted((ROOT / "examples").glob("*.yaml"))
HEADER = re.compile(r"^# Chart values: (?P<first>.*)$", re.MULTILINE)
SET_VALUE = re.compile(r"--set '([^']+)'")


def header_values(path: Path) -> list[str]:
    """The `--set` values an example's header says it needs; [] for "the defaults"."""
    text = path.read_text()
    found = HEADER.findall(text)
    assert len(found) == 1, f"{path.name}: exactly one '# Chart values:' line, found {found}"
    (line,) = found
    values = SET_VALUE.findall(line)
    assert values or line.startswith("the defaults"), (
        f"{path.name}: '# Chart values:' must name --set '...' values or say 'the defaults'"
    )
    return values


def verdict(resource: Manifest, docs: tuple[Manifest, ...], monkeypatch: Any) -> Any:
    settings = operator_settings(docs, monkeypatch)
    claim = TableClaim("", resource["metadata"]["namespace"], resource["metadata"]["name"])
    return admit(resource["spec"], settings.reference_policy(), claim, [])


def rendered_with(values: list[str]) -> tuple[Manifest, ...]:
    return render(*[arg for value in values for arg in ("--set", value)])


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_example_is_admitted_with_the_values_its_header_names(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resource = yaml.safe_load(path.read_text())
    values = header_values(path)
    docs = rendered_with(values)
    assert resource["metadata"]["namespace"] in watched_namespaces(docs)
    admitted = verdict(resource, docs, monkeypatch)
    assert isinstance(admitted, Admitted), f"{path.name} with {values}: {admitted}"


@pytest.mark.parametrize("path", EXAMPLES, ids=[path.name for path in EXAMPLES])
def test_every_value_an_example_header_names_is_needed(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    resource = yaml.safe_load(path.read_text())
    values = header_values(path)
    for left_out in values:
        others = [value for value in values if value != left_out]
        refused = verdict(resource, rendered_with(others), monkeypatch)
        assert isinstance(refused, Refusal), f"{path.name} is admitted without {left_out}"
        assert refused.reason == NOT_ALLOWED, refused


def test_the_security_guide_sample_values_admit_the_key_pair_example(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    guide = (ROOT / "docs" / "security.md").read_text()
    after = guide.split("(../examples/processor-key-pair.yaml)", 1)[1]
    block = re.search(r"```yaml\n(.*?)```", after, re.DOTALL)
    assert block, "docs/security.md: no yaml block after the key-pair example's link"
    values_file = tmp_path / "values.yaml"
    values_file.write_text(block.group(1))
    resource = yaml.safe_load((ROOT / "examples" / "processor-key-pair.yaml").read_text())
    docs = render("--values", str(values_file))
    assert resource["metadata"]["namespace"] in watched_namespaces(docs)
    admitted = verdict(resource, docs, monkeypatch)
    assert isinstance(admitted, Admitted), admitted
