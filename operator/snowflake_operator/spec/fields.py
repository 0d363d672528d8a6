"""Spec fields this operator does not know: found and left out before validation. Pure.

A CRD one version ahead of the operator (during an upgrade, or after the operator alone was
rolled back) lets the API server store fields the operator's model has never seen: the API
server prunes only what the installed CRD does not declare. Such a resource is processed
with the fields this operator knows, and the others are reported (a warning event, once per
change: daemon/processor_loop.py) instead of making it Ready=False InvalidSpec. Wrong values of
known fields stay InvalidSpec.
"""

from __future__ import annotations

import types
import typing
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel

UNKNOWN_FIELDS = "UnknownFields"  # the warning event's reason


def known_fields_only(
    raw: Mapping[str, Any], model: type[BaseModel]
) -> tuple[dict[str, Any], list[str]]:
    """(``raw`` with only the fields ``model`` knows, at every depth; the paths of the
    others, ``spec.job.futureField`` or ``spec.job.volumes[1].hostPath``)."""
    unknown: list[str] = []
    return _known(raw, model, "spec", unknown), unknown


def _known(
    raw: Mapping[str, Any], model: type[BaseModel], path: str, unknown: list[str]
) -> dict[str, Any]:
    fields = {field.alias or name: field for name, field in model.model_fields.items()}
    fields.update(model.model_fields)  # populate_by_name: snake_case names are known too
    kept: dict[str, Any] = {}
    for key, value in raw.items():
        field = fields.get(key)
        if field is None:
            unknown.append(f"{path}.{key}")
            continue
        kept[key] = _value(value, field.annotation, f"{path}.{key}", unknown)
    return kept


def _value(value: Any, annotation: Any, path: str, unknown: list[str]) -> Any:
    """Models are filtered field by field, lists of models item by item; anything else
    (maps, Kubernetes' own objects kept as they are, scalars) is left as it is."""
    annotation = _without_none(annotation)
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return _known(value, annotation, path, unknown) if isinstance(value, Mapping) else value
    if typing.get_origin(annotation) is list and isinstance(value, list):
        (item_type,) = typing.get_args(annotation)
        return [
            _value(item, item_type, f"{path}[{index}]", unknown) for index, item in enumerate(value)
        ]
    return value


def _without_none(annotation: Any) -> Any:
    """``X | None`` -> ``X``; anything else as it is."""
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        options = [arg for arg in typing.get_args(annotation) if arg is not type(None)]
        if len(options) == 1:
            return options[0]
    return annotation


def unknown_fields_message(paths: list[str], limit: int = 10) -> str:
    """The warning event's text: which fields are ignored, and why that is not a failure."""
    shown = ", ".join(paths[:limit]) + (
        f" and {len(paths) - limit} more" if len(paths) > limit else ""
    )
    return (
        f"{shown}: not fields of this operator's version (the CRD is newer?); ignored, the "
        "resource is processed with the fields it knows. Upgrade the operator to use them"
    )
