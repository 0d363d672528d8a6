"""Keep a processor's client certificates in a Secret: S3 -> check -> Secret, only on change.

The I/O of the certificates step of a poll. One S3 list call tells whether anything changed
(ETags); the files are only downloaded, checked and written when it did. That listing runs
at most every SFP_OPERATOR_CERTIFICATES_RECHECK_SECONDS, and always before Jobs are
launched. A missing or broken file blocks launches.

The operator only ever writes a Secret it created for the same resource (its managed-by
label and the resource's controller ownerReference): a Secret of the same name that
someone else made is left alone and reported as a SecretConflict.
"""

from __future__ import annotations

import base64
import logging
import time
from dataclasses import replace
from datetime import datetime
from typing import Any

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from snowflake_operator.constants import CERT_FILES, MANAGED_BY, MANAGED_BY_LABEL
from snowflake_operator.kube import s3_certificates
from snowflake_operator.poll import certificate_bundle
from snowflake_operator.poll.certificate_bundle import SECRET_CONFLICT, CertificatesOutcome
from snowflake_operator.spec.model import ProcessorSpec, S3Certificates

from .api import CONFLICT, read_secret, write_secret
from .processor_ref import ProcessorRef
from .processor_state import ProcessorState

log = logging.getLogger("snowflake_operator")


class SecretConflict(Exception):
    """A Secret of the synced Secret's name exists and is not this resource's."""

    def __init__(self, name: str) -> None:
        super().__init__(
            f"Secret {name} exists and was not created by the operator for this resource "
            f"(label {MANAGED_BY_LABEL}={MANAGED_BY} and an ownerReference to it): it is left "
            "as it is. Rename or delete it, or name a Secret of yours in "
            "spec.certificates.existingSecret"
        )


def ensure_certificates(
    api: client.ApiClient,
    processor: ProcessorRef,
    spec: ProcessorSpec,
    state: ProcessorState,
    now: datetime,
    *,
    s3_endpoint_url: str | None = None,
    launching: bool = False,
    recheck_seconds: float = 0.0,
) -> CertificatesOutcome:
    """The Secret the Jobs mount, checked at most every ``recheck_seconds`` unless Jobs
    are about to be ``launching``; in between, the last outcome (expiry re-evaluated)."""
    source = spec.certificates
    if source is None:
        return CertificatesOutcome(False, "spec.certificates is required: set s3 or existingSecret")
    clock = time.monotonic()
    last = state.certificates_outcome
    recent = clock - state.certificates_checked < recheck_seconds
    if last is not None and recent and not launching and state.certificates_source == source:
        outcome = replace(last, events=[])  # its events were posted when it was checked
    else:
        if source.existing_secret is not None:
            outcome = _existing_secret(api, processor, source.existing_secret)
        else:
            assert source.s3 is not None
            outcome = _from_s3(api, processor, source.s3, state, now, s3_endpoint_url)
        state.certificates_outcome, state.certificates_checked = outcome, clock
        state.certificates_source = source
    return _expiry(outcome, state, now)


def _from_s3(
    api: client.ApiClient,
    processor: ProcessorRef,
    s3_spec: S3Certificates,
    state: ProcessorState,
    now: datetime,
    s3_endpoint_url: str | None,
) -> CertificatesOutcome:
    name = certificate_bundle.secret_name(processor.name)
    location = f"s3://{s3_spec.bucket}/{s3_spec.prefix}"
    try:
        s3 = s3_certificates.make_s3_client(s3_spec.region, s3_endpoint_url)
        versions = s3_certificates.list_versions(s3, s3_spec.bucket, s3_spec.prefix)
        events: list[tuple[str, str, str]] = []
        if versions.fingerprint != state.certificates_fingerprint:
            events = _sync(api, processor, s3, s3_spec, versions, state, now)
    except SecretConflict as conflict:
        state.certificates_fingerprint = ""  # look again at the next check
        return CertificatesOutcome(False, str(conflict), name, reason=SECRET_CONFLICT)
    except certificate_bundle.CertificateProblem as problem:
        state.certificates_fingerprint = ""
        return CertificatesOutcome(False, str(problem), name)
    except Exception as exc:  # S3 or Kubernetes unreachable: report, do not crash
        state.certificates_fingerprint = ""
        return CertificatesOutcome(
            False, f"cannot sync certificates from {location}: {exc}"[:500], name
        )
    check = state.certificates_check
    assert check is not None
    return CertificatesOutcome(
        True,
        f"synced from {location}; expires {check.not_after:%Y-%m-%d}",
        name,
        events,
        {
            "secretName": name,
            "fingerprint": versions.fingerprint,
            "notAfter": check.not_after.isoformat().replace("+00:00", "Z"),
        },
    )


