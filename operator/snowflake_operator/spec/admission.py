"""Whether a resource may be polled at all: a valid spec, only references the operator
allows, and a table no earlier resource processes. Pure.

A refused resource gets Ready=False with the refusal's reason and an event; nothing of
it is used (no Secret read, no S3 or Snowflake call, no Job). Fields this operator does not
know (a newer CRD's) are no reason to refuse: they are left out and named
(spec/fields.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from snowflake_worker.errors import one_line
from snowflake_worker.validation_errors import spec_location, validation_problems

from .fields import known_fields_only
from .model import ProcessorSpec
from .reference_policy import ReferencePolicy, refusals
from .stored_spec import with_billed_sizes
from .table_claims import TableClaim, earlier_claim

INVALID_SPEC, NOT_ALLOWED, DUPLICATE_TABLE = "InvalidSpec", "NotAllowed", "DuplicateTable"


@dataclass(frozen=True)
class Admitted:
    spec: ProcessorSpec
    unknown_fields: tuple[str, ...] = ()  # left out: spec.job.futureField, ...


@dataclass(frozen=True)
class Refusal:
    reason: str  # INVALID_SPEC, NOT_ALLOWED or DUPLICATE_TABLE
    message: str
    unknown_fields: tuple[str, ...] = ()  # left out before validating


def admit(
    raw_spec: Mapping[str, Any],
    policy: ReferencePolicy,
    mine: TableClaim,
    claims: Iterable[TableClaim],
) -> Admitted | Refusal:
    """The validated spec (with the fields it left out), or why the resource is refused
    (the first reason found). A size only an earlier release accepted is read as the size
    it was billed as (spec/stored_spec.py), never refused."""
    known, unknown = known_fields_only(with_billed_sizes(raw_spec), ProcessorSpec)
    try:
        spec = ProcessorSpec.model_validate(known)
    except ValidationError as exc:
        problems = one_line(validation_problems(exc, spec_location), limit=500)
        return Refusal(INVALID_SPEC, problems, tuple(unknown))
    not_allowed = refusals(spec, policy)
    if not_allowed:
        return Refusal(NOT_ALLOWED, one_line("; ".join(not_allowed), limit=500), tuple(unknown))
    earlier = earlier_claim(mine, claims)
    if earlier is not None:
        return Refusal(
            DUPLICATE_TABLE,
            f"table {spec.snowflake.table_ref} of account {spec.snowflake.account} is "
            f"processed by SnowflakeProcessor {earlier} (created {earlier.created}); one "
            "resource per table: delete one of them",
            tuple(unknown),
        )
    return Admitted(spec, tuple(unknown))
