"""Generate docs/configuration.md from the SnowflakeProcessor CRD's openAPIV3Schema.

One section per object of the schema (spec, spec.snowflake, spec.snowflake.auth, ...,
status, ...), in schema order, each with a table of its fields: the dotted path, the type
with its bounds (enum values, pattern, minimum/maximum, lengths), the default, whether it
is required and the schema's description. Cross-field rules (x-kubernetes-validations)
are listed under the object that carries them, and the printer columns of
`kubectl get sfp` get their own table. The output depends only on the CRD: no dates, no
machine details, so regenerating an unchanged CRD gives the same bytes.

    python scripts/gen_config_reference.py           # write docs/configuration.md
    python scripts/gen_config_reference.py --check   # exit 1 if it is out of date
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
import sys
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import yaml
except ImportError:  # pragma: no cover - only outside the project's venv
    raise SystemExit(
        "PyYAML is missing: run this with the project's venv, "
        "e.g. .venv/bin/python scripts/gen_config_reference.py"
    ) from None

ROOT = Path(__file__).resolve().parent.parent
CRD_PATH = ROOT / "crds" / "snowflakeprocessors.yaml"
DOC_PATH = ROOT / "docs" / "configuration.md"
COMMAND = "python scripts/gen_config_reference.py"
TOP_LEVEL = ("spec", "status")  # the root's other properties are apiVersion, kind, metadata
MAX_DIFF_LINES = 60


@dataclass(frozen=True)
class Section:
    """One object of the schema: its path from the root and its subschema."""

    path: str  # "spec.snowflake.auth", "status.conditions[]"
    schema: dict[str, Any]
    depth: int  # 0 for spec and status


# -- reading the CRD -------------------------------------------------------------------


def load_crd(path: Path = CRD_PATH) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        crd = yaml.safe_load(handle)
    if not isinstance(crd, dict) or crd.get("kind") != "CustomResourceDefinition":
        raise SystemExit(f"{path}: not a CustomResourceDefinition")
    return crd


def documented_version(crd: dict[str, Any]) -> dict[str, Any]:
    """The storage version (the one version today); else the first served one."""
    versions = crd["spec"]["versions"]
    for version in versions:
        if version.get("storage"):
            return version  # type: ignore[no-any-return]
    return versions[0]  # type: ignore[no-any-return]


def _has_fields(schema: dict[str, Any]) -> bool:
    return schema.get("type") == "object" and bool(schema.get("properties"))


def _item_schema(schema: dict[str, Any]) -> dict[str, Any] | None:
    """The item schema of an array of objects with fields, else None."""
    if schema.get("type") != "array":
        return None
    items = schema.get("items") or {}
    return items if _has_fields(items) else None


def sections(root: dict[str, Any]) -> list[Section]:
    """Every object with fields under spec and status, depth first in schema order."""
    found: list[Section] = []

    def visit(path: str, schema: dict[str, Any], depth: int) -> None:
        found.append(Section(path, schema, depth))
        for name, child in (schema.get("properties") or {}).items():
            if _has_fields(child):
                visit(f"{path}.{name}", child, depth + 1)
            elif (items := _item_schema(child)) is not None:
                visit(f"{path}.{name}[]", items, depth + 1)

    for name in TOP_LEVEL:
        schema = (root.get("properties") or {}).get(name)
        if schema is not None:
            visit(name, schema, 0)
    return found


def field_paths(root: dict[str, Any]) -> Iterator[str]:
    """Every documented field path (spec.* and status.*), in document order."""
    for section in sections(root):
        for name in section.schema.get("properties") or {}:
            yield f"{section.path}.{name}"


# -- rendering -------------------------------------------------------------------------


def normalise(text: Any) -> str:
    """One line: YAML folding and indentation collapsed to single spaces."""
    return " ".join(str(text).split())


def prose(text: Any) -> str:
    """A description as Markdown: one line, and ``<prefix>`` kept from reading as HTML."""
    return re.sub(r"<(?=[A-Za-z/!?])", "&lt;", normalise(text))


def cell(text: str) -> str:
    """Safe inside a Markdown table cell: GitHub needs ``\\|`` even within code spans."""
    return text.replace("|", "\\|")


def literal(value: Any) -> str:
    """A value as it is written in YAML: strings bare unless YAML would read them as
    something else ("0.5", "True", ""), everything else as JSON."""
    if isinstance(value, str):
        return value if value and isinstance(yaml.safe_load(value), str) else json.dumps(value)
    return json.dumps(value)


def code(value: Any) -> str:
    """A value in a code span."""
    return f"`{literal(value)}`"


def anchor(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation but - and _ dropped."""
    return re.sub(r"[^\w\- ]", "", heading.lower()).replace(" ", "-")


