"""Whether a resource may be polled at all: a valid spec, only references the operator
allows, and a table no earlier resource processes. Pure.

A refused resource gets Ready=False with the refusal's reason and an event; nothing of
it is used (no Secret read, no S3 or Snowflake call, no Job).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from snowflake_worker.errors import one_line
from snowflake_worker.validation_errors import spec_location, validation_problems

from .reference_policy import ReferencePolicy, refusals
from .spec import ProcessorSpec
from .table_claims import TableClaim, earlier_claim

INVALID_SPEC, NOT_ALLOWED, DUPLICATE_TABLE = "InvalidSpec", "NotAllowed", "DuplicateTable"


@dataclass(frozen=True)
class Refusal:
    reason: str  # INVALID_SPEC, NOT_ALLOWED or DUPLICATE_TABLE
    message: str


def admit(
    raw_spec: Mapping[str, Any],
    policy: ReferencePolicy,
    mine: TableClaim,
    claims: Iterable[TableClaim],
) -> ProcessorSpec | Refusal:
    """The validated spec, or why the resource is refused (the first reason found)."""
    try:
        spec = ProcessorSpec.model_validate(dict(raw_spec))
    except ValidationError as exc:
        return Refusal(INVALID_SPEC, one_line(validation_problems(exc, spec_location), limit=500))
    problems = refusals(spec, policy)
    if problems:
        return Refusal(NOT_ALLOWED, one_line("; ".join(problems), limit=500))
    earlier = earlier_claim(mine, claims)
    if earlier is not None:
        return Refusal(
            DUPLICATE_TABLE,
            f"table {spec.snowflake.table_ref} of account {spec.snowflake.account} is "
            f"processed by SnowflakeProcessor {earlier} (created {earlier.created}); one "
            "resource per table: delete one of them",
        )
    return spec
