"""Operator cost per poll: Kubernetes API requests and the reconcile's own wall time.

Runs the real operator (kopf, the handlers module) against the Kubernetes emulator used
by the tests, for one SnowflakeProcessor with 20 unfinished Jobs and nothing to launch,
and counts the requests the emulator serves per poll (watch streams excluded: they are
opened once; polls counted by the operator's own reconcile counter). Nothing changes
from one poll to the next, so a poll should write nothing. The wall time of one
reconcile excluding Snowflake is the decision work a poll does for that resource:
reading 20 Jobs from the index, planning, conditions.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tests.support.polls import plan_poll

from snowflake_devtools.snowflake_emulator import free_port
from snowflake_operator.constants import PROCESSOR_LABEL
from snowflake_operator.poll.job_history import job_record, jobs_beyond_history, unfinished_names
from snowflake_operator.poll.planning import Observation, merge_conditions
from snowflake_operator.spec.model import ProcessorSpec
from snowflake_worker.queue_records import QueueCounts

from .harness import bench_environment
from .operator_world import WRITES, kube_world, metric_total, processor_body, wait

UNFINISHED_JOBS = 20
NAMESPACE = "bench"
POLLS = "snowflake_processor_reconcile_duration_seconds_count"


def requests_per_poll(polls: int = 10) -> dict[str, Any]:
    """Kubernetes API requests per poll, watches aside, for a resource with 20 unfinished
    Jobs whose backlog they already cover (nothing to launch, nothing changes)."""
    import kopf.testing
    from kubernetes import client, config

    metrics_port = free_port()
    with (
        bench_environment(latency_ms=1) as bench,
        tempfile.TemporaryDirectory() as tmp,
        kube_world(Path(tmp)) as world,
    ):
        queue = bench.fresh_queue("OPERATOR_BENCH")
        queue.enqueue((f"e{i}", {"n": i}) for i in range(1500))  # 15 Jobs' worth < 20
        os.environ.update(world.environment(), SFP_OPERATOR_METRICS_PORT=str(metrics_port))
        os.environ.setdefault("SFP_OPERATOR_HEALTH_PORT", "0")
        # kubernetes.config read $KUBECONFIG at import; kopf's login uses that copy.
        config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(world.kubeconfig)
        batch = client.BatchV1Api(world.api)
        for index in range(UNFINISHED_JOBS):
            batch.create_namespaced_job(NAMESPACE, _job(f"running-{index}"))
        world.create_processor(
            NAMESPACE,
            processor_body(
                "bench",
                NAMESPACE,
                "OPERATOR_BENCH",
                bench.snowflake.port,
                world.bucket,
                job={"entriesPerJob": 100, "maxActiveJobs": 19},
                pollIntervalSeconds=1,
            ),
        )
        args = ["run", "--standalone", "-A", "-m", "snowflake_operator.daemon.handlers"]
        with kopf.testing.KopfRunner(args, timeout=120):
            wait(lambda: _polls(metrics_port) >= 3)  # settled: Secret synced, polls running
            time.sleep(1)
            world.reset_requests()
            before = _polls(metrics_port)
            wait(lambda: _polls(metrics_port) >= before + polls, timeout=120)
            made = _polls(metrics_port) - before
            entries = world.requests()
        jobs = batch.list_namespaced_job(NAMESPACE).items
    served = [e for e in entries if e.get("action") != "watch"]
    kinds = Counter(f"{e['method']} {e.get('resource')}" for e in served)
    return {
        "polls": made,
        "unfinished_jobs": UNFINISHED_JOBS,
        "jobs_after": len(jobs),
        "requests_per_poll": round(len(served) / made, 2),
        "writes_per_poll": round(sum(1 for e in served if e["method"] in WRITES) / made, 2),
        "requests": dict(kinds),
    }


def _polls(metrics_port: int) -> int:
    try:
        return int(metric_total(metrics_port, POLLS))
    except OSError:  # not listening yet
        return 0


def _job(name: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "labels": {PROCESSOR_LABEL: "bench"}},
        "spec": {
            "template": {
                "spec": {"restartPolicy": "Never", "containers": [{"name": "w", "image": "x"}]}
            }
        },
    }


def reconcile_wall_time(iterations: int = 2000) -> dict[str, Any]:
    """The per-poll decision work for 20 unfinished Jobs, Snowflake and I/O excluded."""
    spec = ProcessorSpec.model_validate(
        {
            "snowflake": {"account": "a", "database": "D", "schema": "S", "table": "T"},
            "endpoint": {"url": "https://x/"},
            "job": {"entriesPerJob": 100, "maxActiveJobs": 19},
        }
    )
    raw_jobs = [({"creationTimestamp": "2026-11-25T10:00:00Z"}, {"active": 1}) for _ in range(20)]
    counts = QueueCounts(1500, 1500, 0, 0, 0, 30)
    previous: list[dict[str, Any]] = []
    started = time.perf_counter()
    for _ in range(iterations):
        records = [job_record(f"j{i}", meta, status) for i, (meta, status) in enumerate(raw_jobs)]
        unfinished = unfinished_names(records)
        jobs_beyond_history(records, 3, 5)
        now = datetime.now(UTC)
        plan = plan_poll("bench", spec, Observation(now, len(unfinished), counts))
        previous = merge_conditions(previous, plan.conditions, now)
        assert not plan.launch
    per_call = (time.perf_counter() - started) / iterations
    return {"reconcile_wall_time_us": round(per_call * 1e6, 1), "iterations": iterations}