def _number(value: Any) -> str:
    return json.dumps(value)


def _bounds(schema: dict[str, Any]) -> list[str]:
    notes: list[str] = []
    low, high = schema.get("minimum"), schema.get("maximum")
    low_open = bool(schema.get("exclusiveMinimum"))
    high_open = bool(schema.get("exclusiveMaximum"))
    if low is not None and high is not None and not (low_open or high_open):
        notes.append(f"{_number(low)}-{_number(high)}")
    else:
        if low is not None:
            notes.append(f"{'>' if low_open else '>='} {_number(low)}")
        if high is not None:
            notes.append(f"{'<' if high_open else '<='} {_number(high)}")
    shortest, longest = schema.get("minLength"), schema.get("maxLength")
    if shortest is not None and longest is not None:
        notes.append(f"length {shortest}-{longest}")
    elif shortest is not None:
        notes.append(f"length >= {shortest}")
    elif longest is not None:
        notes.append(f"length <= {longest}")
    if "pattern" in schema:
        notes.append(f"matching {code(schema['pattern'])}")
    if "enum" in schema:
        notes.append("one of " + ", ".join(code(v) for v in schema["enum"]))
    return notes


def type_text(path: str, schema: dict[str, Any]) -> str:
    kind = str(schema.get("type", "any"))
    if _has_fields(schema):
        text = f"object ([{path}](#{anchor(path)}))"
    elif kind == "object" and isinstance(schema.get("additionalProperties"), dict):
        value_type = schema["additionalProperties"].get("type", "any")
        text = f"map of string to {value_type}"
    elif _item_schema(schema) is not None:
        section = f"{path}[]"
        text = f"array of object ([{section}](#{anchor(section)}))"
        keys = schema.get("x-kubernetes-list-map-keys")
        if schema.get("x-kubernetes-list-type") == "map" and keys:
            text += ", one item per " + ", ".join(code(k) for k in keys)
    elif kind == "array":
        text = f"array of {(schema.get('items') or {}).get('type', 'any')}"
    elif kind == "object" and schema.get("x-kubernetes-preserve-unknown-fields"):
        text = "object (Kubernetes' own, kept as written)"
    else:
        text = kind
    if "format" in schema:
        text += f" ({schema['format']})"
    notes = _bounds(schema)
    if "maxItems" in schema:
        notes.append(f"at most {schema['maxItems']} items")
    if "maxProperties" in schema:
        notes.append(f"at most {schema['maxProperties']} entries")
    if schema.get("nullable"):
        notes.append("nullable")
    return ", ".join([text, *notes])


def default_text(schema: dict[str, Any]) -> str:
    return code(schema["default"]) if "default" in schema else ""


def _rows(section: Section) -> list[str]:
    required = set(section.schema.get("required") or [])
    rows = [
        "| Field | Type | Default | Required | Description |",
        "|---|---|---|---|---|",
    ]
    for name, child in (section.schema.get("properties") or {}).items():
        path = f"{section.path}.{name}"
        row = [
            code(path),
            type_text(path, child),
            default_text(child),
            "yes" if name in required else "no",
            prose(child.get("description", "")),
        ]
        rows.append("| " + " | ".join(cell(part) for part in row) + " |")
    return rows


def _rules(section: Section) -> list[str]:
    """The object's own rules, then those of its fields that have no section of their own
    (a map, a string), each named."""
    rules = [("", rule) for rule in section.schema.get("x-kubernetes-validations") or []]
    for name, child in (section.schema.get("properties") or {}).items():
        if not _has_fields(child) and _item_schema(child) is None:
            rules += [(name, rule) for rule in child.get("x-kubernetes-validations") or []]
    if not rules:
        return []
    lines = ["", f"Rules on `{section.path}`, checked by the API server:", ""]
    for field, rule in rules:
        message = rule.get("message") or f"rule `{normalise(rule.get('rule', ''))}` must hold"
        where = f"`{section.path}.{field}`: " if field else ""
        lines.append(f"- {where}{prose(message)}")
    return lines


