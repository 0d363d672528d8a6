"""The Fargate cost model the benchmark reports: vCPU-seconds per 1,000 entries.

    vcpu_seconds = starts x START_BILLED_SECONDS x task_vcpu + run_seconds x task_vcpu

Assumptions, stated so the figure can be checked and re-done with other numbers:

* A start bills about ``START_BILLED_SECONDS`` = 60 s before the task does any work.
  Fargate bills a task from the moment it begins pulling its image until it stops; the
  measured start of a pod on EKS Fargate (scheduling, ENI attachment, image pull with no
  image cache, interpreter start) is about a minute. The seed's own document launches a
  task per 8 entries every minute, so each of its tasks pays this once.
* ``run_seconds`` is the time the processes themselves report working (the seed task: from
  its Snowflake connection to its exit; our worker: its drain loop), measured here on this
  machine. On 2 shared cores the seed's 25-50 concurrent processes run slower than on
  their own Fargate vCPUs, which inflates the seed's run part; the start part dominates
  both sides anyway, and both parts are reported separately.
* vCPU per task: the seed's ECS task definition says ``cpu = "1024"`` (1 vCPU, 2 GB); our
  Job's default is ``job.cpu`` 0.5 vCPU (1 GiB). Memory is billed too, in the same
  proportion for both designs (2 GB per vCPU), so it does not change the ratio.
* Fargate's one-minute minimum charge is ignored; it would only add to the seed's
  short-lived tasks.
"""

from __future__ import annotations

from typing import Any

START_BILLED_SECONDS = 60.0
SEED_TASK_VCPU = 1.0  # seed: aws_ecs_task_definition.processor cpu = "1024"
OURS_JOB_VCPU = 0.5  # ours: JobSettings.cpu default "0.5"


def vcpu_seconds(
    *,
    starts: int,
    run_seconds: float,
    task_vcpu: float,
    entries: int,
    start_billed_seconds: float = START_BILLED_SECONDS,
) -> dict[str, Any]:
    """The model's figures for one run, per 1,000 entries (and its inputs)."""
    if entries <= 0:
        raise ValueError("entries must be positive")
    start_part = starts * start_billed_seconds * task_vcpu
    run_part = run_seconds * task_vcpu
    per_1000 = 1000.0 / entries
    return {
        "task_vcpu": task_vcpu,
        "start_billed_seconds": start_billed_seconds,
        "starts": starts,
        "run_seconds": round(run_seconds, 2),
        "start_vcpu_seconds_per_1000_entries": round(start_part * per_1000, 1),
        "run_vcpu_seconds_per_1000_entries": round(run_part * per_1000, 1),
        "vcpu_seconds_per_1000_entries": round((start_part + run_part) * per_1000, 1),
    }
