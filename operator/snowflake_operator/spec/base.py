"""The base of every section of the SnowflakeProcessor spec model: camelCase aliases as in
the CRD, unknown fields refused (admission strips the fields this version does not know
before validating: spec/fields.py), frozen.

The model is also the CRD's source: scripts/gen_crd.py writes crds/snowflakeprocessors.yaml
from its JSON schema. Each field's description is what `kubectl explain` shows; the helpers
below put what JSON Schema cannot say into the schema (``json_schema_extra``): the CEL rules
the API server checks (x-kubernetes-validations), and descriptions that depend on where a
shared model is used. They add to the schema only; validation stays the model's own.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

Rule = tuple[str, str]  # (a CEL expression over self, the message when it is false)


class SpecModel(BaseModel):
    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", frozen=True
    )


def cel(*rules: Rule) -> dict[str, Any]:
    """``json_schema_extra`` of a field or model: CEL rules the API server checks on it, each
    the twin of a check of the model, so both refuse the same resources."""
    return {"x-kubernetes-validations": [{"rule": rule, "message": text} for rule, text in rules]}


def cel_rules(*rules: Rule) -> ConfigDict:
    """A model's ``model_config``: CEL rules on the object (rules across its fields)."""
    return ConfigDict(json_schema_extra=cel(*rules))


def cel_list(values: Iterable[str]) -> str:
    """A CEL list of string literals: ``['a', 'b']``."""
    return "[" + ", ".join(f"'{value}'" for value in values) + "]"


def described_fields(**descriptions: str) -> dict[str, Any]:
    """``json_schema_extra`` of a field whose model is used in several places: what its
    fields (by alias) mean at this place, over the model's own descriptions."""
    return {"properties": {name: {"description": text} for name, text in descriptions.items()}}


def string_map(value_description: str, **bounds: Any) -> dict[str, Any]:
    """``json_schema_extra`` of a ``dict[str, str]`` field: what each value is, and the
    bounds of a value (``maxLength=63``) where the field is not optional (the schema of an
    optional field keeps those of its value type)."""
    return {"additionalProperties": {"type": "string", "description": value_description, **bounds}}


def list_map(*keys: str) -> dict[str, Any]:
    """``json_schema_extra`` of a list whose items are unique by ``keys`` (server-side apply
    merges such lists item by item, like a pod's env and volumes)."""
    return {"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": list(keys)}
