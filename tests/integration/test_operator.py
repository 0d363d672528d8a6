"""The operator for real: kopf and the kubernetes client against the Kubernetes emulator,
the Snowflake emulator, moto's S3 server and trustme certificates.

Each test gets a ready world (tests/support/operator_world.py): it fills the queue, creates
SnowflakeProcessor resources, runs the operator and reads back what it did."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta

import kubernetes_validate
import pytest

from snowflake_operator.constants import FINGERPRINT_ANNOTATION, PLURAL
from snowflake_worker.identifiers import TableRef
from snowflake_worker.queue import dead_lettered
from tests.support.cert_bundles import make_bundle
from tests.support.operator_world import NAMESPACE, OperatorWorld, condition
from tests.support.polling import wait_for
from tests.support.ports import closed_port
from tests.support.queues import fill

pytestmark = pytest.mark.integration


def test_backlog_gets_exactly_the_expected_jobs(world: OperatorWorld) -> None:
    fill(world.queue, 250)
    orders = world.create("orders")
    with world.run():
        jobs = wait_for(lambda: len(orders.jobs()) == 3 and orders.jobs())
        status = wait_for(lambda: orders.status().get("backlog") == 250 and orders.status())
        world.wait_for_polls("orders")  # more polls with the 3 Jobs: nothing more may launch
        assert len(orders.jobs()) == 3
    owner = orders.resource()
    for job in jobs:
        manifest = world.api.sanitize_for_serialization(job)
        for key in ("status",):
            manifest.pop(key, None)
        manifest["metadata"] = {
            k: v
            for k, v in manifest["metadata"].items()
            if k in ("name", "namespace", "labels", "ownerReferences")
        }
        kubernetes_validate.validate(manifest, "1.31.0", strict=True)
        (ref,) = job.metadata.owner_references
        assert (ref.kind, ref.name, ref.uid) == (
            "SnowflakeProcessor",
            "orders",
            owner["metadata"]["uid"],
        )
        container = job.spec.template.spec.containers[0]
        env = {e.name: e.value for e in container.env}
        assert env["SFP_SNOWFLAKE_TABLE"] == world.table.table
        assert env["SFP_MAX_ENTRIES"] == "100"
        assert container.image == "registry.example.com/worker:test"
        assert job.spec.template.metadata.labels["snowflake-processor.dev/fargate"] == "true"
    secret = world.core.read_namespaced_secret(orders.secret_name, NAMESPACE)
    assert secret.metadata.owner_references[0].uid == owner["metadata"]["uid"]
    assert (
        condition(status, "Ready")["status"],
        condition(status, "CertificatesSynced")["status"],
    ) == ("True", "True")
    assert status["activeJobs"] == 3
    # `kubectl get sfp` printer columns: Backlog, Active, Failed, Ready
    printed = [
        status["backlog"],
        status["activeJobs"],
        status["failed"],
        condition(status, "Ready")["status"],
    ]
    assert printed == [250, 3, 0, "True"]


def test_cap_holds_with_jobs_running_or_pending_and_a_restart_launches_nothing_twice(
    world: OperatorWorld,
) -> None:
    fill(world.queue, 1000)
    world.add_job("running-0", "orders", status={"active": 1})
    world.add_job("pending-0", "orders")
    orders = world.create("orders")
    with world.run():
        wait_for(lambda: len(orders.jobs()) == 4, what="the cap of 4")
        world.wait_for_polls("orders")  # polls at the cap
    assert len(orders.jobs()) == 4  # 2 existing + 2 launched: maxActiveJobs 4
    world.kube.reset_requests()
    with world.run():  # a restart: the index is rebuilt from the watch, nothing relaunched
        world.wait_for_polls("orders", 3)
    assert len(orders.jobs()) == 4
    assert world.kube.count(method="POST", resource="jobs") == 0


def test_suspend_stops_launches_and_resumes(world: OperatorWorld) -> None:
    fill(world.queue, 150)
    paused = world.create("paused", suspend=True)
    with world.run():
        wait_for(lambda: paused.condition("Suspended").get("status") == "True")
        world.wait_for_polls("paused")  # suspended polls with a backlog of 150
        assert paused.jobs() == []
        assert paused.condition("Ready")["reason"] == "Suspended"
        paused.patch_spec({"suspend": False})
        wait_for(lambda: len(paused.jobs()) == 2, what="Jobs after resuming")
        wait_for(lambda: paused.condition("Suspended").get("status") == "False")


def test_certificates_synced_once_rotated_on_change_and_block_launches_when_broken(
    world: OperatorWorld,
) -> None:
    certs = world.create("certs")
    name = certs.secret_name
    with world.run():
        first = wait_for(lambda: world.secret(name), what="the Secret")
        wait_for(lambda: certs.condition("Ready").get("status") == "True")
        world.wait_for_polls("certs", 3)  # several polls with unchanged objects
        assert world.core.read_namespaced_secret(name, NAMESPACE).metadata.resource_version == (
            first.metadata.resource_version
        )
        assert world.kube.count(method="POST", resource="secrets") == 1
        # rotate: new objects in S3
        world.put_certificates(
            make_bundle(world.ca, not_after=datetime.now(UTC) + timedelta(days=30))
        )
        rotated = wait_for(
            lambda: (
                (s := world.secret(name))
                and s.metadata.annotations[FINGERPRINT_ANNOTATION]
                != first.metadata.annotations[FINGERPRINT_ANNOTATION]
                and s
            )
        )
        assert rotated.data["client.pem"] != first.data["client.pem"]
        wait_for(lambda: world.events("CertificatesRotated"), what="a rotation event")
        # break it: a file goes missing, then launches stop
        world.delete_certificate("ca-cert.pem")
        blocked = wait_for(
            lambda: (
                certs.condition("CertificatesSynced").get("status") == "False" and certs.status()
            )
        )
        assert "ca-cert.pem" in condition(blocked, "CertificatesSynced")["message"]
        fill(world.queue, 300)
        world.wait_for_polls("certs")  # polls that would launch for the 300 entries
        assert certs.jobs() == []
        assert any("ca-cert.pem" in e.message for e in world.events("CertificatesInvalid"))
        # mend it: launches resume
        world.put_certificates({"ca-cert.pem": world.ca.cert_pem.bytes()})
        wait_for(lambda: len(certs.jobs()) == 3, what="Jobs after the fix")


def test_broken_key_blocks_launches(world: OperatorWorld) -> None:
    world.put_certificates({"client-key.pem": make_bundle(world.ca)["client-key.pem"]})
    fill(world.queue, 100)
    mismatch = world.create("mismatch")
    with world.run():
        status = wait_for(
            lambda: (
                mismatch.condition("CertificatesSynced").get("status") == "False"
                and mismatch.status()
            )
        )
        world.wait_for_polls("mismatch")  # more polls with a backlog and the broken key
    assert "client-key.pem" in condition(status, "CertificatesSynced")["message"]
    assert mismatch.jobs() == []


def test_snowflake_unreachable_sets_the_condition_and_recovers(world: OperatorWorld) -> None:
    fill(world.queue, 100)
    flaky = world.create("flaky", snowflake={"port": closed_port()})
    with world.run():
        down = wait_for(
            lambda: (
                flaky.condition("SnowflakeReachable").get("status") == "False" and flaky.status()
            ),
            timeout=60,
        )
        assert condition(down, "Ready")["status"] == "False"
        assert flaky.jobs() == []
        flaky.patch_spec({"snowflake": {"port": world.snowflake_port}})
        wait_for(lambda: flaky.condition("SnowflakeReachable").get("status") == "True", timeout=60)
        wait_for(lambda: len(flaky.jobs()) == 1)


def test_two_resources_do_not_interfere_and_history_is_trimmed(world: OperatorWorld) -> None:
    other = world.new_queue("OTHER_QUEUE")
    fill(world.queue, 200)
    other.enqueue((f"o{i}", {"n": i}) for i in range(100))
    no_history = {"successfulJobsHistoryLimit": 0}
    alpha = world.create("alpha", job=no_history)
    beta = world.create("beta", table=other.table, job=no_history)
    with world.run():
        wait_for(lambda: len(alpha.jobs()) == 2 and len(beta.jobs()) == 1)
        assert alpha.status().get("backlog") == 200
        assert beta.status().get("backlog") == 100
        (first,) = beta.jobs()
        summary = {"event": "summary", "claimed": 50, "completed": 47, "failed": 3}
        world.settle_as(first, 47, 3, queue=other)
        world.worker_pod(first, summary)
        world.finish(first)
        totals = wait_for(lambda: beta.status().get("totals", {}).get("completed"))
        assert beta.status()["totals"] == {"completed": 47, "failed": 3}
        assert totals == 47
        # history limit 0: the finished Job is deleted; the 50 entries left then get a
        # fresh Job, while alpha's Jobs are untouched
        wait_for(
            lambda: first.metadata.name not in {j.metadata.name for j in beta.jobs()},
            what="the finished Job deleted",
        )
        wait_for(lambda: len(beta.jobs()) == 1, what="a new Job for beta")
        world.wait_for_polls("alpha")
        assert len(alpha.jobs()) == 2


def test_a_counted_job_is_deleted_at_once_and_recorded_by_an_event(world: OperatorWorld) -> None:
    """A finished pod on Fargate is billed until it is removed: by default (no history
    limits set) the poll that counts a Job's summary deletes the Job (propagation
    Background removes its pod), and an Event keeps what it did."""
    fill(world.queue, 50)
    lean = world.create("lean")
    with world.run():
        (job,) = wait_for(lambda: lean.jobs() or None, what="a Job")
        assert job.spec.ttl_seconds_after_finished == 300  # the safety net, not an hour
        summary = {"event": "summary", "claimed": 50, "completed": 48, "failed": 2}
        world.settle_as(job, 48, 2)
        world.worker_pod(job, summary)
        world.finish(job)
        wait_for(lambda: lean.status().get("totals", {}).get("completed") == 48, what="counted")
        wait_for(
            lambda: job.metadata.name not in {j.metadata.name for j in lean.jobs()},
            what="the counted Job deleted",
        )
        (event,) = wait_for(lambda: world.events("JobSucceeded") or None, what="its Event")
    assert event.type == "Normal"
    assert (
        event.message
        == f"Job {job.metadata.name} succeeded: 48 entries completed, 2 failed for good"
    )
    assert event.involved_object.name == "lean"


def test_no_list_call_per_tick(world: OperatorWorld) -> None:
    fill(world.queue, 100)  # one Job's worth; the Job is unfinished: nothing more to launch
    quiet = world.create("quiet")
    with world.run():
        wait_for(lambda: len(quiet.jobs()) == 1)
        wait_for(lambda: world.events("JobsLaunched"), what="the launch's Event")
        world.wait_for_polls("quiet")  # the launching poll's writes have all landed
        world.kube.reset_requests()
        world.wait_for_polls("quiet", 4)
        requests = world.kube.requests()
    polls = [r for r in requests if r["method"] == "PATCH" and r["resource"] == PLURAL]
    others = [r for r in requests if r not in polls and r["action"] != "watch"]
    assert others == [], others  # no list, no get, no create: only the status patch
    assert all(r.get("subresource") == "status" for r in polls)


def test_snowflake_password_never_leaves_its_secret(
    world: OperatorWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SFP_OPERATOR_ALLOWED_SECRETS", '["sf-login"]')
    password = "Pa55-never-log-" + uuid.uuid4().hex
    world.core.create_namespaced_secret(
        NAMESPACE, {"metadata": {"name": "sf-login"}, "stringData": {"password": password}}
    )
    fill(world.queue, 100)
    auth = {"mode": "password", "passwordSecret": {"name": "sf-login", "key": "password"}}
    legacy = world.create("legacy", snowflake={"user": "LEGACY_USER", "auth": auth})
    with world.run() as runner:
        # The operator reads the Secret and logs in with it; the emulator only speaks plain
        # HTTP, which password mode does not, so the login fails: a path that reports errors.
        wait_for(
            lambda: legacy.condition("SnowflakeReachable").get("status") == "False",
            what="the login attempt reported",
        )
        world.wait_for_polls("legacy", timeout=60)  # more logins, their errors reported
    assert world.kube.count(method="GET", resource="secrets", name="sf-login") >= 1
    everything = [
        str(legacy.status()),
        str([e.message for e in world.events()]),
        runner.output,
    ]
    assert not [text for text in everything if password in text]


def test_metrics_are_exposed_per_resource(world: OperatorWorld) -> None:
    fill(world.queue, 230)
    claimed = world.queue.claim(5, max_attempts=5, processor_id="someone")
    world.queue.write_back([dead_lettered(e, "HTTP 422: no") for e in claimed[:2]])
    measured = world.create("measured")
    with world.run():
        wait_for(lambda: len(measured.jobs()) == 3)
        values = wait_for(
            lambda: (
                (v := world.metrics("measured")).get("snowflake_processor_active_jobs", -1)
                + v.get("snowflake_processor_pending_jobs", -1)
                == 3
                and v
            ),
            what="metrics after the launch",
        )
    assert values["snowflake_processor_backlog"] == 225
    assert values["snowflake_processor_processing"] == 3
    assert values["snowflake_processor_dead_letters"] == 2
    assert values["snowflake_processor_jobs_launched_total"] == 3
    assert values["snowflake_processor_pending_jobs"] == 3  # no pod runs: no Job controller
    assert values["snowflake_processor_snowflake_statements_total[counts]"] >= 1
    assert values["snowflake_processor_reconcile_duration_seconds_count"] >= 1
    assert values["snowflake_processor_certificate_expiry_timestamp_seconds"] > time.time()
    assert (
        abs(values["snowflake_processor_last_successful_poll_timestamp_seconds"] - time.time()) < 60
    )


def test_the_batch_sizes_workers_chose_and_the_job_limit_are_exposed(
    world: OperatorWorld,
) -> None:
    """A finished Job's summary tells the claim and write-back sizes its worker chose (they
    are sized by time, so only the worker knows them); the operator exports the last ones,
    and the Job limit the table's lock sets."""
    fill(world.queue, 50)
    sized = world.create("sized", queue={"lockHoldSeconds": 1, "lockShare": 0.3})
    batches = {
        "claims": 3,
        "claim_size_last": 4800,
        "write_backs": 4,
        "write_back_size_mean": 1250.0,
    }
    with world.run():
        (job,) = wait_for(lambda: sized.jobs() or None, what="a Job")
        summary = {"event": "summary", "claimed": 50, "completed": 50, "failed": 0}
        world.worker_pod(job, {**summary, "batches": batches})
        world.finish(job)
        values = wait_for(
            lambda: (
                (v := world.metrics("sized")).get("snowflake_processor_worker_claim_size") and v
            ),
            what="the Job's batch sizes in the metrics",
        )
        status = sized.status()
    assert values["snowflake_processor_worker_claim_size"] == 4800
    assert values["snowflake_processor_worker_write_back_size"] == 1250
    # 1 s x (1/15 + 1/10) = 1/6 of the lock per Job; 30% allows one Job
    assert values["snowflake_processor_job_limit"] == 1
    assert status["jobLimit"] == 1
    assert 0 < status["tableLockShare"] <= 0.3


def test_a_bad_spec_is_reported_and_other_resources_keep_working(world: OperatorWorld) -> None:
    """What a cluster without CEL (or an older CRD) would let through reaches the operator."""
    fill(world.queue, 100)
    elsewhere = TableRef(world.table.database, world.table.schema, "BROKEN_QUEUE")
    broken = world.create("broken", table=elsewhere, endpoint={"url": "http://plain.example.com/"})
    healthy = world.create("healthy")
    with world.run():
        ready = wait_for(lambda: broken.condition("Ready"), what="Ready")
        wait_for(lambda: len(healthy.jobs()) == 1, what="the healthy one's Job")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "spec.endpoint.url" in ready["message"] and "https" in ready["message"]
    assert broken.jobs() == []
    events = world.events()
    assert any(e.reason == "InvalidSpec" and "endpoint" in e.message for e in events)
