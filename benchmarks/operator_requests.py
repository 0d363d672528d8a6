"""Operator cost per poll: Kubernetes API requests and the reconcile's own wall time.

Runs the real operator (kopf, the handlers module) against the Kubernetes emulator used
by the tests, for one SnowflakeProcessor with 20 unfinished Jobs and nothing to launch,
and counts the requests the emulator serves per poll (watch streams excluded: they are
opened once). The wall time of one reconcile excluding Snowflake is the decision work a
poll does for that resource: reading 20 Jobs from the index, planning, conditions.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import trustme
from moto.server import ThreadedMotoServer

from snowflake_operator.constants import GROUP, PLURAL, PROCESSOR_LABEL, VERSION
from snowflake_operator.job_history import job_record, jobs_beyond_history, unfinished_names
from snowflake_operator.planning import Observation, merge_conditions, plan_poll
from snowflake_operator.spec import ProcessorSpec
from snowflake_worker.queue import QueueCounts

from .harness import bench_environment

UNFINISHED_JOBS = 20
NAMESPACE = "bench"


def _moto_bucket(ca: trustme.CA) -> tuple[ThreadedMotoServer, str, str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    os.environ.update(
        SFP_OPERATOR_S3_ENDPOINT_URL=endpoint,
        AWS_ACCESS_KEY_ID="bench",
        AWS_SECRET_ACCESS_KEY="bench",
        AWS_DEFAULT_REGION="us-east-1",
    )
    s3 = boto3.client("s3", region_name="us-east-1", endpoint_url=endpoint)
    bucket = f"certs-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    now = datetime.now(UTC)
    leaf = ca.issue_cert(
        "client", not_before=now - timedelta(days=1), not_after=now + timedelta(days=90)
    )
    files = {
        "client.pem": leaf.cert_chain_pems[0].bytes(),
        "client-key.pem": leaf.private_key_pem.bytes(),
        "ca-cert.pem": ca.cert_pem.bytes(),
    }
    for name, data in files.items():
        s3.put_object(Bucket=bucket, Key=f"prod/{name}", Body=data)
    return server, endpoint, bucket


def requests_per_poll(polls: int = 10) -> dict[str, Any]:
    os.environ.setdefault("SFP_OPERATOR_TICK_SECONDS", "0.2")
    import kopf.testing
    from kubernetes import client, config
    from tests.support.kube_server import start_kube_emulator, write_kubeconfig

    with bench_environment(latency_ms=1) as bench, tempfile.TemporaryDirectory() as tmp:
        queue = bench.fresh_queue("OPERATOR_BENCH")
        queue.enqueue((f"e{i}", {"n": i}) for i in range(1500))  # 15 Jobs' worth < 20
        kube = start_kube_emulator(Path(tmp) / "kube.log")
        moto, _, bucket = _moto_bucket(trustme.CA())
        try:
            kubeconfig = write_kubeconfig(Path(tmp) / "kubeconfig", kube.port)
            os.environ["KUBECONFIG"] = str(kubeconfig)
            # kubernetes.config read $KUBECONFIG at import; kopf's login uses that copy.
            config.kube_config.KUBE_CONFIG_DEFAULT_LOCATION = str(kubeconfig)
            configuration = client.Configuration()
            config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
            api = client.ApiClient(configuration)
            batch = client.BatchV1Api(api)
            for index in range(UNFINISHED_JOBS):
                batch.create_namespaced_job(
                    NAMESPACE,
                    {
                        "metadata": {
                            "name": f"running-{index}",
                            "labels": {PROCESSOR_LABEL: "bench"},
                        },
                        "spec": {
                            "template": {
                                "spec": {
                                    "restartPolicy": "Never",
                                    "containers": [{"name": "w", "image": "x"}],
                                }
                            }
                        },
                    },
                )
            client.CustomObjectsApi(api).create_namespaced_custom_object(
                GROUP,
                VERSION,
                NAMESPACE,
                PLURAL,
                {
                    "apiVersion": f"{GROUP}/{VERSION}",
                    "kind": "SnowflakeProcessor",
                    "metadata": {"name": "bench", "namespace": NAMESPACE},
                    "spec": {
                        "snowflake": {
                            "account": "bench",
                            "database": "BENCH",
                            "schema": "QUEUE",
                            "table": "OPERATOR_BENCH",
                            "auth": {"mode": "emulator"},
                            "host": "127.0.0.1",
                            "port": bench.snowflake.port,
                        },
                        "endpoint": {"url": "https://service.example.com/"},
                        "certificates": {"s3": {"bucket": bucket, "prefix": "prod/"}},
                        "job": {"entriesPerJob": 100, "maxActiveJobs": 19, "image": "worker:bench"},
                        "pollIntervalSeconds": 1,
                    },
                },
            )
            log = _RequestLog(kube.port)
            args = ["run", "--standalone", "-A", "-m", "snowflake_operator.handlers"]
            with kopf.testing.KopfRunner(args, timeout=120):
                _wait(lambda: log.count("PATCH") >= 3)  # settled: secret synced, polls running
                log.reset()
                _wait(lambda: log.count("PATCH") >= polls, timeout=120)
                entries = log.entries()
            jobs = batch.list_namespaced_job(NAMESPACE).items
        finally:
            kube.stop()
            moto.stop()
    status_patches = [e for e in entries if e["method"] == "PATCH" and e.get("resource") == PLURAL]
    other = [e for e in entries if e not in status_patches and e.get("action") != "watch"]
    kinds = Counter(f"{e['method']} {e.get('resource')}" for e in other)
    return {
        "polls": len(status_patches),
        "unfinished_jobs": UNFINISHED_JOBS,
        "jobs_after": len(jobs),
        "requests_per_poll": round((len(status_patches) + len(other)) / len(status_patches), 2),
        "requests_beyond_status_patch_per_poll": round(len(other) / len(status_patches), 2),
        "other_requests": dict(kinds),
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


class _RequestLog:
    def __init__(self, port: int) -> None:
        self.url = f"http://127.0.0.1:{port}/_emulator"

    def entries(self) -> list[dict[str, Any]]:
        import json
        import urllib.request

        with urllib.request.urlopen(f"{self.url}/requests", timeout=10) as response:
            return list(json.load(response))

    def count(self, method: str) -> int:
        return sum(
            1 for e in self.entries() if e["method"] == method and e.get("resource") == PLURAL
        )

    def reset(self) -> None:
        import urllib.request

        request = urllib.request.Request(f"{self.url}/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass


def _wait(check: Any, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError("operator benchmark: timed out")
        time.sleep(0.2)
