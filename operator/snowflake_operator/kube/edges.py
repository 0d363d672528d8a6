"""A poll's edges on a real cluster: Jobs and certificates through the Kubernetes API,
Snowflake credentials from Secrets. Everything here runs in a worker thread."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from kubernetes import client

from snowflake_operator.constants import COUNTED_ANNOTATION, LAUNCHED_BY_ANNOTATION
from snowflake_operator.poll.certificate_bundle import CertificatesOutcome
from snowflake_operator.poll.idle_gate import IdleGate
from snowflake_operator.poll.job_history import JobRecord, unfinished_names
from snowflake_operator.poll.run import PollEdges
from snowflake_operator.spec.model import ProcessorSpec
from snowflake_worker.connection import connect
from snowflake_worker.errors import one_line
from snowflake_worker.queue import QueueClient
from snowflake_worker.snowflake_settings import AuthMode

from .api import create_job, delete_job, mark_job_counted, read_secret, secret_value
from .certificate_sync import ensure_certificates
from .development import EMULATOR_LOGIN_REFUSED, emulator_login_allowed
from .job_manifest import build_job
from .processor_ref import ProcessorRef
from .processor_state import ProcessorState, connection_key


class NotLeading(Exception):
    """This operator replica no longer holds the leader election Lease: it launches nothing."""


def always_leading() -> bool:
    return True


@dataclass
class KubeJobs:
    """Jobs of one processor. Unfinished ones come from the operator's watch-backed index
    (plus Jobs launched but not yet seen there): no list call per poll."""

    api: client.ApiClient
    processor: ProcessorRef
    image: str
    state: ProcessorState
    indexed: list[JobRecord]
    worker_summaries: dict[str, str | None]
    # Asked right before each launch: with more than one replica, only the Lease's holder
    # launches (election/leader_election.py), even from a poll that began before it lost the Lease.
    leading: Callable[[], bool] = always_leading
    launcher: str = ""  # recorded on each Job (LAUNCHED_BY_ANNOTATION) when set

    def __post_init__(self) -> None:
        all_names = {r.name for r in self.indexed}
        self.unfinished = self.state.unfinished_with_launches(
            unfinished_names(self.indexed), all_names, time.monotonic()
        )

    # -- JobBackend -------------------------------------------------------------------

    def unfinished_count(self) -> int:
        return len(self.unfinished)

    def launch(self, name: str, spec: ProcessorSpec, certificates_secret: str) -> bool:
        manifest = build_job(
            name,
            self.processor,
            spec,
            image=self.image,
            certificates_secret=certificates_secret,
            launched_at=datetime.now(UTC),  # the worker's deadline counts from here
        )
        if self.launcher:
            manifest["metadata"]["annotations"] = {LAUNCHED_BY_ANNOTATION: self.launcher}
        if not self.leading():
            raise NotLeading(f"Job {name} not launched: this replica no longer holds the lease")
        if not create_job(self.api, manifest):
            return False
        self.unfinished.add(name)
        self.state.launched[name] = time.monotonic()
        return True

    # -- JobHistory -------------------------------------------------------------------

    def records(self) -> list[JobRecord]:
        return self.indexed

    def summaries(self) -> dict[str, str | None]:
        return self.worker_summaries

    def mark_counted(self, name: str) -> None:
        mark_job_counted(self.api, self.processor.namespace, name, COUNTED_ANNOTATION)

    def delete(self, name: str) -> None:
        delete_job(self.api, self.processor.namespace, name)


@dataclass
class KubeQueues:
    """The operator's own Snowflake connection, kept between polls and rebuilt when the
    spec or the credentials change."""

    api: client.ApiClient
    processor: ProcessorRef
    state: ProcessorState

    def open(self, spec: ProcessorSpec) -> tuple[QueueClient | None, str | None]:
        state = self.state
        if spec.snowflake.auth.mode is AuthMode.EMULATOR and not emulator_login_allowed():
            state.drop_connection()
            return None, EMULATOR_LOGIN_REFUSED
        try:
            secrets = snowflake_secrets(self.api, self.processor.namespace, spec)
            key = connection_key(spec.snowflake.model_dump(mode="json"), secrets)
            if state.queue is None or state.connection_key != key:
                state.drop_connection()
                state.connection = connect(spec.snowflake.connection_settings(**secrets))
                state.queue = QueueClient(state.connection, spec.snowflake.table_ref)
                state.connection_key = key
            return state.queue, None
        except Exception as exc:
            state.drop_connection()
            return None, one_line(exc)

    def drop(self) -> None:
        self.state.drop_connection()


@dataclass
class KubeCertificates:
    api: client.ApiClient
    processor: ProcessorRef
    state: ProcessorState
    s3_endpoint_url: str | None
    recheck_seconds: float

    def ensure(self, spec: ProcessorSpec, now: datetime, *, launching: bool) -> CertificatesOutcome:
        return ensure_certificates(
            self.api,
            self.processor,
            spec,
            self.state,
            now,
            s3_endpoint_url=self.s3_endpoint_url,
            launching=launching,
            recheck_seconds=self.recheck_seconds,
        )


def kube_poll_edges(
    api: client.ApiClient,
    processor: ProcessorRef,
    state: ProcessorState,
    *,
    image: str,
    records: list[JobRecord],
    summaries: dict[str, str | None],
    s3_endpoint_url: str | None,
    certificates_recheck_seconds: float,
    idle_gate: IdleGate | None,
    leading: Callable[[], bool] = always_leading,
    launcher: str = "",
) -> PollEdges:
    jobs = KubeJobs(api, processor, image, state, records, summaries, leading, launcher)
    certificates = KubeCertificates(
        api, processor, state, s3_endpoint_url, certificates_recheck_seconds
    )
    return PollEdges(
        certificates=certificates,
        queues=KubeQueues(api, processor, state),
        jobs=jobs,
        history=jobs,
        idle_gate=idle_gate,
    )


def snowflake_secrets(api: client.ApiClient, namespace: str, spec: ProcessorSpec) -> dict[str, str]:
    """Key-pair or password material from Secret references; never logged or reported."""
    auth = spec.snowflake.auth
    wanted = {
        "private_key_pem": auth.private_key_secret if auth.mode is AuthMode.KEY_PAIR else None,
        "private_key_passphrase": (
            auth.private_key_passphrase_secret if auth.mode is AuthMode.KEY_PAIR else None
        ),
        "password": auth.password_secret if auth.mode is AuthMode.PASSWORD else None,
    }
    values: dict[str, str] = {}
    for field_name, ref in wanted.items():
        if ref is None:
            continue
        secret = read_secret(api, namespace, ref.name)
        value = None if secret is None else secret_value(secret, ref.key)
        if value is None:
            raise LookupError(f"Secret {ref.name} has no key {ref.key}")
        values[field_name] = value
    return values
