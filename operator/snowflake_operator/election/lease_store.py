"""The election's Lease (coordination.k8s.io/v1) on the API server: read it, create it, or
change it only if nobody changed it since it was read (its resourceVersion in the patch is a
precondition: the API server answers 409 otherwise). Runs in the election's threads."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from snowflake_operator.constants import APP_NAME, COMPONENT_LABEL, NAME_LABEL
from snowflake_operator.kube.api import CONFLICT, NOT_FOUND

from .leader_election import LeaseRecord


def micro_time(moment: datetime | None) -> str | None:
    """Kubernetes' MicroTime: RFC 3339 in UTC with microseconds."""
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def lease_spec(record: LeaseRecord) -> dict[str, Any]:
    return {
        "holderIdentity": record.holder,
        "leaseDurationSeconds": record.lease_seconds,
        "acquireTime": micro_time(record.acquire_time),
        "renewTime": micro_time(record.renew_time),
        "leaseTransitions": record.transitions,
    }


def lease_record(spec: Any) -> LeaseRecord:
    """From the client's V1LeaseSpec (a field the API server left out is None)."""
    return LeaseRecord(
        holder=spec.holder_identity or "",
        lease_seconds=int(spec.lease_duration_seconds or 0),
        acquire_time=spec.acquire_time,
        renew_time=spec.renew_time,
        transitions=int(spec.lease_transitions or 0),
    )


@dataclass
class KubeLeaseStore:
    api: client.ApiClient
    namespace: str
    name: str
    request_timeout: float = 5.0  # below the renew deadline: a hung call cannot outlast it

    def read(self) -> tuple[LeaseRecord, str] | None:
        coordination = client.CoordinationV1Api(self.api)
        try:
            lease = coordination.read_namespaced_lease(
                self.name, self.namespace, _request_timeout=self.request_timeout
            )
        except ApiException as exc:
            if exc.status == NOT_FOUND:
                return None
            raise
        return lease_record(lease.spec), _version(lease)

    def create(self, record: LeaseRecord) -> str | None:
        body = {
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {
                "name": self.name,
                "namespace": self.namespace,
                "labels": {NAME_LABEL: APP_NAME, COMPONENT_LABEL: "operator"},
            },
            "spec": lease_spec(record),
        }
        try:
            lease = client.CoordinationV1Api(self.api).create_namespaced_lease(
                self.namespace,
                body,  # type: ignore[arg-type]  # the client sends plain dicts as they are
                _request_timeout=self.request_timeout,
            )
        except ApiException as exc:
            if exc.status == CONFLICT:  # another candidate created it first
                return None
            raise
        return _version(lease)

    def update(self, record: LeaseRecord, version: str) -> str | None:
        body = {"metadata": {"resourceVersion": version}, "spec": lease_spec(record)}
        try:
            lease = client.CoordinationV1Api(self.api).patch_namespaced_lease(
                self.name, self.namespace, body, _request_timeout=self.request_timeout
            )
        except ApiException as exc:
            if exc.status == CONFLICT:  # changed since it was read: someone else wrote first
                return None
            raise
        return _version(lease)


def _version(lease: Any) -> str:
    return str(lease.metadata.resource_version)
