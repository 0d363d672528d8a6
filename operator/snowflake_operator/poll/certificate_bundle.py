"""The worker's mTLS files as a bundle: checks, fingerprint and Secret manifest. Pure.

The operator lists the three objects in S3 (kube/s3_certificates.py), compares their ETags with
the fingerprint annotation on the Secret it owns (:func:`needs_sync`), and only when they
differ downloads the files, checks them (:func:`check_bundle`) and writes a new Secret
(:func:`secret_manifest`); kube/certificate_sync.py does that I/O.

Nothing in this module logs or raises with file contents: a :class:`CertificateProblem`
names the file and what is wrong with it, never the PEM text or key material.

Race between listing and downloading: if an object changes in between, the Secret gets the
new bytes under the old fingerprint, and the next listing differs from that fingerprint,
so the next sync writes it again. It converges; it never keeps stale bytes under a new
fingerprint.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from snowflake_operator.constants import (
    CA_CERT,
    CERT_FILES,
    CLIENT_CERT,
    CLIENT_KEY,
    FINGERPRINT_ANNOTATION,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    PROCESSOR_LABEL,
)
from snowflake_worker.tls import validity_problem

EXPIRY_WARNING_DAYS = 14

# A Secret holds at most 1 MiB and base64 grows data by 4/3: three files of this size fit.
MAX_FILE_BYTES = 200 * 1024
MAX_SECRET_NAME = 253  # a DNS subdomain
MAX_LABEL_VALUE = 63
_NAME_SUFFIX = "-certificates"
_HASH_CHARS = 8


class CertificateProblem(Exception):
    """One of the three files is missing or unusable. Never carries file contents."""

    def __init__(self, file: str, reason: str) -> None:
        super().__init__(f"{file}: {reason}")
        self.file = file
        self.reason = reason


@dataclass(frozen=True)
class ObjectVersions:
    """What S3 holds now: file name -> ETag (or VersionId) of its current object."""

    etags: dict[str, str]

    @property
    def fingerprint(self) -> str:
        """sha256 over the sorted ``file:etag`` pairs; equal iff every file's version is."""
        text = "\n".join(f"{name}:{self.etags[name]}" for name in sorted(self.etags))
        return hashlib.sha256(text.encode()).hexdigest()


# Reasons of the CertificatesSynced condition.
SYNCED, INVALID, SECRET_CONFLICT = "Synced", "Invalid", "SecretConflict"


@dataclass
class CertificatesOutcome:
    """The certificates step of a poll: whether Jobs may launch, and what to report."""

    ready: bool
    message: str
    secret_name: str = ""
    events: list[tuple[str, str, str]] = field(default_factory=list)
    status: dict[str, Any] = field(default_factory=dict)
    reason: str = ""  # the condition's reason; empty: Synced when ready, else Invalid

    @property
    def condition_reason(self) -> str:
        return self.reason or (SYNCED if self.ready else INVALID)


@dataclass(frozen=True)
class BundleCheck:
    not_after: datetime
    expires_in_days: float
    expires_soon: bool
    subject: str


def _certificates(files: dict[str, bytes], name: str, what: str) -> list[x509.Certificate]:
    data = files.get(name)
    if not data:
        raise CertificateProblem(name, "missing or empty")
    try:
        return x509.load_pem_x509_certificates(data)
    except ValueError:
        # The library's message is not passed on: keep file contents out of errors.
        raise CertificateProblem(name, f"is not {what}") from None


