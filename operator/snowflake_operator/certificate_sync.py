"""Keep a processor's client certificates in a Secret: S3 -> check -> Secret, only on change.

The I/O of the certificates step of a poll. One S3 list call per poll tells whether
anything changed (ETags); the files are only downloaded, checked and written when it did.
A missing or broken file blocks launches.
"""

from __future__ import annotations

import base64
import logging
import time
from datetime import datetime
from typing import Any

from kubernetes import client

from . import certificate_bundle, s3_certificates
from .certificate_bundle import CertificatesOutcome
from .constants import CERT_FILES
from .kube_api import apply_secret, read_secret
from .processor_ref import ProcessorRef
from .processor_state import ProcessorState
from .spec import ProcessorSpec

log = logging.getLogger("snowflake_operator")
EXISTING_SECRET_RECHECK_SECONDS = 60.0


def ensure_certificates(
    api: client.ApiClient,
    processor: ProcessorRef,
    spec: ProcessorSpec,
    state: ProcessorState,
    now: datetime,
    s3_endpoint_url: str | None = None,
) -> CertificatesOutcome:
    source = spec.certificates
    if source is None:
        return CertificatesOutcome(False, "spec.certificates is required: set s3 or existingSecret")
    if source.existing_secret is not None:
        return _existing_secret(api, processor, source.existing_secret, state)
    assert source.s3 is not None
    s3_spec = source.s3
    name = certificate_bundle.secret_name(processor.name)
    try:
        s3 = s3_certificates.make_s3_client(s3_spec.region, s3_endpoint_url)
        versions = s3_certificates.list_versions(s3, s3_spec.bucket, s3_spec.prefix)
        events: list[tuple[str, str, str]] = []
        if versions.fingerprint != state.certificates_fingerprint:
            events = _sync(api, processor, s3, s3_spec.bucket, s3_spec.prefix, versions, state, now)
    except certificate_bundle.CertificateProblem as problem:
        state.certificates_fingerprint = ""  # check again next poll
        return CertificatesOutcome(False, str(problem), name)
    except Exception as exc:  # S3 or Kubernetes unreachable: report, do not crash
        message = f"cannot sync certificates from s3://{s3_spec.bucket}/{s3_spec.prefix}: {exc}"
        return CertificatesOutcome(False, message[:500], name)
    check = state.certificates_check
    assert check is not None
    outcome = CertificatesOutcome(
        True,
        f"synced from s3://{s3_spec.bucket}/{s3_spec.prefix}; expires {check.not_after:%Y-%m-%d}",
        name,
        events,
        {
            "secretName": name,
            "fingerprint": versions.fingerprint,
            "notAfter": check.not_after.isoformat().replace("+00:00", "Z"),
        },
    )
    days_left = (check.not_after - now).total_seconds() / 86400
    if days_left <= 0:
        state.certificates_fingerprint = ""
        return CertificatesOutcome(False, f"client.pem expired on {check.not_after:%Y-%m-%d}", name)
    if days_left <= certificate_bundle.EXPIRY_WARNING_DAYS:
        message = f"client.pem expires in {days_left:.0f} days ({check.not_after:%Y-%m-%d})"
        outcome.events.append(("Warning", "CertificateExpiring", message))
    return outcome


def _sync(
    api: client.ApiClient,
    processor: ProcessorRef,
    s3: Any,
    bucket: str,
    prefix: str,
    versions: certificate_bundle.ObjectVersions,
    state: ProcessorState,
    now: datetime,
) -> list[tuple[str, str, str]]:
    """Compare with the Secret; download, check and write only when the objects changed."""
    name = certificate_bundle.secret_name(processor.name)
    existing = read_secret(api, processor.namespace, name)
    if not certificate_bundle.needs_sync(existing, versions):
        assert existing is not None
        files = {
            key: base64.b64decode(value) for key, value in (existing.get("data") or {}).items()
        }
        state.certificates_check = certificate_bundle.check_bundle(files, now)
        state.certificates_fingerprint = versions.fingerprint
        return []
    files = s3_certificates.download(s3, bucket, prefix)
    check = certificate_bundle.check_bundle(files, now)  # raises CertificateProblem naming the file
    manifest = certificate_bundle.secret_manifest(
        name, processor.namespace, processor.owner_reference(), files, versions.fingerprint
    )
    apply_secret(api, manifest, exists=existing is not None)
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
    api: client.ApiClient, processor: ProcessorRef, name: str, state: ProcessorState
) -> CertificatesOutcome:
    """A Secret the user manages: check that it holds the three files (once a minute)."""
    now = time.monotonic()
    if now - state.certificates_secret_checked < EXISTING_SECRET_RECHECK_SECONDS:
        return CertificatesOutcome(True, f"using Secret {name}", name)
    try:
        secret = read_secret(api, processor.namespace, name)
    except Exception as exc:
        return CertificatesOutcome(False, f"cannot read Secret {name}: {exc}"[:500], name)
    if secret is None:
        return CertificatesOutcome(False, f"Secret {name} does not exist", name)
    missing = [f for f in CERT_FILES if f not in (secret.get("data") or {})]
    if missing:
        return CertificatesOutcome(False, f"Secret {name} lacks {', '.join(missing)}", name)
    state.certificates_secret_checked = now
    return CertificatesOutcome(True, f"using Secret {name}", name)