def _expiry(
    outcome: CertificatesOutcome, state: ProcessorState, now: datetime
) -> CertificatesOutcome:
    """An expired client.pem blocks launches (and is checked again at the next poll); one
    about to expire adds a warning."""
    check = state.certificates_check
    if not outcome.ready or check is None or not outcome.status:
        return outcome
    days_left = (check.not_after - now).total_seconds() / 86400
    if days_left <= 0:
        state.certificates_fingerprint, state.certificates_outcome = "", None
        return CertificatesOutcome(
            False, f"client.pem expired on {check.not_after:%Y-%m-%d}", outcome.secret_name
        )
    if days_left <= certificate_bundle.EXPIRY_WARNING_DAYS:
        message = f"client.pem expires in {days_left:.0f} days ({check.not_after:%Y-%m-%d})"
        return replace(
            outcome, events=[*outcome.events, ("Warning", "CertificateExpiring", message)]
        )
    return outcome


def _sync(
    api: client.ApiClient,
    processor: ProcessorRef,
    s3: Any,
    s3_spec: S3Certificates,
    versions: certificate_bundle.ObjectVersions,
    state: ProcessorState,
    now: datetime,
    attempts: int = 2,
) -> list[tuple[str, str, str]]:
    """Compare with the Secret; download, check and write only when the objects changed.
    Raises SecretConflict when the Secret of that name is not this resource's."""
    name = certificate_bundle.secret_name(processor.name)
    existing = read_secret(api, processor.namespace, name)
    if existing is not None and not certificate_bundle.owned_by(existing, processor.uid):
        raise SecretConflict(name)
    if not certificate_bundle.needs_sync(existing, versions):
        assert existing is not None
        files = {
            key: base64.b64decode(value) for key, value in (existing.get("data") or {}).items()
        }
        state.certificates_check = certificate_bundle.check_bundle(files, now)
        state.certificates_fingerprint = versions.fingerprint
        return []
    bucket, prefix = s3_spec.bucket, s3_spec.prefix
    files = s3_certificates.download(s3, bucket, prefix)
    check = certificate_bundle.check_bundle(files, now)  # raises CertificateProblem naming the file
    manifest = certificate_bundle.secret_manifest(
        name, processor.namespace, processor.owner_reference(), files, versions.fingerprint
    )
    version = None if existing is None else existing["metadata"]["resourceVersion"]
    try:
        write_secret(api, manifest, version)
    except ApiException as exc:
        if exc.status != CONFLICT or attempts <= 1:
            raise
        # Written since it was read, by a run of the same processor at the same time (two
        # CronJob runs in one minute): compare again with what is there now.
        return _sync(api, processor, s3, s3_spec, versions, state, now, attempts - 1)
    state.certificates_check = check
    state.certificates_fingerprint = versions.fingerprint
    verb = "rotated" if existing is not None else "created"
    log.info("certificates secret %s", verb, extra={"secret": name})
    return [
        (
            "Normal",
            "CertificatesRotated" if existing else "CertificatesSynced",
            f"Secret {name} {verb} from s3://{bucket}/{prefix} (client.pem valid until "
            f"{check.not_after:%Y-%m-%d})",
        )
    ]


def _existing_secret(
    api: client.ApiClient, processor: ProcessorRef, name: str
) -> CertificatesOutcome:
    """A Secret the user manages (read, never written): it must hold the three files."""
    try:
        secret = read_secret(api, processor.namespace, name)
    except Exception as exc:
        return CertificatesOutcome(False, f"cannot read Secret {name}: {exc}"[:500], name)
    if secret is None:
        return CertificatesOutcome(False, f"Secret {name} does not exist", name)
    missing = [f for f in CERT_FILES if f not in (secret.get("data") or {})]
    if missing:
        return CertificatesOutcome(False, f"Secret {name} lacks {', '.join(missing)}", name)
    return CertificatesOutcome(True, f"using Secret {name}", name)
