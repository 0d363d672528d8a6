"""Specs an earlier release stored, brought to this release's rules and defaults. Pure.

The API server writes a CRD's defaults into etcd when a resource is created, so a
resource created under release 0.1.0 holds 0.1.0's defaults as if they had been typed:
``job.cpu 0.5 / job.memory 1Gi``, a size this release refuses (Fargate bills 1Gi as 2 GB),
and Job history and TTL defaults that keep finished Fargate pods, billed, for an hour.

- A cpu/memory pair 0.1.0 accepted and this release refuses becomes the request that
  bills the same Fargate size (0.5 / 1Gi was billed as 0.5 vCPU / 2 GB: 0.5 / 1792Mi).
  Whoever typed it, the old value can no longer run, and the new one costs the same.
- A history limit or TTL equal to 0.1.0's default becomes this release's default, once,
  on a resource not yet marked with :data:`SPEC_DEFAULTS_ANNOTATION`. A stored value does
  not say whether it was typed or defaulted: exactly the old default is taken as
  defaulted. The mark, written with the change (or alone when nothing changes), keeps
  the value a user sets afterwards, even the old default.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from snowflake_operator.constants import GROUP

from .fargate_sizes import (
    FARGATE_MEMORY_OVERHEAD_MIB,
    FARGATE_SIZES_MIB,
    fargate_billed_size,
    fargate_size_allowed,
    memory_mib,
)
from .model import JobSettings

# The release whose defaults a resource's stored spec holds; written by the operator.
SPEC_DEFAULTS_ANNOTATION = f"{GROUP}/spec-defaults"
SPEC_DEFAULTS_RELEASE = "0.2.0"
SPEC_UPGRADED = "SpecUpgraded"  # the Warning event's reason

# 0.1.0's CRD: memory in Mi or Gi, exactly a Fargate size for the cpu.
_OLD_MEMORY = re.compile(r"^[0-9]+(Mi|Gi)$")
# 0.1.0's defaults of the Job history and TTL, by their spec.job field names.
OLD_JOB_DEFAULTS: dict[str, int] = {
    "ttlSecondsAfterFinished": 3600,
    "successfulJobsHistoryLimit": 3,
    "failedJobsHistoryLimit": 5,
}
_FIELD_NAMES = {
    "ttlSecondsAfterFinished": "ttl_seconds_after_finished",
    "successfulJobsHistoryLimit": "successful_jobs_history_limit",
    "failedJobsHistoryLimit": "failed_jobs_history_limit",
}


@dataclass(frozen=True)
class FieldChange:
    field: str  # the spec.job field's name, e.g. memory
    old: Any
    new: Any


@dataclass(frozen=True)
class SpecUpgrade:
    """What to write back: the changed spec.job fields (none: only the mark)."""

    changes: tuple[FieldChange, ...]

    def patch(self) -> dict[str, Any]:
        """A JSON merge patch: the new values and the mark."""
        body: dict[str, Any] = {
            "metadata": {"annotations": {SPEC_DEFAULTS_ANNOTATION: SPEC_DEFAULTS_RELEASE}}
        }
        if self.changes:
            body["spec"] = {"job": {c.field: c.new for c in self.changes}}
        return body

    def message(self) -> str:
        """The Warning event: what changed, why, and how to choose otherwise."""
        changed = ", ".join(f"job.{c.field} {c.old} -> {c.new}" for c in self.changes)
        return (
            f"spec written by an earlier release upgraded to {SPEC_DEFAULTS_RELEASE}'s rules: "
            f"{changed} (a size this release refuses becomes the one Fargate billed it as; "
            "history limits and TTL equal to 0.1.0's defaults become this release's, which "
            "delete finished pods sooner). Set other values in the spec to keep them: they "
            "are not changed again"
        )


def billed_size_request(cpu: str, memory: str) -> tuple[str, str] | None:
    """(cpu, memory) requesting exactly the Fargate size 0.1.0 billed ``cpu``/``memory``
    as, or None when the pair is valid now or 0.1.0 would not have stored it."""
    if cpu not in FARGATE_SIZES_MIB or not _OLD_MEMORY.match(memory):
        return None
    if memory_mib(memory) not in FARGATE_SIZES_MIB[cpu] or fargate_size_allowed(cpu, memory):
        return None
    billed = fargate_billed_size(cpu, memory_mib(memory))
    if billed is None:  # 0.1.0 allowed no such pair
        return None
    vcpu, mib = billed
    return vcpu, f"{mib - FARGATE_MEMORY_OVERHEAD_MIB}Mi"


def size_changes(job: Mapping[str, Any]) -> list[FieldChange]:
    """The cpu/memory of a 0.1.0 spec.job this release refuses, as the size it was billed as."""
    if job.get("compute", "fargate") != "fargate":
        return []
    cpu, memory = job.get("cpu"), job.get("memory")
    if not isinstance(cpu, str) or not isinstance(memory, str):
        return []
    request = billed_size_request(cpu, memory)
    if request is None:
        return []
    new_cpu, new_memory = request
    changes = [FieldChange("memory", memory, new_memory)]
    if new_cpu != cpu:
        changes.insert(0, FieldChange("cpu", cpu, new_cpu))
    return changes


def default_changes(job: Mapping[str, Any]) -> list[FieldChange]:
    """The history limits and TTL equal to 0.1.0's defaults, as this release's defaults."""
    changes = []
    for field, old in OLD_JOB_DEFAULTS.items():
        value = job.get(field)
        if value == old and type(value) is int:
            new = JobSettings.model_fields[_FIELD_NAMES[field]].default
            changes.append(FieldChange(field, old, new))
    return changes


def with_billed_sizes(raw_spec: Mapping[str, Any]) -> dict[str, Any]:
    """``raw_spec`` with a 0.1.0 size this release refuses replaced by the size it was
    billed as: what admission validates, so such a resource runs before (and whether or
    not) the upgrade is written back."""
    job = raw_spec.get("job")
    if not isinstance(job, Mapping):
        return dict(raw_spec)
    changes = size_changes(job)
    if not changes:
        return dict(raw_spec)
    return {**raw_spec, "job": {**job, **{c.field: c.new for c in changes}}}


def stored_spec_upgrade(
    raw_spec: Mapping[str, Any], annotations: Mapping[str, Any]
) -> SpecUpgrade | None:
    """What to write back to a resource as stored, or None when nothing is to be written
    (it is marked and its size is valid)."""
    job = raw_spec.get("job")
    job = job if isinstance(job, Mapping) else {}
    marked = SPEC_DEFAULTS_ANNOTATION in annotations
    changes = size_changes(job) + ([] if marked else default_changes(job))
    if marked and not changes:
        return None
    return SpecUpgrade(tuple(changes))
