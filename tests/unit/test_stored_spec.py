"""Specs release 0.1.0 stored, read by this release (spec/stored_spec.py): sizes it accepted
and this release refuses run as the size Fargate billed them as; its Job history and TTL
defaults become this release's, once."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from snowflake_operator.spec.admission import Admitted, admit
from snowflake_operator.spec.fargate_sizes import (
    FARGATE_SIZES_MIB,
    fargate_billed_size,
    fargate_size_allowed,
    memory_mib,
)
from snowflake_operator.spec.image_reference import repository_pattern
from snowflake_operator.spec.model import JobSettings
from snowflake_operator.spec.reference_policy import ReferencePolicy
from snowflake_operator.spec.stored_spec import (
    OLD_JOB_DEFAULTS,
    SPEC_DEFAULTS_ANNOTATION,
    FieldChange,
    billed_size_request,
    default_changes,
    size_changes,
    stored_spec_upgrade,
    with_billed_sizes,
)
from snowflake_operator.spec.table_claims import TableClaim
from tests.support.specs import MINIMAL_SPEC, merged

ROOT = Path(__file__).resolve().parents[2]
RELEASE_0_1_0 = "e25aa23"  # the commit release 0.1.0 was cut from
POLICY = ReferencePolicy(
    images=(repository_pattern("registry.example.com/worker:1"),),
    service_accounts=("snowflake-processor-worker",),
    secrets=(),
    env_names=(),
)
CLAIM = TableClaim("2026-01-01T00:00:00Z", "ns", "p")


def _old_crd_job_defaults() -> dict[str, Any] | None:
    """spec.job's defaults in 0.1.0's CRD, read from git; None outside a full clone."""
    shown = subprocess.run(
        ["git", "show", f"{RELEASE_0_1_0}:crds/snowflakeprocessors.yaml"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if shown.returncode != 0:
        return None
    crd = yaml.safe_load(shown.stdout)
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    job = spec["properties"]["job"]["properties"]
    return {name: field["default"] for name, field in job.items() if "default" in field}


def test_the_old_defaults_named_here_are_those_0_1_0_wrote() -> None:
    defaults = _old_crd_job_defaults()
    if defaults is None:
        pytest.skip(f"commit {RELEASE_0_1_0} is not in this clone")
    assert (defaults["cpu"], defaults["memory"]) == ("0.5", "1Gi")
    for field, value in OLD_JOB_DEFAULTS.items():
        assert defaults[field] == value, field


def test_the_old_default_size_runs_as_the_size_it_was_billed_as() -> None:
    """0.5 vCPU with 1Gi: Fargate added 256Mi and billed 0.5 vCPU / 2 GB; 1792Mi bills the
    same and is what this release accepts."""
    assert billed_size_request("0.5", "1Gi") == ("0.5", "1792Mi")
    assert fargate_billed_size("0.5", 1024) == fargate_billed_size("0.5", 1792) == ("0.5", 2048)


@pytest.mark.parametrize(
    ("cpu", "mib"),
    [
        (cpu, mib)
        for cpu, sizes in FARGATE_SIZES_MIB.items()
        for mib in sizes
        if (cpu, mib) != ("16", 122880)  # the largest: the next test
    ],
)
def test_every_size_0_1_0_accepted_maps_to_a_valid_size_billed_the_same(cpu: str, mib: int) -> None:
    """0.1.0 accepted exactly the Fargate sizes as requests; each was billed one size up,
    and runs now as the request that bills that size."""
    memory = f"{mib // 1024}Gi" if mib % 1024 == 0 else f"{mib}Mi"
    request = billed_size_request(cpu, memory)
    assert request is not None
    new_cpu, new_memory = request
    assert fargate_size_allowed(new_cpu, new_memory)
    assert fargate_billed_size(new_cpu, memory_mib(new_memory)) == fargate_billed_size(cpu, mib)
    assert float(new_cpu) >= float(cpu) and memory_mib(new_memory) >= mib


def test_a_size_too_big_to_bump_is_left_to_be_refused() -> None:
    """16 vCPU / 120Gi fits no size once Fargate adds its 256Mi: there is nothing it was
    billed as (such a pod never started), so it stays refused with the model's message."""
    assert billed_size_request("16", "120Gi") is None


@pytest.mark.parametrize(
    ("cpu", "memory"),
    [("0.5", "1792Mi"), ("0.5", "1000Mi"), ("3", "1Gi"), ("0.5", "1.5Gi"), ("500m", "1Gi")],
)
def test_sizes_valid_now_or_never_stored_by_0_1_0_are_left_alone(cpu: str, memory: str) -> None:
    assert billed_size_request(cpu, memory) is None