def _section(section: Section) -> list[str]:
    heading = "#" * (2 + min(section.depth, 1))
    lines = ["", f"{heading} {section.path}", ""]
    if section.path.endswith("[]"):
        lines += [f"Each item of `{section.path[:-2]}`.", ""]
    description = prose(section.schema.get("description", ""))
    if description:
        lines += [description, ""]
    return lines + _rows(section) + _rules(section)


def _printer_columns(version: dict[str, Any]) -> list[str]:
    columns = version.get("additionalPrinterColumns") or []
    if not columns:
        return []
    lines = [
        "",
        "## Printer columns",
        "",
        "What `kubectl get sfp` shows; columns marked wide only with `-o wide`.",
        "",
        "| Column | Type | JSONPath | Description |",
        "|---|---|---|---|",
    ]
    for column in columns:
        wide = " (wide)" if int(column.get("priority", 0)) > 0 else ""
        row = [
            f"{column['name']}{wide}",
            str(column.get("type", "")),
            f"`{column['jsonPath']}`",
            prose(column.get("description", "")),
        ]
        lines.append("| " + " | ".join(cell(part) for part in row) + " |")
    return lines


def render(crd: dict[str, Any]) -> str:
    """The whole document for ``crd``; equal CRDs give equal text."""
    names = crd["spec"]["names"]
    version = documented_version(crd)
    root = version["schema"]["openAPIV3Schema"]
    api_version = f"{crd['spec']['group']}/{version['name']}"
    short = ", ".join(f"`{n}`" for n in names.get("shortNames") or [])
    lines = [
        f"# {names['kind']} configuration reference",
        "",
        "> Generated from `crds/snowflakeprocessors.yaml` by "
        "`scripts/gen_config_reference.py`; do not edit by hand. The CRD is generated from "
        "the model (`python scripts/gen_crd.py`); after regenerating it, regenerate this file "
        f"with `{COMMAND}` (`{COMMAND} --check` tells whether this file is current).",
        "",
        f"`apiVersion: {api_version}`, `kind: {names['kind']}`, "
        f"{crd['spec'].get('scope', 'Namespaced').lower()}"
        + (f", short name {short}" if short else "")
        + ".",
        "",
    ]
    if root.get("description"):
        lines += [prose(root["description"]), ""]
    lines += [
        "Fields are listed by their path from the resource's root. Required means required "
        "whenever the enclosing object is present. A default is filled in by the API server "
        "when the field is left out; an empty Default means the field stays unset. Rules "
        "across fields are also enforced by the operator, which reports a violation as "
        "Ready=False with reason InvalidSpec.",
        "",
        "Sections:",
        "",
    ]
    all_sections = sections(root)
    for section in all_sections:
        indent = "  " * section.depth
        lines.append(f"{indent}- [{section.path}](#{anchor(section.path)})")
    if version.get("additionalPrinterColumns"):
        lines.append("- [Printer columns](#printer-columns)")
    for section in all_sections:
        lines += _section(section)
    lines += _printer_columns(version)
    return "\n".join(lines) + "\n"


# -- command line ----------------------------------------------------------------------


def _display(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Generate docs/configuration.md from the SnowflakeProcessor CRD."
    )
    parser.add_argument("--crd", type=Path, default=CRD_PATH, help="the CRD to document")
    parser.add_argument("--output", type=Path, default=DOC_PATH, help="the Markdown file")
    parser.add_argument(
        "--check",
        action="store_true",
        help="write nothing; exit 1 if the file differs from what would be generated",
    )
    args = parser.parse_args(argv)
    text = render(load_crd(args.crd))
    output: Path = args.output
    if args.check:
        current = output.read_text(encoding="utf-8") if output.is_file() else ""
        if current == text:
            print(f"{_display(output)} is up to date")
            return 0
        diff = list(
            difflib.unified_diff(
                current.splitlines(),
                text.splitlines(),
                f"{_display(output)} (committed)",
                f"{_display(output)} (generated)",
                lineterm="",
            )
        )
        for line in diff[:MAX_DIFF_LINES]:
            print(line, file=sys.stderr)
        if len(diff) > MAX_DIFF_LINES:
            print(f"... {len(diff) - MAX_DIFF_LINES} more diff lines", file=sys.stderr)
        what = "is missing" if not output.is_file() else "is out of date"
        print(
            f"{_display(output)} {what} with {_display(args.crd)}: run `{COMMAND}` "
            "and commit the result",
            file=sys.stderr,
        )
        return 1
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"wrote {_display(output)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
