"""What EKS Fargate cannot run is refused with compute fargate, at once and naming the
field (the EKS user guide's "AWS Fargate considerations"), and allowed with compute nodes."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from snowflake_operator.spec.model import (
    FARGATE_DEADLINE_MESSAGE,
    FARGATE_PULL_POLICY_MESSAGE,
    FARGATE_START_SECONDS,
    FARGATE_VOLUMES_MESSAGE,
    ProcessorSpec,
)
from tests.support.specs import MINIMAL_SPEC, merged

EPHEMERAL = {
    "volumeClaimTemplate": {
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}
    }
}
CASES: list[tuple[str, dict[str, Any], dict[str, Any], str]] = [
    ("pull-never", {"imagePullPolicy": "Never"}, {}, FARGATE_PULL_POLICY_MESSAGE),
    (
        "csi",
        {"volumes": [{"name": "x", "csi": {"driver": "efs.csi.aws.com"}}]},
        {},
        FARGATE_VOLUMES_MESSAGE,
    ),
    (
        "ephemeral",
        {"volumes": [{"name": "x", "ephemeral": EPHEMERAL}]},
        {},
        FARGATE_VOLUMES_MESSAGE,
    ),
    ("deadline", {"activeDeadlineSeconds": 100}, {}, FARGATE_DEADLINE_MESSAGE),
    ("short-lease", {}, {"leaseSeconds": 180}, FARGATE_DEADLINE_MESSAGE),  # deadline 120 s
]


def spec(job: dict[str, Any], queue: dict[str, Any]) -> dict[str, Any]:
    return merged(MINIMAL_SPEC, job=job, queue=queue) if queue else merged(MINIMAL_SPEC, job=job)


@pytest.mark.parametrize(
    ("job", "queue", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_refused_on_fargate_with_the_reason(
    job: dict[str, Any], queue: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        ProcessorSpec.model_validate(spec(job, queue))
    assert message in str(refused.value)


@pytest.mark.parametrize(("job", "queue"), [c[1:3] for c in CASES], ids=[c[0] for c in CASES])
def test_allowed_on_nodes(job: dict[str, Any], queue: dict[str, Any]) -> None:
    ProcessorSpec.model_validate(spec({**job, "compute": "nodes"}, queue))


def test_the_shortest_deadline_fargate_allows_leaves_a_start_and_the_write_back() -> None:
    grace = 20
    shortest = grace + 15 + FARGATE_START_SECONDS
    fits = ProcessorSpec.model_validate(spec({"activeDeadlineSeconds": shortest}, {}))
    assert fits.worker_claim_deadline_seconds() == FARGATE_START_SECONDS
    with pytest.raises(ValidationError):
        ProcessorSpec.model_validate(spec({"activeDeadlineSeconds": shortest - 1}, {}))
