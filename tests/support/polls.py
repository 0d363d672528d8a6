"""A poll's plan as run_poll makes it, for tests that start from an Observation."""

from __future__ import annotations

from dataclasses import replace

from snowflake_operator.poll import planning
from snowflake_operator.poll.job_count import launches_allowed
from snowflake_operator.poll.planning import Observation, PollPlan
from snowflake_operator.spec.model import ProcessorSpec


def plan_poll(name: str, spec: ProcessorSpec, seen: Observation) -> PollPlan:
    """As run_poll does: how many Jobs is decided first (job_count), then the plan."""
    wanted = 0
    if not spec.suspend:
        wanted = launches_allowed(spec, seen.counts, seen.occupied, seen.backoff, seen.now)
    return planning.plan_poll(name, spec, replace(seen, wanted_jobs=wanted))
