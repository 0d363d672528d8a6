"""docs/configuration.md is generated from the CRD and must stay in step with it.

The committed file must equal what scripts/gen_config_reference.py generates, so a CRD
change without a regenerated document fails here. The field walk below is written
independently of the generator's, so a generator that skipped fields would fail too.
"""

from __future__ import annotations

import copy
import importlib.util
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "gen_config_reference.py"
CRD_PATH = ROOT / "crds" / "snowflakeprocessors.yaml"
DOC_PATH = ROOT / "docs" / "configuration.md"
REGENERATE = "python scripts/gen_config_reference.py"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gen_config_reference", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


gen = _load_generator()


@pytest.fixture
def crd() -> dict[str, Any]:
    with CRD_PATH.open(encoding="utf-8") as handle:
        loaded = yaml.safe_load(handle)
    assert isinstance(loaded, dict)
    return loaded


def _root(crd: dict[str, Any]) -> dict[str, Any]:
    (version,) = crd["spec"]["versions"]
    return version["schema"]["openAPIV3Schema"]  # type: ignore[no-any-return]


def _paths(schema: dict[str, Any], prefix: str) -> Iterator[str]:
    """Every property below ``schema``, dotted; items of an array get ``[]``."""
    for name, child in (schema.get("properties") or {}).items():
        path = f"{prefix}.{name}"
        yield path
        yield from _paths(child, path)
        items = child.get("items")
        if isinstance(items, dict):
            yield from _paths(items, f"{path}[]")


def _validation_messages(schema: dict[str, Any]) -> Iterator[str]:
    for rule in schema.get("x-kubernetes-validations") or []:
        yield " ".join(rule["message"].split())
    for child in (schema.get("properties") or {}).values():
        yield from _validation_messages(child)


def test_committed_document_is_current(crd: dict[str, Any]) -> None:
    committed = DOC_PATH.read_text(encoding="utf-8")
    assert committed == gen.render(crd), (
        f"docs/configuration.md is out of date with crds/snowflakeprocessors.yaml: "
        f"run `{REGENERATE}` and commit the result"
    )


def test_output_is_deterministic(crd: dict[str, Any]) -> None:
    assert gen.render(crd) == gen.render(copy.deepcopy(crd))


def test_header_says_generated_and_how_to_regenerate() -> None:
    head = "\n".join(DOC_PATH.read_text(encoding="utf-8").splitlines()[:5])
    assert "Generated from `crds/snowflakeprocessors.yaml`" in head
    assert f"`{REGENERATE}`" in head


def test_every_spec_field_path_is_a_row(crd: dict[str, Any]) -> None:
    document = DOC_PATH.read_text(encoding="utf-8")
    spec_paths = list(_paths(_root(crd)["properties"]["spec"], "spec"))
    assert len(spec_paths) > 40, "the walk found too few fields: is the CRD shaped as expected?"
    missing = [p for p in spec_paths if f"| `{p}` |" not in document]
    assert not missing, f"spec fields missing from docs/configuration.md: {missing}"


def test_every_status_field_path_is_a_row(crd: dict[str, Any]) -> None:
    document = DOC_PATH.read_text(encoding="utf-8")
    status_paths = list(_paths(_root(crd)["properties"]["status"], "status"))
    missing = [p for p in status_paths if f"| `{p}` |" not in document]
    assert not missing, f"status fields missing from docs/configuration.md: {missing}"


def test_one_section_per_object(crd: dict[str, Any]) -> None:
    document = gen.render(crd)
    for heading in (
        "## spec",
        "### spec.snowflake",
        "### spec.snowflake.auth",
        "### spec.queue",
        "### spec.job",
        "### spec.endpoint",
        "### spec.certificates",
        "### spec.certificates.s3",
        "## status",
        "### status.conditions[]",
    ):
        assert f"\n{heading}\n" in document, heading


def test_sections_follow_schema_order(crd: dict[str, Any]) -> None:
    document = gen.render(crd)
    spec_children = [
        f"spec.{name}"
        for name, child in _root(crd)["properties"]["spec"]["properties"].items()
        if child.get("properties")
    ]
    positions = [document.index(f"\n### {path}\n") for path in spec_children]
    assert positions == sorted(positions)


