"""Pending entries no claim will ever take (every attempt used) are reported, not waited
for: the operator, against the Snowflake and Kubernetes emulators, sets the
StrandedEntries condition and the snowflake_processor_stranded_entries gauge, and sleeps."""

from __future__ import annotations

from snowflake_worker.queue import released
from tests.support.operator_world import OperatorWorld
from tests.support.polling import wait_for


def test_stranded_entries_raise_a_condition_and_a_metric_until_they_can_be_claimed(
    world: OperatorWorld,
) -> None:
    world.queue.enqueue([("a", {"n": 1}), ("b", {"n": 2}), ("c", {"n": 3})])
    claimed = world.queue.claim(2, max_attempts=5, processor_id="before")
    world.queue.write_back([released(e, error="HTTP 503") for e in claimed])  # 1 attempt
    world.queue.write_back(
        [released(e) for e in world.queue.claim(1, max_attempts=5, processor_id="x")]
    )
    # maxAttempts 1: the two tried once are stranded, the untried one is claimable.
    stuck = world.create("stuck", queue={"maxAttempts": 1})
    with world.run():
        condition = stuck.wait_for_condition("StrandedEntries", status="True")
        assert condition["reason"] == "AttemptsUsed"
        assert condition["message"].startswith("2 pending entries have used all 1 attempts")
        assert stuck.condition("Ready")["status"] == "True"
        wait_for(lambda: world.metrics("stuck").get("snowflake_processor_stranded_entries") == 2)
        assert len(stuck.jobs()) == 1  # for the claimable one only
        stuck.patch_spec({"queue": {"maxAttempts": 3}})  # what the message suggests
        condition = stuck.wait_for_condition("StrandedEntries", status="False")
        assert condition["reason"] == "NoneStranded"
        wait_for(lambda: world.metrics("stuck").get("snowflake_processor_stranded_entries") == 0)
