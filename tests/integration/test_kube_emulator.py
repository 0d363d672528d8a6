"""The Kubernetes API emulator process, checked with the clients the project uses: the sync
``kubernetes`` client and kopf (in its own thread via KopfRunner), both over real HTTP."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from typing import Any

import kopf
import kopf.testing
import pytest
from kubernetes import client, watch
from kubernetes.client.exceptions import ApiException

from tests.support.kube_fixtures import KubeApi
from tests.support.kube_manifests import job_manifest
from tests.support.polling import wait_for

GROUP, VERSION, PLURAL = "snowflake-processor.dev", "v1alpha1", "snowflakeprocessors"
NAMESPACE = "team-a"


def processor_manifest(name: str) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SnowflakeProcessor",
        "metadata": {"name": name},
        "spec": {"maxJobs": 3},
    }


def test_create_job_returns_the_stored_job(kube_client: client.ApiClient) -> None:
    batch = client.BatchV1Api(kube_client)
    created = batch.create_namespaced_job(NAMESPACE, job_manifest("job-1"))

    assert isinstance(created, client.V1Job)
    assert created.metadata is not None
    assert uuid.UUID(created.metadata.uid)
    assert created.metadata.resource_version
    assert created.metadata.creation_timestamp is not None
    assert created.metadata.namespace == NAMESPACE
    assert created.metadata.generation == 1

    fetched = batch.read_namespaced_job("job-1", NAMESPACE)
    assert fetched.metadata.uid == created.metadata.uid
    assert fetched.metadata.namespace == NAMESPACE

    other = batch.create_namespaced_job(NAMESPACE, job_manifest("job-2"))
    assert other.metadata.uid != created.metadata.uid
    assert int(other.metadata.resource_version) > int(created.metadata.resource_version)


def test_creating_the_same_name_twice_is_a_conflict(kube_client: client.ApiClient) -> None:
    batch = client.BatchV1Api(kube_client)
    batch.create_namespaced_job(NAMESPACE, job_manifest("job-1"))
    with pytest.raises(ApiException) as raised:
        batch.create_namespaced_job(NAMESPACE, job_manifest("job-1"))
    assert raised.value.status == 409
    # The same name in another namespace is another object.
    assert batch.create_namespaced_job("team-b", job_manifest("job-1")).metadata.uid


def test_list_filters_by_label_and_field_selectors(kube_client: client.ApiClient) -> None:
    batch = client.BatchV1Api(kube_client)
    batch.create_namespaced_job(NAMESPACE, job_manifest("a", {"app": "sfp", "tier": "worker"}))
    batch.create_namespaced_job(NAMESPACE, job_manifest("b", {"app": "sfp"}))
    batch.create_namespaced_job(NAMESPACE, job_manifest("c", {"app": "other"}))
    batch.create_namespaced_job("team-b", job_manifest("d", {"app": "sfp"}))

    def names(**selectors: str) -> list[str]:
        jobs = batch.list_namespaced_job(NAMESPACE, **selectors)
        return sorted(job.metadata.name for job in jobs.items)

    assert names() == ["a", "b", "c"]
    assert names(label_selector="app=sfp") == ["a", "b"]
    assert names(label_selector="app=sfp,tier=worker") == ["a"]
    assert names(label_selector="app!=sfp") == ["c"]
    assert names(label_selector="tier") == ["a"]
    assert names(label_selector="!tier") == ["b", "c"]
    assert names(label_selector="app in (other, nothing)") == ["c"]
    assert names(label_selector="app notin (other),tier") == ["a"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="metadata.namespace=team-b") == []
    everywhere = batch.list_job_for_all_namespaces(label_selector="app=sfp")
    assert sorted(job.metadata.name for job in everywhere.items) == ["a", "b", "d"]
    with pytest.raises(ApiException) as raised:
        names(label_selector="app=(")
    assert raised.value.status == 400


def test_watch_filters_and_ends_at_its_timeout(kube_client: client.ApiClient) -> None:
    batch = client.BatchV1Api(kube_client)
    batch.create_namespaced_job(NAMESPACE, job_manifest("a", {"app": "sfp"}))
    batch.create_namespaced_job(NAMESPACE, job_manifest("b", {"app": "other"}))

    started = time.monotonic()
    events = list(
        watch.Watch().stream(
            batch.list_namespaced_job, NAMESPACE, label_selector="app=sfp", timeout_seconds=1
        )
    )
    elapsed = time.monotonic() - started

    assert [(e["type"], e["object"].metadata.name) for e in events] == [("ADDED", "a")]
    assert 0.9 < elapsed < 5


def test_watch_from_a_resource_version_streams_later_changes(
    kube_client: client.ApiClient,
) -> None:
    batch = client.BatchV1Api(kube_client)
    batch.create_namespaced_job(NAMESPACE, job_manifest("old"))
    since = batch.list_namespaced_job(NAMESPACE).metadata.resource_version

    def change_later() -> None:
        time.sleep(0.3)  # the watch below is open by then
        batch.create_namespaced_job(NAMESPACE, job_manifest("new"))
        batch.patch_namespaced_job_status("old", NAMESPACE, {"status": {"active": 1}})
        batch.delete_namespaced_job("new", NAMESPACE)

    changer = threading.Thread(target=change_later)
    changer.start()
    events = list(
        watch.Watch().stream(
            batch.list_namespaced_job, NAMESPACE, resource_version=since, timeout_seconds=2
        )
    )
    changer.join()

    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "new"),
        ("MODIFIED", "old"),
        ("DELETED", "new"),
    ]
    assert events[1]["object"].status.active == 1


def test_status_patch_changes_only_status(kube_client: client.ApiClient) -> None:
    batch = client.BatchV1Api(kube_client)
    created = batch.create_namespaced_job(NAMESPACE, job_manifest("job-1"))

    running = batch.patch_namespaced_job_status(
        "job-1", NAMESPACE, {"status": {"active": 1}, "spec": {"parallelism": 7}}
    )
    assert running.status.active == 1
    assert running.spec.parallelism == 1
    assert int(running.metadata.resource_version) > int(created.metadata.resource_version)
    assert running.metadata.generation == 1

    done = batch.patch_namespaced_job_status(
        "job-1", NAMESPACE, {"status": {"active": None, "succeeded": 1}}
    )
    assert done.status.succeeded == 1
    assert done.status.active is None

    # The main endpoint changes metadata and spec, never status.
    relabelled = batch.patch_namespaced_job(
        "job-1",
        NAMESPACE,
        {"metadata": {"labels": {"x": "y"}}, "spec": {"parallelism": 2}, "status": {"failed": 3}},
    )
    assert relabelled.metadata.labels == {"x": "y"}
    assert relabelled.spec.parallelism == 2
    assert relabelled.metadata.generation == 2
    assert relabelled.status.failed is None
    assert relabelled.status.succeeded == 1
    stored = batch.read_namespaced_job("job-1", NAMESPACE)
    assert stored.status.succeeded == 1
    assert stored.spec.parallelism == 2


def test_delete_job(kube_client: client.ApiClient) -> None:
    batch = client.BatchV1Api(kube_client)
    batch.create_namespaced_job(NAMESPACE, job_manifest("job-1"))
    batch.create_namespaced_job(NAMESPACE, job_manifest("job-2"))

    batch.delete_namespaced_job("job-1", NAMESPACE, propagation_policy="Background")

    with pytest.raises(ApiException) as raised:
        batch.read_namespaced_job("job-1", NAMESPACE)
    assert raised.value.status == 404
    assert [j.metadata.name for j in batch.list_namespaced_job(NAMESPACE).items] == ["job-2"]
    with pytest.raises(ApiException) as raised:
        batch.delete_namespaced_job("job-1", NAMESPACE)
    assert raised.value.status == 404
    # The name is free again.
    assert batch.create_namespaced_job(NAMESPACE, job_manifest("job-1")).metadata.uid


def test_custom_resource_with_status_subresource(kube_client: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(kube_client)
    created = custom.create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, processor_manifest("proc-1")
    )
    assert uuid.UUID(created["metadata"]["uid"])
    assert created["metadata"]["namespace"] == NAMESPACE

    fetched = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, "proc-1")
    assert fetched["spec"] == {"maxJobs": 3}
    assert fetched["metadata"]["uid"] == created["metadata"]["uid"]

    patched = custom.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        NAMESPACE,
        PLURAL,
        "proc-1",
        {"status": {"phase": "Ready"}, "spec": {"maxJobs": 99}},
    )
    assert patched["status"] == {"phase": "Ready"}
    assert patched["spec"] == {"maxJobs": 3}
    assert patched["metadata"]["generation"] == 1

    respecced = custom.patch_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, "proc-1", {"spec": {"maxJobs": 5}}
    )
    assert respecced["spec"] == {"maxJobs": 5}
    assert respecced["metadata"]["generation"] == 2
    assert respecced["status"] == {"phase": "Ready"}

    with pytest.raises(ApiException) as raised:
        custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, "missing")
    assert raised.value.status == 404


def test_failed_json_patch_test_is_422_and_changes_nothing(kube_client: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(kube_client)
    custom.create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, processor_manifest("proc-1")
    )
    stale = [
        {"op": "test", "path": "/spec/maxJobs", "value": 4},
        {"op": "replace", "path": "/spec/maxJobs", "value": 10},
    ]
    with pytest.raises(ApiException) as raised:
        custom.patch_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, "proc-1", stale)
    assert raised.value.status == 422
    fetched = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, "proc-1")
    assert fetched["spec"] == {"maxJobs": 3}

    fresh = [{**stale[0], "value": 3}, stale[1]]
    patched = custom.patch_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, "proc-1", fresh
    )
    assert patched["spec"] == {"maxJobs": 10}
    assert int(patched["metadata"]["resourceVersion"]) > int(fetched["metadata"]["resourceVersion"])


def test_generate_name_version_and_namespaces(kube_client: client.ApiClient) -> None:
    core = client.CoreV1Api(kube_client)
    secret = {"metadata": {"generateName": "certs-"}, "stringData": {"k": "v"}}
    first = core.create_namespaced_secret(NAMESPACE, secret)
    second = core.create_namespaced_secret(NAMESPACE, secret)
    assert first.metadata.name.startswith("certs-")
    assert first.metadata.name != second.metadata.name

    assert client.VersionApi(kube_client).get_code().major == "1"
    namespaces = {ns.metadata.name for ns in core.list_namespace().items}
    assert namespaces == {"default", NAMESPACE}


def test_request_log(kube_api: KubeApi, kube_client: client.ApiClient) -> None:
    batch = client.BatchV1Api(kube_client)
    batch.create_namespaced_job(NAMESPACE, job_manifest("job-1"))
    kube_api.reset_requests()
    assert kube_api.requests() == []

    batch.list_namespaced_job(NAMESPACE, label_selector="app=sfp")
    batch.read_namespaced_job("job-1", NAMESPACE)
    batch.patch_namespaced_job_status("job-1", NAMESPACE, {"status": {"active": 1}})
    with pytest.raises(ApiException):
        batch.create_namespaced_job(NAMESPACE, job_manifest("job-1"))

    log = kube_api.requests()
    summary = [
        (e["method"], e["action"], e["resource"], e["subresource"], e["status"]) for e in log
    ]
    assert summary == [
        ("GET", "list", "jobs", None, 200),
        ("GET", "fetch", "jobs", None, 200),
        ("PATCH", "update", "jobs", "status", 200),
        ("POST", "create", "jobs", None, 409),
    ]
    assert log[0]["path"] == f"/apis/batch/v1/namespaces/{NAMESPACE}/jobs"
    assert log[0]["query"] == {"labelSelector": "app=sfp"}
    assert log[1]["name"] == "job-1"
    assert kube_api.count(action="list", resource="jobs") == 1
    assert kube_api.count(action="list", resource="secrets") == 0
    kube_api.reset_requests()
    assert kube_api.requests() == []


# A tiny operator in its own registry, so nothing leaks into kopf's default one.
registry = kopf.OperatorRegistry()


@kopf.on.login(registry=registry)
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    return kopf.login_via_client(**kwargs)  # reads KUBECONFIG, as for any cluster


@kopf.on.startup(registry=registry)
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = f"{GROUP}/test-finalizer"
    settings.watching.server_timeout = 10
    settings.posting.level = logging.INFO


@kopf.timer(GROUP, VERSION, PLURAL, interval=0.5, registry=registry)
def mark_seen(body: kopf.Body, patch: kopf.Patch, **_: Any) -> None:
    patch.status["seen"] = True
    kopf.info(body, reason="Seen", message="mark_seen ran")  # an Event with generateName only


def test_kopf_operator_patches_status(kube_api: KubeApi, kube_client: client.ApiClient) -> None:
    custom = client.CustomObjectsApi(kube_client)
    custom.create_namespaced_custom_object(
        GROUP, VERSION, NAMESPACE, PLURAL, processor_manifest("proc-1")
    )

    def seen() -> bool:
        obj = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, "proc-1")
        return bool((obj.get("status") or {}).get("seen"))

    def posted() -> list[client.CoreV1Event]:
        events = client.CoreV1Api(kube_client).list_namespaced_event(NAMESPACE).items
        return [event for event in events if "mark_seen" in (event.message or "")]

    default_registry = kopf.get_default_registry()  # `kopf run` replaces it with ours
    try:
        with kopf.testing.KopfRunner(
            ["run", "-A", "--standalone"], registry=registry, timeout=60
        ) as runner:
            wait_for(seen, 30, "status.seen from the operator", interval=0.1)
            # kopf posts the Events in the background: wait for a few ticks' worth.
            events = wait_for(
                lambda: len(posted()) >= 2 and posted(), 30, "kopf's Events", interval=0.1
            )
    finally:
        kopf.set_default_registry(default_registry)

    assert runner.exception is None, runner.output
    assert runner.exit_code == 0, runner.output
    obj = custom.get_namespaced_custom_object(GROUP, VERSION, NAMESPACE, PLURAL, "proc-1")
    assert obj["spec"] == {"maxJobs": 3}
    assert obj["metadata"]["finalizers"] == [f"{GROUP}/test-finalizer"]  # set at startup
    assert kube_api.count(method="PATCH", resource=PLURAL, subresource="status") >= 1
    assert kube_api.count(action="watch", resource=PLURAL) >= 1
    failed = [e for e in kube_api.requests() if (e["status"] or 0) >= 400]
    assert failed == []  # not even a stale-resourceVersion 422 from a replayed watch event
    assert len({event.metadata.name for event in events}) == len(events)
    assert all(event.involved_object.name == "proc-1" for event in events)
