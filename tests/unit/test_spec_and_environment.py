"""The SnowflakeProcessor spec model and the worker environment built from it."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from snowflake_operator.kube.worker_environment import (
    SNOWFLAKE_KEY_MOUNT_PATH,
    worker_environment,
    worker_secret_environment,
)
from snowflake_operator.spec.fargate_sizes import (
    FARGATE_SIZES_MIB,
    exact_fargate_requests,
    fargate_billed_size,
)
from snowflake_operator.spec.model import ProcessorSpec, SecretKeyRef
from snowflake_worker.settings import load_worker_settings
from snowflake_worker.snowflake_settings import AuthMode, load_snowflake_settings
from tests.support.specs import MINIMAL_SPEC, processor_spec


def _spec(**changes: Any) -> ProcessorSpec:
    return processor_spec(MINIMAL_SPEC, **changes)


def _rejected(**changes: Any) -> str:
    with pytest.raises(ValidationError) as caught:
        _spec(**changes)
    return str(caught.value)


# -- ProcessorSpec ------------------------------------------------------------------


def test_camel_case_spec_parses() -> None:
    spec = _spec(
        pollIntervalSeconds=15,
        suspend=True,
        logLevel="DEBUG",
        snowflake={"warehouse": "load_wh", "role": "loader", "user": "svc"},
        endpoint={"timeoutSeconds": 3.5, "retries": 1, "retryBackoffSeconds": 0.25},
        queue={"leaseSeconds": 1200, "maxAttempts": 7, "claimBatch": 50, "retryDelaySeconds": 5},
        job={
            "entriesPerJob": 500,
            "maxActiveJobs": 3,
            "concurrency": 8,
            "activeDeadlineSeconds": 900,
            "graceSeconds": 30,
            "flushEvery": 10,
            "flushSeconds": 1.5,
        },
    )
    assert spec.poll_interval_seconds == 15
    assert spec.suspend is True
    assert spec.log_level == "DEBUG"
    assert spec.snowflake.database == "ANALYTICS"
    assert spec.snowflake.schema_ == "QUEUE"
    assert spec.snowflake.table == "WORK_ITEMS"
    assert spec.snowflake.warehouse == "LOAD_WH"
    assert spec.snowflake.role == "LOADER"
    assert spec.snowflake.user == "svc"
    assert str(spec.snowflake.table_ref) == "ANALYTICS.QUEUE.WORK_ITEMS"
    assert spec.endpoint.timeout_seconds == 3.5
    assert spec.endpoint.retries == 1
    assert spec.endpoint.retry_backoff_seconds == 0.25
    assert spec.queue.lease_seconds == 1200
    assert spec.queue.max_attempts == 7
    assert spec.queue.claim_batch == 50
    assert spec.queue.retry_delay_seconds == 5
    assert spec.job.entries_per_job == 500
    assert spec.job.max_active_jobs == 3
    assert spec.job.concurrency == 8
    assert spec.job_active_deadline_seconds() == 900
    assert spec.worker_claim_deadline_seconds() == 900 - 30 - 15  # grace, write-back margin
    assert spec.job.flush_every == 10
    assert spec.job.flush_seconds == 1.5


def test_defaults_are_filled() -> None:
    spec = _spec()
    assert spec.poll_interval_seconds == 60
    assert spec.suspend is False
    assert spec.log_level == "INFO"
    assert spec.snowflake.auth.mode is AuthMode.WORKLOAD_IDENTITY
    assert spec.snowflake.user is None
    assert spec.queue.lease_seconds == 900
    assert spec.queue.max_attempts == 5
    assert spec.queue.claim_batch == 200
    assert spec.job.entries_per_job == 2000
    assert spec.job.max_active_jobs == 10
    assert spec.job.concurrency == 32
    assert spec.job.active_deadline_seconds is None
    assert spec.job_active_deadline_seconds() == 600  # 2/3 of the lease
    assert spec.worker_claim_deadline_seconds() == 565  # minus the grace and the margin
    assert spec.endpoint.timeout_seconds == 10
    assert spec.endpoint.retries == 3


def test_http_url_is_rejected() -> None:
    message = _rejected(endpoint={"url": "http://service.example/entries"})
    assert "https://" in message


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://127.0.0.1:99999/x", "port"),
        ("https://[::1/x", "not a valid URL"),
        ("https://", "host"),
    ],
)
def test_url_the_worker_could_not_call_is_rejected(url: str, problem: str) -> None:
    message = _rejected(endpoint={"url": url})
    assert "endpoint.url" in message
    assert problem in message


@pytest.mark.parametrize(
    "changes",
    [
        {"pollIntervalSecond": 10},
        {"snowflake": {"passwrd": "x"}},
        {"endpoint": {"timeout": 5}},
        {"job": {"replicas": 2}},
        {"queue": {"leaseSecs": 600}},
    ],
    ids=["top", "snowflake", "endpoint", "job", "queue"],
)
def test_unknown_fields_are_rejected(changes: dict[str, Any]) -> None:
    message = _rejected(**changes)
    assert "Extra inputs are not permitted" in message


@pytest.mark.parametrize("deadline", [900, 1000])
def test_active_deadline_at_or_above_lease_is_rejected(deadline: int) -> None:
    message = _rejected(queue={"leaseSeconds": 900}, job={"activeDeadlineSeconds": deadline})
    assert "activeDeadlineSeconds" in message
    assert "leaseSeconds" in message


def test_active_deadline_just_below_lease_is_accepted() -> None:
    spec = _spec(queue={"leaseSeconds": 900}, job={"activeDeadlineSeconds": 899})
    assert spec.job_active_deadline_seconds() == 899


def test_grace_must_leave_time_to_claim() -> None:
    message = _rejected(job={"activeDeadlineSeconds": 60, "graceSeconds": 60})
    assert "graceSeconds" in message


@pytest.mark.parametrize("value", [0, 20])
def test_max_active_jobs_out_of_range_is_rejected(value: int) -> None:
    assert "maxActiveJobs" in _rejected(job={"maxActiveJobs": value})


def test_lease_below_a_minute_is_rejected() -> None:
    assert "leaseSeconds" in _rejected(queue={"leaseSeconds": 59})


def test_key_pair_without_private_key_secret_is_rejected() -> None:
    message = _rejected(snowflake={"user": "svc", "auth": {"mode": "key_pair"}})
    assert "privateKeySecret" in message


def test_password_without_password_secret_is_rejected() -> None:
    message = _rejected(snowflake={"user": "svc", "auth": {"mode": "password"}})
    assert "passwordSecret" in message


@pytest.mark.parametrize("field", ["database", "schema", "table", "warehouse", "role"])
def test_invalid_identifiers_are_rejected(field: str) -> None:
    message = _rejected(snowflake={field: 'x"; DROP TABLE y; --'})
    assert "invalid Snowflake identifier" in message


def test_unknown_log_level_is_rejected() -> None:
    assert "logLevel" in _rejected(logLevel="TRACE")


def test_spec_is_frozen() -> None:
    spec = _spec()
    with pytest.raises(ValidationError):
        spec.suspend = True  # type: ignore[misc]


# -- the worker environment contract ------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    for key in list(os.environ):
        if key.upper().startswith("SFP_"):
            monkeypatch.delenv(key)
    return monkeypatch


def _load_into(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def _full_spec(**snowflake: Any) -> ProcessorSpec:
    return _spec(
        snowflake={"warehouse": "load_wh", "role": "loader", **snowflake},
        endpoint={"url": "https://service.example/entries", "timeoutSeconds": 4, "retries": 2},
        queue={
            "leaseSeconds": 1200,
            "maxAttempts": 7,
            "claimBatch": 50,
            "claimSeconds": 12.5,
            "claimMax": 3000,
            "retryDelaySeconds": 9,
        },
        job={
            "entriesPerJob": 750,
            "concurrency": 12,
            "graceSeconds": 30,
            "flushEvery": 25,
            "flushSeconds": 7.5,
        },
        logLevel="WARNING",
    )


def test_environment_round_trip(clean_env: pytest.MonkeyPatch, tmp_path: Path) -> None:
    spec = _full_spec()
    env = worker_environment(spec, "job-1", cert_dir=str(tmp_path))
    assert all(isinstance(value, str) for value in env.values())
    _load_into(clean_env, env)

    worker = load_worker_settings()
    assert worker.processor_id == "job-1"
    assert worker.cert_dir == tmp_path
    assert worker.endpoint_url == spec.endpoint.url
    assert worker.concurrency == spec.job.concurrency == 12
    assert worker.claim_batch == spec.queue.claim_batch == 50
    assert worker.max_entries == spec.job.entries_per_job == 750
    assert worker.lease_seconds == spec.queue.lease_seconds == 1200
    assert worker.max_attempts == spec.queue.max_attempts == 7
    assert worker.deadline_seconds == spec.worker_claim_deadline_seconds() == 800 - 30 - 15
    assert worker.grace_seconds == 30
    assert worker.request_timeout_seconds == 4
    assert worker.request_retries == 2
    assert worker.release_delay_seconds == 9
    assert worker.flush_every == 25
    assert worker.flush_seconds == spec.job.flush_seconds == 7.5
    assert worker.claim_seconds == spec.queue.claim_seconds == 12.5
    assert worker.claim_max == spec.queue.claim_max == 3000
    assert worker.log_level == "WARNING"
    # the worker's own check agrees with the spec's: the Job ends before the lease
    assert worker.deadline_seconds + worker.grace_seconds < worker.lease_seconds

    snowflake = load_snowflake_settings()
    assert snowflake.table_ref == spec.snowflake.table_ref
    assert snowflake.account == spec.snowflake.account
    assert snowflake.warehouse == "LOAD_WH"
    assert snowflake.role == "LOADER"
    assert snowflake.auth is AuthMode.WORKLOAD_IDENTITY
    assert snowflake.user is None


def test_environment_round_trip_key_pair(clean_env: pytest.MonkeyPatch) -> None:
    spec = _full_spec(
        user="svc",
        auth={
            "mode": "key_pair",
            "privateKeySecret": {"name": "sf-key", "key": "rsa_key.p8"},
            "privateKeyPassphraseSecret": {"name": "sf-key", "key": "passphrase"},
        },
    )
    env = worker_environment(spec, "job-2")
    assert env["SFP_SNOWFLAKE_PRIVATE_KEY_FILE"] == f"{SNOWFLAKE_KEY_MOUNT_PATH}/rsa_key.p8"
    _load_into(clean_env, env)
    snowflake = load_snowflake_settings()
    assert snowflake.auth is AuthMode.KEY_PAIR
    assert snowflake.user == "svc"
    assert snowflake.private_key_file == Path(SNOWFLAKE_KEY_MOUNT_PATH) / "rsa_key.p8"
    assert worker_secret_environment(spec) == {
        "SFP_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE": SecretKeyRef(name="sf-key", key="passphrase")
    }


def test_environment_round_trip_password(clean_env: pytest.MonkeyPatch) -> None:
    spec = _full_spec(
        user="svc", auth={"mode": "password", "passwordSecret": {"name": "sf", "key": "pw"}}
    )
    env = worker_environment(spec, "job-3")
    secrets = worker_secret_environment(spec)
    assert secrets == {"SFP_SNOWFLAKE_PASSWORD": SecretKeyRef(name="sf", key="pw")}
    _load_into(clean_env, env)
    # what Kubernetes does with valueFrom.secretKeyRef
    clean_env.setenv("SFP_SNOWFLAKE_PASSWORD", "hunter2-secret")
    snowflake = load_snowflake_settings()
    assert snowflake.auth is AuthMode.PASSWORD
    assert snowflake.password is not None
    assert snowflake.password.get_secret_value() == "hunter2-secret"


def test_environment_round_trip_emulator(clean_env: pytest.MonkeyPatch) -> None:
    spec = _full_spec(host="127.0.0.1", port=8123, auth={"mode": "emulator"})
    _load_into(clean_env, worker_environment(spec, "job-4"))
    snowflake = load_snowflake_settings()
    assert snowflake.auth is AuthMode.EMULATOR
    assert (snowflake.host, snowflake.port) == ("127.0.0.1", 8123)


def test_optional_variables_are_left_out_when_unset() -> None:
    env = worker_environment(_spec(), "job-1")
    for key in (
        "SFP_SNOWFLAKE_USER",
        "SFP_SNOWFLAKE_ROLE",
        "SFP_SNOWFLAKE_WAREHOUSE",
        "SFP_SNOWFLAKE_HOST",
        "SFP_SNOWFLAKE_PORT",
        "SFP_SNOWFLAKE_PRIVATE_KEY_FILE",
    ):
        assert key not in env


def test_workload_identity_has_no_secret_environment() -> None:
    assert worker_secret_environment(_spec()) == {}


def test_key_pair_without_passphrase_has_no_secret_environment() -> None:
    spec = _spec(
        snowflake={
            "user": "svc",
            "auth": {"mode": "key_pair", "privateKeySecret": {"name": "k", "key": "rsa"}},
        }
    )
    assert worker_secret_environment(spec) == {}


@pytest.mark.parametrize(
    "auth",
    [
        {"mode": "workload_identity"},
        {"mode": "password", "passwordSecret": {"name": "sf-pw", "key": "password"}},
        {
            "mode": "key_pair",
            "privateKeySecret": {"name": "sf-key", "key": "rsa_key.p8"},
            "privateKeyPassphraseSecret": {"name": "sf-pass", "key": "phrase"},
        },
    ],
    ids=["workload_identity", "password", "key_pair"],
)
def test_no_secret_ever_appears_in_the_plain_environment(auth: dict[str, Any]) -> None:
    spec = _spec(snowflake={"user": "svc", "auth": auth})
    env = worker_environment(spec, "job-1")
    secret_keys = set(worker_secret_environment(spec))
    assert not secret_keys & set(env), "a secret variable must come from valueFrom only"
    assert "SFP_SNOWFLAKE_PASSWORD" not in env
    assert "SFP_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE" not in env
    # the names of the Secrets stay in secretKeyRefs, not in plain values
    for value in env.values():
        assert "sf-pw" not in value
        assert "sf-pass" not in value


# -- Fargate sizes: what a pod requests is not what Fargate bills ------------------------


def test_fargate_bills_the_request_plus_256mi_rounded_up_as_aws_documents() -> None:
    # The EKS user guide: "a request for 1 vCPU and 8 GB will provision 2 vCPUs and 9 GB".
    assert fargate_billed_size("1", 8 * 1024) == ("2", 9 * 1024)
    assert fargate_billed_size("0.5", 1024) == ("0.5", 2048)  # the former default
    assert fargate_billed_size("0.5", 768) == ("0.5", 1024)
    assert fargate_billed_size("16", 120 * 1024) is None  # fits no size: never starts


@pytest.mark.parametrize(
    ("cpu", "memory", "billed"),
    [
        ("0.5", "1Gi", "is billed as 0.5 vCPU / 2 GB"),
        ("0.25", "2Gi", "is billed as 0.5 vCPU / 3 GB"),
        ("1", "8Gi", "is billed as 2 vCPU / 9 GB"),
        ("4", "30Gi", "is billed as 8 vCPU / 32 GB"),
        ("16", "120Gi", "fits no Fargate size"),
        ("2", "1Gi", "is billed as 2 vCPU / 4 GB"),
    ],
)
def test_a_size_that_does_not_fit_exactly_is_refused_naming_what_is_billed(
    cpu: str, memory: str, billed: str
) -> None:
    with pytest.raises(ValidationError) as caught:
        _spec(job={"cpu": cpu, "memory": memory})
    message = str(caught.value)
    assert f"job.cpu {cpu} with job.memory {memory} {billed}" in message
    assert "256Mi" in message


@pytest.mark.parametrize("cpu", list(FARGATE_SIZES_MIB))
def test_every_exact_request_bills_its_own_size(cpu: str) -> None:
    for request, size in zip(exact_fargate_requests(cpu), FARGATE_SIZES_MIB[cpu], strict=True):
        spec = _spec(job={"cpu": cpu, "memory": request})
        assert fargate_billed_size(cpu, int(spec.job.memory[:-2])) == (cpu, size)


def test_the_default_job_bills_half_a_vcpu_and_one_gb() -> None:
    job = _spec().job
    assert (job.cpu, job.memory) == ("0.5", "768Mi")
    assert fargate_billed_size(job.cpu, 768) == ("0.5", 1024)


def test_launched_at_gives_the_worker_an_absolute_deadline(clean_env: pytest.MonkeyPatch) -> None:
    spec = _spec()
    launched = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)
    env = worker_environment(spec, "job-5", launched_at=launched)
    assert env["SFP_DEADLINE_AT"] == "2026-11-25T10:09:25Z"  # + 600 - 20 - 15 s
    _load_into(clean_env, env)
    worker = load_worker_settings()
    # A pod that starts 70 s after its Job was created may still claim for 495 s, not 565.
    assert worker.seconds_to_deadline(launched + timedelta(seconds=70)) == 565 - 70


# -- spec.endpoint: the service call ---------------------------------------------------


def test_the_seeds_call_stays_the_default(clean_env: pytest.MonkeyPatch) -> None:
    endpoint = _spec().endpoint
    assert (endpoint.method, endpoint.payload.value, endpoint.headers_secret) == (
        "POST",
        "envelope",
        None,
    )
    assert (endpoint.store_response_bytes, endpoint.requests_per_second) == (0, None)
    env = worker_environment(_spec(), "job-1")
    assert "SFP_ENDPOINT_HEADERS_DIR" not in env and "SFP_REQUESTS_PER_SECOND" not in env
    _load_into(clean_env, env)
    worker = load_worker_settings()
    assert (worker.endpoint_method, worker.endpoint_payload.value) == ("POST", "envelope")
    assert (worker.store_response_bytes, worker.requests_per_second) == (0, 0)
    assert worker.retry_after_max_seconds == 60
    assert worker.endpoint_headers_dir is None


def test_endpoint_settings_reach_the_worker(clean_env: pytest.MonkeyPatch) -> None:
    spec = _spec(
        endpoint={
            "url": "https://service.example/entries",
            "method": "PUT",
            "payload": "data",
            "headersSecret": "service-api-key",
            "retryAfterMaxSeconds": 15,
            "requestsPerSecond": 2.5,
            "storeResponseBytes": 4096,
        }
    )
    env = worker_environment(spec, "job-1", headers_dir="/mnt/headers")
    assert env["SFP_ENDPOINT_HEADERS_DIR"] == "/mnt/headers"  # the folder, never a value
    assert worker_environment(spec, "job-1")["SFP_ENDPOINT_HEADERS_DIR"] == (
        "/etc/snowflake-processor/endpoint-headers"
    )
    _load_into(clean_env, env)
    worker = load_worker_settings()
    assert (worker.endpoint_method, worker.endpoint_payload.value) == ("PUT", "data")
    assert worker.endpoint_headers_dir == Path("/mnt/headers")
    assert (worker.retry_after_max_seconds, worker.requests_per_second) == (15, 2.5)
    assert worker.store_response_bytes == 4096


@pytest.mark.parametrize(
    ("endpoint", "problem"),
    [
        ({"method": "GET"}, "endpoint.method"),
        ({"payload": "legacy"}, "endpoint.payload"),
        ({"headersSecret": "Not_A_Name"}, "endpoint.headersSecret"),
        ({"storeResponseBytes": 16385}, "endpoint.storeResponseBytes"),
        ({"storeResponseBytes": -1}, "endpoint.storeResponseBytes"),
        ({"requestsPerSecond": 0}, "endpoint.requestsPerSecond"),
        ({"retryAfterMaxSeconds": 3601}, "endpoint.retryAfterMaxSeconds"),
    ],
)
def test_bad_endpoint_settings_are_refused(endpoint: dict[str, Any], problem: str) -> None:
    message = _rejected(endpoint={"url": "https://service.example/x", **endpoint})
    field = problem.split(".")[1]
    assert "endpoint" in message and field in message
