"""SnowflakeProcessor specs as test data: a base document with a few fields changed."""

from __future__ import annotations

import copy
from typing import Any

from snowflake_operator.spec.model import ProcessorSpec

# Only the required fields: everything else takes the model's defaults.
MINIMAL_SPEC: dict[str, Any] = {
    "snowflake": {
        "account": "myorg-myaccount",
        "database": "analytics",
        "schema": "queue",
        "table": "work_items",
    },
    "endpoint": {"url": "https://service.example/entries"},
}


def merged(base: dict[str, Any], **changes: Any) -> dict[str, Any]:
    """A copy of ``base`` with top-level keys replaced and dicts merged one level deep:
    ``merged(doc, job={"maxActiveJobs": 2})`` keeps the rest of ``doc["job"]``."""
    doc = copy.deepcopy(base)
    for key, value in changes.items():
        if isinstance(value, dict) and isinstance(doc.get(key, {}), dict):
            doc[key] = {**doc.get(key, {}), **value}
        else:
            doc[key] = value
    return doc


def processor_spec(base: dict[str, Any], **changes: Any) -> ProcessorSpec:
    """``merged(base, **changes)`` validated as the operator validates a resource's spec."""
    return ProcessorSpec.model_validate(merged(base, **changes))
