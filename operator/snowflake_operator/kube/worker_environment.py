"""The worker's environment contract: the SFP_* variables a Job's container gets.

One function builds them from the spec, so a Kubernetes Job and a local Job process
receive exactly the same configuration.
"""

from __future__ import annotations

from datetime import UTC, datetime

from snowflake_operator.constants import (
    CERT_MOUNT_PATH,
    ENDPOINT_HEADERS_MOUNT_PATH,
    SNOWFLAKE_KEY_MOUNT_PATH,
    TERMINATION_MESSAGE_PATH,
)
from snowflake_operator.spec.model import ProcessorSpec, SecretKeyRef
from snowflake_worker.snowflake_settings import AuthMode


def worker_environment(
    spec: ProcessorSpec,
    job_name: str,
    *,
    launched_at: datetime | None = None,
    cert_dir: str = CERT_MOUNT_PATH,
    headers_dir: str = ENDPOINT_HEADERS_MOUNT_PATH,
) -> dict[str, str]:
    """Plain (non-secret) variables for one Job. ``launched_at`` (when the Job is created)
    makes the claim deadline absolute: SFP_DEADLINE_AT, counted like Kubernetes counts
    activeDeadlineSeconds, from the Job's start and not from the worker's. The header
    Secret's values never travel here: only the folder it is mounted at."""
    sf = spec.snowflake
    endpoint = spec.endpoint
    env = {
        "SFP_PROCESSOR_ID": job_name,
        "SFP_ENDPOINT_URL": spec.endpoint.url,
        "SFP_CERT_DIR": cert_dir,
        "SFP_CONCURRENCY": str(spec.job.concurrency),
        "SFP_CLAIM_BATCH": str(spec.queue.claim_batch),
        "SFP_CLAIM_SECONDS": str(spec.queue.claim_seconds),
        "SFP_CLAIM_MAX": str(spec.queue.claim_max),
        "SFP_MAX_ENTRIES": str(spec.job.entries_per_job),
        # Warm Jobs (minActiveJobs) wait for new entries; others exit on an empty queue.
        "SFP_IDLE_WAIT_SECONDS": str(spec.job.idle_wait_seconds if spec.job.min_active_jobs else 0),
        "SFP_DEADLINE_SECONDS": str(spec.worker_claim_deadline_seconds()),
        "SFP_GRACE_SECONDS": str(spec.job.grace_seconds),
        "SFP_LEASE_SECONDS": str(spec.queue.lease_seconds),
        "SFP_MAX_ATTEMPTS": str(spec.queue.max_attempts),
        "SFP_REQUEST_TIMEOUT_SECONDS": str(spec.endpoint.timeout_seconds),
        "SFP_REQUEST_RETRIES": str(spec.endpoint.retries),
        "SFP_RETRY_BACKOFF_SECONDS": str(spec.endpoint.retry_backoff_seconds),
        "SFP_ENDPOINT_METHOD": endpoint.method,
        "SFP_ENDPOINT_PAYLOAD": endpoint.payload.value,
        "SFP_RETRY_AFTER_MAX_SECONDS": str(endpoint.retry_after_max_seconds),
        "SFP_STORE_RESPONSE_BYTES": str(endpoint.store_response_bytes),
        "SFP_RELEASE_DELAY_SECONDS": str(spec.queue.retry_delay_seconds),
        "SFP_FLUSH_EVERY": str(spec.job.flush_every),
        "SFP_FLUSH_SECONDS": str(spec.job.flush_seconds),
        "SFP_TERMINATION_MESSAGE_PATH": TERMINATION_MESSAGE_PATH,
        "SFP_LOG_LEVEL": spec.log_level,
        "SFP_SNOWFLAKE_ACCOUNT": sf.account,
        "SFP_SNOWFLAKE_DATABASE": sf.database,
        "SFP_SNOWFLAKE_SCHEMA": sf.schema_,
        "SFP_SNOWFLAKE_TABLE": sf.table,
        "SFP_SNOWFLAKE_AUTH": sf.auth.mode.value,
    }
    if launched_at is not None:
        deadline = spec.worker_deadline_at(launched_at).astimezone(UTC)
        env["SFP_DEADLINE_AT"] = deadline.isoformat(timespec="seconds").replace("+00:00", "Z")
    optional = {
        "SFP_SNOWFLAKE_USER": sf.user,
        "SFP_SNOWFLAKE_ROLE": sf.role,
        "SFP_SNOWFLAKE_WAREHOUSE": sf.warehouse,
        "SFP_SNOWFLAKE_HOST": sf.host,
        "SFP_SNOWFLAKE_PORT": None if sf.port is None else str(sf.port),
        "SFP_REQUESTS_PER_SECOND": _optional(endpoint.requests_per_second),
        "SFP_ENDPOINT_HEADERS_DIR": None if endpoint.headers_secret is None else headers_dir,
    }
    env.update({key: value for key, value in optional.items() if value is not None})
    if sf.auth.mode is AuthMode.KEY_PAIR and sf.auth.private_key_secret is not None:
        key_file = f"{SNOWFLAKE_KEY_MOUNT_PATH}/{sf.auth.private_key_secret.key}"
        env["SFP_SNOWFLAKE_PRIVATE_KEY_FILE"] = key_file
    return env


def _optional(value: float | None) -> str | None:
    return None if value is None else str(value)


def worker_secret_environment(spec: ProcessorSpec) -> dict[str, SecretKeyRef]:
    """Variables whose values come from Secrets (valueFrom.secretKeyRef in a Job)."""
    auth = spec.snowflake.auth
    refs: dict[str, SecretKeyRef] = {}
    if auth.mode is AuthMode.KEY_PAIR and auth.private_key_passphrase_secret is not None:
        refs["SFP_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"] = auth.private_key_passphrase_secret
    if auth.mode is AuthMode.PASSWORD and auth.password_secret is not None:
        refs["SFP_SNOWFLAKE_PASSWORD"] = auth.password_secret
    return refs
