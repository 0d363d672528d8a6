"""The Fargate cost model the benchmark reports, per 1,000 entries.

    billed seconds = starts x START_BILLED_SECONDS + run_seconds
    vCPU-seconds   = billed seconds x billed vCPU
    GB-seconds     = billed seconds x billed GB
    dollars        = vCPU-seconds x VCPU_HOUR_USD / 3600 + GB-seconds x GB_HOUR_USD / 3600

Assumptions, stated so the figures can be checked and re-done with other numbers:

* The billed size is not the requested one. EKS Fargate adds 256 MB to every pod's memory
  request (kubelet, kube-proxy, containerd) and bills the smallest Fargate size that
  holds the vCPU request and that sum ("a request for 1 vCPU and 8 GB will provision
  2 vCPUs and 9 GB"): a Job requesting 0.5 vCPU / 1Gi is billed as 0.5 vCPU / 2 GB, one
  requesting 0.5 vCPU / 768Mi as 0.5 vCPU / 1 GB. The legacy design runs ECS tasks, which are
  billed at their task size as written (1 vCPU / 2 GB): no overhead is added there.
* A start bills about ``START_BILLED_SECONDS`` = 60 s before the task does any work.
  Fargate bills a task from the moment it begins pulling its image until it stops; the
  measured start of a pod on EKS Fargate (scheduling, ENI attachment, image pull with no
  image cache, interpreter start) is about a minute. The legacy design's own document launches a
  task per 8 entries every minute, so each of its tasks pays this once.
* ``run_seconds`` is the time the processes themselves report working (the legacy design task: from
  its Snowflake connection to its exit; our worker: its drain loop), measured here on this
  machine. On 2 shared cores the legacy design's 25-50 concurrent processes run slower than on
  their own Fargate vCPUs, which inflates the legacy design's run part; the start part dominates
  both sides anyway, and both parts are reported separately.
* A finished pod is deleted as soon as its summary is counted (the operator does that), so
  nothing is billed after the run; a pod kept after it ends (history, a long TTL) keeps
  billing at the same rate and is not in these figures.
* Prices: Linux/x86 in us-east-1 at the time of writing (``VCPU_HOUR_USD``,
  ``GB_HOUR_USD``); check the AWS pricing page for yours. Fargate's one-minute minimum
  charge is ignored; it would only add to the legacy design's short-lived tasks.
"""

from __future__ import annotations

from typing import Any

from snowflake_operator.spec.fargate_sizes import (
    FARGATE_MEMORY_OVERHEAD_MIB,
    fargate_billed_size,
    memory_mib,
)
from snowflake_operator.spec.model import JobSettings

START_BILLED_SECONDS = 60.0
VCPU_HOUR_USD = 0.04048
GB_HOUR_USD = 0.004445
# The legacy design: aws_ecs_task_definition.processor cpu = "1024", memory = "2048"
# (ECS bills as written).
LEGACY_TASK = {"cpu": "1", "memory": "2Gi"}
# Ours: the SnowflakeProcessor defaults (spec.job.cpu 0.5, spec.job.memory 768Mi).
OURS_JOB = {"cpu": JobSettings().cpu, "memory": JobSettings().memory}
# What the same Job was billed as before its request was chosen to fit (0.5 vCPU / 1Gi).
OURS_JOB_BEFORE = {"cpu": "0.5", "memory": "1Gi"}


def billed_size(cpu: str, memory: str, *, overhead: bool = True) -> tuple[float, float]:
    """(vCPU, GB) Fargate bills for a pod (overhead=True: EKS) or an ECS task of this size."""
    if not overhead:
        return float(cpu), memory_mib(memory) / 1024
    billed = fargate_billed_size(cpu, memory_mib(memory))
    if billed is None:
        raise ValueError(
            f"{cpu} vCPU / {memory} + {FARGATE_MEMORY_OVERHEAD_MIB}Mi fits no Fargate size"
        )
    vcpu, mib = billed
    return float(vcpu), mib / 1024


def fargate_cost(
    *,
    starts: int,
    run_seconds: float,
    cpu: str,
    memory: str,
    entries: int,
    overhead: bool = True,
    start_billed_seconds: float = START_BILLED_SECONDS,
) -> dict[str, Any]:
    """The model's figures for one run, per 1,000 entries (and its inputs)."""
    if entries <= 0:
        raise ValueError("entries must be positive")
    vcpu, gb = billed_size(cpu, memory, overhead=overhead)
    per_1000 = 1000.0 / entries
    start_seconds = starts * start_billed_seconds
    billed_seconds = start_seconds + run_seconds
    vcpu_seconds = billed_seconds * vcpu
    gb_seconds = billed_seconds * gb
    usd = (vcpu_seconds * VCPU_HOUR_USD + gb_seconds * GB_HOUR_USD) / 3600
    return {
        "requested": f"{cpu} vCPU / {memory}",
        "billed": f"{vcpu:g} vCPU / {gb:g} GB",
        "task_vcpu": vcpu,
        "task_gb": gb,
        "memory_overhead_mib": FARGATE_MEMORY_OVERHEAD_MIB if overhead else 0,
        "start_billed_seconds": start_billed_seconds,
        "starts": starts,
        "run_seconds": round(run_seconds, 2),
        "start_vcpu_seconds_per_1000_entries": round(start_seconds * vcpu * per_1000, 1),
        "run_vcpu_seconds_per_1000_entries": round(run_seconds * vcpu * per_1000, 1),
        "vcpu_seconds_per_1000_entries": round(vcpu_seconds * per_1000, 1),
        "gb_seconds_per_1000_entries": round(gb_seconds * per_1000, 1),
        "usd_per_1000_entries": round(usd * per_1000, 5),
    }