def test_types_defaults_and_required(crd: dict[str, Any]) -> None:
    document = gen.render(crd)
    rows = {
        line.split(" | ")[0].removeprefix("| "): line
        for line in document.splitlines()
        if line.startswith("| `")
    }
    mode = rows["`spec.snowflake.auth.mode`"]
    assert "one of `workload_identity`, `key_pair`, `password`, `emulator`" in mode
    assert "| `workload_identity` |" in mode
    assert "| yes |" in rows["`spec.snowflake.account`"]
    assert "| no |" in rows["`spec.queue`"]
    assert "integer, 1-19" in rows["`spec.job.maxActiveJobs`"]
    assert "integer, 60-86400" in rows["`spec.queue.leaseSeconds`"]
    assert "integer, >= 60" in rows["`spec.job.activeDeadlineSeconds`"]
    assert "number, > 0" in rows["`spec.endpoint.timeoutSeconds`"]
    assert "(Ki\\|Mi\\|Gi" in rows["`spec.job.memory`"]  # pipe escaped
    assert '| `"0.5"` |' in rows["`spec.job.cpu`"]  # quoted as YAML needs it
    assert '| `""` |' in rows["`spec.certificates.s3.prefix`"]
    assert "map of string to string" in rows["`spec.job.podLabels`"]
    # YAML-folded descriptions become one line with single spaces.
    ttl = rows["`spec.job.ttlSecondsAfterFinished`"]
    assert "Kubernetes deletes a finished Job (and its pod) this many seconds after it ends" in ttl


def test_cross_field_rules_listed_under_their_object(crd: dict[str, Any]) -> None:
    document = gen.render(crd)
    messages = list(_validation_messages(_root(crd)))
    assert len(messages) >= 10
    for message in messages:  # a field's own rule is named: "- `spec.job.x`: message"
        assert re.search(rf"^- (`[\w.\[\]]+`: )?{re.escape(message)}$", document, re.M), message
    job_section = document.split("\n### spec.job\n", 1)[1].split("\n## ", 1)[0]
    assert "job.cpu 0.5 allows job.memory" in job_section
    assert "needs exactly one of s3 or existingSecret" not in job_section


def test_printer_columns_listed(crd: dict[str, Any]) -> None:
    document = gen.render(crd)
    (version,) = crd["spec"]["versions"]
    columns = version["additionalPrinterColumns"]
    assert columns
    printer = document.split("\n## Printer columns\n", 1)[1]
    for column in columns:
        wide = " (wide)" if column.get("priority") else ""
        assert f"| {column['name']}{wide} |" in printer
        assert f"`{column['jsonPath']}`" in printer


def test_a_new_field_changes_the_document(crd: dict[str, Any]) -> None:
    """The comparison above can fail: a schema change yields a different document."""
    changed = copy.deepcopy(crd)
    queue = _root(changed)["properties"]["spec"]["properties"]["queue"]
    queue["properties"]["synthesisedLimit"] = {
        "type": "integer",
        "minimum": 2,
        "maximum": 9,
        "default": 4,
        "description": "A field that exists only in this test.",
    }
    before, after = gen.render(crd), gen.render(changed)
    assert before != after
    assert "| `spec.queue.synthesisedLimit` | integer, 2-9 | `4` | no |" in after
    assert "spec.queue.synthesisedLimit" not in before


def test_a_changed_description_changes_the_document(crd: dict[str, Any]) -> None:
    changed = copy.deepcopy(crd)
    spec = _root(changed)["properties"]["spec"]
    spec["properties"]["suspend"]["description"] = "Reworded."
    assert gen.render(changed) != gen.render(crd)


def test_check_mode(
    tmp_path: Path, crd: dict[str, Any], capsys: pytest.CaptureFixture[str]
) -> None:
    output = tmp_path / "configuration.md"
    assert gen.main(["--check", "--output", str(output)]) == 1  # missing
    assert "is missing" in capsys.readouterr().err
    assert gen.main(["--output", str(output)]) == 0
    assert output.read_text(encoding="utf-8") == gen.render(crd)
    assert gen.main(["--check", "--output", str(output)]) == 0
    output.write_text(output.read_text(encoding="utf-8") + "hand edit\n", encoding="utf-8")
    assert gen.main(["--check", "--output", str(output)]) == 1
    err = capsys.readouterr().err
    assert "is out of date" in err
    assert REGENERATE in err
    assert "+hand edit" not in err and "-hand edit" in err  # the diff shows what goes


def test_check_mode_sees_a_changed_crd(tmp_path: Path, crd: dict[str, Any]) -> None:
    output = tmp_path / "configuration.md"
    output.write_text(gen.render(crd), encoding="utf-8")
    changed = copy.deepcopy(crd)
    _root(changed)["properties"]["spec"]["properties"]["newKnob"] = {"type": "boolean"}
    crd_file = tmp_path / "crd.yaml"
    crd_file.write_text(yaml.safe_dump(changed), encoding="utf-8")
    assert gen.main(["--check", "--crd", str(crd_file), "--output", str(output)]) == 1
    assert gen.main(["--check", "--output", str(output)]) == 0