def _public_key_der(key: Any) -> bytes:
    return bytes(
        key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def check_bundle(files: dict[str, bytes], now: datetime) -> BundleCheck:
    """Parse and cross-check the three files; raise CertificateProblem naming the bad file.

    client.pem: PEM certificate(s), the first being the client's (a chain may follow);
    client-key.pem: an unencrypted PEM private key for that certificate;
    ca-cert.pem: one or more PEM certificates. The client certificate must be valid at
    ``now`` (timezone-aware); ``expires_soon`` within :data:`EXPIRY_WARNING_DAYS`.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    client = _certificates(files, CLIENT_CERT, "a PEM certificate")[0]

    key_data = files.get(CLIENT_KEY)
    if not key_data:
        raise CertificateProblem(CLIENT_KEY, "missing or empty")
    try:
        key = serialization.load_pem_private_key(key_data, password=None)
    except TypeError:
        raise CertificateProblem(
            CLIENT_KEY, "is encrypted; the worker needs an unencrypted private key"
        ) from None
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateProblem(CLIENT_KEY, "is not a PEM private key") from None
    try:
        cert_public = _public_key_der(client.public_key())
    except (ValueError, UnsupportedAlgorithm):
        raise CertificateProblem(CLIENT_CERT, "has an unsupported public key type") from None
    if _public_key_der(key.public_key()) != cert_public:
        raise CertificateProblem(CLIENT_KEY, f"does not match {CLIENT_CERT}")

    _certificates(files, CA_CERT, "one or more PEM certificates")

    not_after = client.not_valid_after_utc
    problem = validity_problem(client.not_valid_before_utc, not_after, now)
    if problem is not None:  # the worker refuses the same certificate the same way
        raise CertificateProblem(CLIENT_CERT, problem)
    expires_in_days = (not_after - now).total_seconds() / 86400
    return BundleCheck(
        not_after=not_after,
        expires_in_days=expires_in_days,
        expires_soon=expires_in_days <= EXPIRY_WARNING_DAYS,
        subject=client.subject.rfc4514_string(),
    )


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:_HASH_CHARS]


def _label_value(value: str) -> str:
    """A valid label value (63 characters); a cut one gets a hash to stay distinct."""
    if len(value) <= MAX_LABEL_VALUE:
        return value
    head = value[: MAX_LABEL_VALUE - _HASH_CHARS - 1].rstrip("-._")
    return f"{head}-{_short_hash(value)}"


def secret_name(processor_name: str) -> str:
    """``<processor>-certificates``; past 253 characters the name part is cut and a hash of
    the full name added, so two long processor names never share a Secret."""
    name = processor_name + _NAME_SUFFIX
    if len(name) <= MAX_SECRET_NAME:
        return name
    head = processor_name[: MAX_SECRET_NAME - len(_NAME_SUFFIX) - _HASH_CHARS - 1]
    return f"{head.rstrip('-.')}-{_short_hash(processor_name)}{_NAME_SUFFIX}"


def secret_manifest(
    name: str,
    namespace: str,
    owner: dict[str, Any],
    files: dict[str, bytes],
    fingerprint: str,
) -> dict[str, Any]:
    """A v1 Secret holding the three files, owned by ``owner`` (a full ownerReference)."""
    data: dict[str, str] = {}
    for file in CERT_FILES:
        if file not in files:
            raise CertificateProblem(file, "missing")
        data[file] = base64.b64encode(files[file]).decode("ascii")
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {
                MANAGED_BY_LABEL: MANAGED_BY,
                PROCESSOR_LABEL: _label_value(str(owner["name"])),
            },
            "annotations": {FINGERPRINT_ANNOTATION: fingerprint},
            "ownerReferences": [dict(owner)],
        },
        "data": data,
    }


def owned_by(secret: dict[str, Any], owner_uid: str) -> bool:
    """Whether the operator wrote this Secret for the resource ``owner_uid``: it carries the
    operator's managed-by label and that resource's controller ownerReference. Any other
    Secret, even one of the same name, is never changed (nor mounted as synced)."""
    metadata = secret.get("metadata") or {}
    labels = metadata.get("labels") or {}
    references = metadata.get("ownerReferences") or []
    return labels.get(MANAGED_BY_LABEL) == MANAGED_BY and any(
        ref.get("uid") == owner_uid and ref.get("controller") for ref in references
    )


def needs_sync(existing_secret: dict[str, Any] | None, versions: ObjectVersions) -> bool:
    """True when there is no Secret yet or it was written from other object versions."""
    if existing_secret is None:
        return True
    metadata = existing_secret.get("metadata") or {}
    annotations = metadata.get("annotations") or {}
    return bool(annotations.get(FINGERPRINT_ANNOTATION) != versions.fingerprint)