def test_a_bump_of_cpu_is_named() -> None:
    """0.25 vCPU / 2Gi was billed as 0.5 vCPU / 3 GB: no 0.25 size holds 2Gi + 256Mi."""
    assert size_changes({"cpu": "0.25", "memory": "2Gi"}) == [
        FieldChange("cpu", "0.25", "0.5"),
        FieldChange("memory", "2Gi", "2816Mi"),
    ]


def test_sizes_on_nodes_are_not_fargate_sizes() -> None:
    assert size_changes({"compute": "nodes", "cpu": "0.5", "memory": "1Gi"}) == []


def test_admission_runs_a_0_1_0_spec_with_the_billed_size() -> None:
    raw = merged(MINIMAL_SPEC, job={"cpu": "0.5", "memory": "1Gi"})
    admitted = admit(raw, POLICY, CLAIM, [])
    assert isinstance(admitted, Admitted), admitted
    assert (admitted.spec.job.cpu, admitted.spec.job.memory) == ("0.5", "1792Mi")
    assert raw["job"]["memory"] == "1Gi"  # the caller's mapping is not changed


def test_admission_still_refuses_a_size_no_release_accepted() -> None:
    raw = merged(MINIMAL_SPEC, job={"cpu": "0.5", "memory": "1000Mi"})
    assert not isinstance(admit(raw, POLICY, CLAIM, []), Admitted)


def test_with_billed_sizes_keeps_a_spec_without_job_as_it_is() -> None:
    assert with_billed_sizes(MINIMAL_SPEC) == MINIMAL_SPEC


def test_old_history_and_ttl_defaults_become_the_new_ones() -> None:
    changes = default_changes(dict(OLD_JOB_DEFAULTS))
    new = {c.field: c.new for c in changes}
    assert new == {
        "ttlSecondsAfterFinished": JobSettings().ttl_seconds_after_finished,
        "successfulJobsHistoryLimit": JobSettings().successful_jobs_history_limit,
        "failedJobsHistoryLimit": JobSettings().failed_jobs_history_limit,
    }
    assert new["ttlSecondsAfterFinished"] < 3600  # the point: finished pods go sooner


def test_values_other_than_the_old_defaults_are_the_users() -> None:
    job = {"ttlSecondsAfterFinished": 600, "successfulJobsHistoryLimit": 3}
    assert default_changes(job) == [FieldChange("successfulJobsHistoryLimit", 3, 0)]
    assert default_changes({"failedJobsHistoryLimit": True}) == []  # not the number 5


def test_a_0_1_0_resource_gets_one_upgrade_with_every_change_and_the_mark() -> None:
    job = {"cpu": "0.5", "memory": "1Gi", **OLD_JOB_DEFAULTS, "maxActiveJobs": 4}
    upgrade = stored_spec_upgrade(merged(MINIMAL_SPEC, job=job), {})
    assert upgrade is not None
    assert upgrade.patch() == {
        "metadata": {"annotations": {SPEC_DEFAULTS_ANNOTATION: "0.2.0"}},
        "spec": {
            "job": {
                "memory": "1792Mi",
                "ttlSecondsAfterFinished": 300,
                "successfulJobsHistoryLimit": 0,
                "failedJobsHistoryLimit": 0,
            }
        },
    }
    message = upgrade.message()
    assert "job.memory 1Gi -> 1792Mi" in message
    assert "job.ttlSecondsAfterFinished 3600 -> 300" in message


def test_a_marked_resource_keeps_the_old_defaults_a_user_set_again() -> None:
    job = {"cpu": "0.5", "memory": "768Mi", **OLD_JOB_DEFAULTS}
    marked = {SPEC_DEFAULTS_ANNOTATION: "0.2.0"}
    assert stored_spec_upgrade(merged(MINIMAL_SPEC, job=job), marked) is None


def test_a_marked_resource_with_a_refused_size_is_still_upgraded() -> None:
    job = {"cpu": "1", "memory": "2Gi", **OLD_JOB_DEFAULTS}
    marked = {SPEC_DEFAULTS_ANNOTATION: "0.2.0"}
    upgrade = stored_spec_upgrade(merged(MINIMAL_SPEC, job=job), marked)
    assert upgrade is not None
    assert upgrade.patch()["spec"] == {"job": {"memory": "2816Mi"}}


def test_an_unmarked_resource_with_nothing_to_change_gets_the_mark_alone() -> None:
    upgrade = stored_spec_upgrade(MINIMAL_SPEC, {})
    assert upgrade is not None and upgrade.changes == ()
    assert "spec" not in upgrade.patch()
