"""The certificate bundle's checks and Secret (poll/certificate_bundle.py) and its S3 I/O
(kube/s3_certificates.py) against a real (moto) S3 server; certificates made by trustme."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import trustme
from cryptography.hazmat.primitives import serialization

from snowflake_operator.constants import CERT_FILES, FINGERPRINT_ANNOTATION, MANAGED_BY
from snowflake_operator.kube.s3_certificates import download, list_versions, make_s3_client
from snowflake_operator.poll.certificate_bundle import (
    EXPIRY_WARNING_DAYS,
    ObjectVersions,
    check_bundle,
    needs_sync,
    secret_manifest,
    secret_name,
)
from tests.support.cert_bundles import Bundle, make_bundle, problem_from
from tests.support.s3 import PREFIX, REGION
from tests.support.s3 import upload as upload_files

pytestmark = pytest.mark.integration

NOW = datetime.now(UTC).replace(microsecond=0)
OWNER = {
    "apiVersion": "snowflake-processor.dev/v1",
    "kind": "SnowflakeProcessor",
    "name": "orders",
    "uid": "0b0c6a52-8f1e-4d1c-9c55-2a3c9f0d7e11",
    "controller": True,
    "blockOwnerDeletion": True,
}


# --- fixtures (moto's S3, a bucket and the CA come from conftest) ----------------------


@pytest.fixture
def bundle(ca: trustme.CA) -> Bundle:
    return make_bundle(ca)


@pytest.fixture
def upload(s3: Any, bucket: str) -> Callable[..., None]:
    def put(files: Bundle, prefix: str = PREFIX) -> None:
        upload_files(s3, bucket, files, prefix)

    return put


# --- listing and downloading ------------------------------------------------------------


def test_list_versions_returns_the_three_etags_and_a_stable_fingerprint(
    s3: Any, bucket: str, bundle: Bundle, upload: Callable[..., None]
) -> None:
    upload(bundle)

    first = list_versions(s3, bucket, PREFIX)
    second = list_versions(s3, bucket, PREFIX)

    assert set(first.etags) == set(CERT_FILES)
    for name in CERT_FILES:  # the quotes S3 puts around an ETag are gone
        assert first.etags[name] == hashlib.md5(bundle[name]).hexdigest()  # noqa: S324
    assert re.fullmatch(r"[0-9a-f]{64}", first.fingerprint)
    assert second.fingerprint == first.fingerprint


def test_only_the_exact_keys_under_the_prefix_count(
    s3: Any, bucket: str, ca: trustme.CA, bundle: Bundle, upload: Callable[..., None]
) -> None:
    upload(bundle)
    before = list_versions(s3, bucket, PREFIX).fingerprint

    upload(make_bundle(ca), prefix="staging/")
    upload(make_bundle(ca), prefix=PREFIX + "old/")
    s3.put_object(Bucket=bucket, Key=PREFIX + "client.pem.bak", Body=b"other")

    assert list_versions(s3, bucket, PREFIX).fingerprint == before
    assert list_versions(s3, bucket, "staging/").fingerprint != before


def test_identical_reupload_needs_no_sync_but_a_changed_file_does(
    s3: Any, bucket: str, ca: trustme.CA, bundle: Bundle, upload: Callable[..., None]
) -> None:
    upload(bundle)
    synced = list_versions(s3, bucket, PREFIX)
    secret = secret_manifest("orders-certificates", "ns", OWNER, bundle, synced.fingerprint)
    assert needs_sync(secret, synced) is False

    s3.put_object(Bucket=bucket, Key=PREFIX + "client.pem", Body=bundle["client.pem"])
    versions = s3.list_object_versions(Bucket=bucket, Prefix=PREFIX + "client.pem")["Versions"]
    assert len(versions) == 2  # a new object version exists ...
    same = list_versions(s3, bucket, PREFIX)
    assert same.fingerprint == synced.fingerprint  # ... but its content, hence ETag, is equal
    assert needs_sync(secret, same) is False

    s3.put_object(Bucket=bucket, Key=PREFIX + "client.pem", Body=make_bundle(ca)["client.pem"])
    changed = list_versions(s3, bucket, PREFIX)
    assert changed.fingerprint != synced.fingerprint
    assert changed.etags["client-key.pem"] == synced.etags["client-key.pem"]
    assert changed.etags["client.pem"] != synced.etags["client.pem"]
    assert needs_sync(secret, changed) is True


@pytest.mark.parametrize("missing", CERT_FILES)
def test_a_missing_file_is_named(
    s3: Any, bucket: str, bundle: Bundle, upload: Callable[..., None], missing: str
) -> None:
    upload(bundle)
    s3.delete_object(Bucket=bucket, Key=PREFIX + missing)  # versioned: a delete marker

    problem = problem_from(lambda: list_versions(s3, bucket, PREFIX))

    assert problem.file == missing
    assert problem.reason == f"missing from s3://{bucket}/{PREFIX}"
    download_problem = problem_from(lambda: download(s3, bucket, PREFIX))
    assert download_problem.file == missing


def test_an_empty_bucket_names_the_first_file(s3: Any, bucket: str) -> None:
    problem = problem_from(lambda: list_versions(s3, bucket, PREFIX))
    assert problem.file == CERT_FILES[0]


def test_download_returns_the_exact_bytes(
    s3: Any, bucket: str, bundle: Bundle, upload: Callable[..., None]
) -> None:
    upload(bundle)
    assert download(s3, bucket, PREFIX) == bundle


def test_make_s3_client_uses_the_given_endpoint(
    s3_endpoint: str,
    bucket: str,
    bundle: Bundle,
    upload: Callable[..., None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    upload(bundle)

    client = make_s3_client(REGION, s3_endpoint)

    assert client.meta.endpoint_url == s3_endpoint
    assert download(client, bucket, PREFIX) == bundle
    assert make_s3_client(REGION, "http://127.0.0.1:1").meta.endpoint_url == ("http://127.0.0.1:1")


# --- checking the bundle ----------------------------------------------------------------


@pytest.mark.parametrize("key_type", [trustme.KeyType.ECDSA, trustme.KeyType.RSA])
def test_a_valid_bundle_passes_and_reports_its_expiry(
    ca: trustme.CA, key_type: trustme.KeyType
) -> None:
    not_after = NOW + timedelta(days=90)
    check = check_bundle(make_bundle(ca, not_after=not_after, key_type=key_type), NOW)

    assert check.not_after == not_after
    assert check.expires_in_days == pytest.approx(90)
    assert check.expires_soon is False
    assert "CN=snowflake-processor-client" in check.subject


def test_a_key_from_another_certificate_is_named(ca: trustme.CA, bundle: Bundle) -> None:
    other = make_bundle(ca)
    problem = problem_from(
        lambda: check_bundle({**bundle, "client-key.pem": other["client-key.pem"]}, NOW)
    )
    assert problem.file == "client-key.pem"
    assert str(problem) == "client-key.pem: does not match client.pem"


def test_an_encrypted_key_is_named(ca: trustme.CA, bundle: Bundle) -> None:
    key = serialization.load_pem_private_key(bundle["client-key.pem"], password=None)
    encrypted = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"secret"),
    )
    problem = problem_from(lambda: check_bundle({**bundle, "client-key.pem": encrypted}, NOW))
    assert problem.file == "client-key.pem"
    assert "encrypted" in problem.reason


@pytest.mark.parametrize(
    ("file", "content"),
    [
        ("ca-cert.pem", b"this is not a certificate\n"),
        (
            "ca-cert.pem",
            b"-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n",
        ),
        ("client.pem", b"garbage"),
        ("client-key.pem", b"garbage"),
        ("client.pem", b""),
    ],
)
def test_garbage_is_named(bundle: Bundle, file: str, content: bytes) -> None:
    problem = problem_from(lambda: check_bundle({**bundle, file: content}, NOW))
    assert problem.file == file


def test_a_key_in_place_of_the_certificate_is_named(bundle: Bundle) -> None:
    swapped = {**bundle, "client.pem": bundle["client-key.pem"]}
    problem = problem_from(lambda: check_bundle(swapped, NOW))
    assert problem.file == "client.pem"
    assert problem.reason == "is not a PEM certificate"


def test_a_ca_file_with_several_certificates_passes(ca: trustme.CA, bundle: Bundle) -> None:
    other_ca = trustme.CA()
    two = bundle["ca-cert.pem"] + other_ca.cert_pem.bytes()
    assert check_bundle({**bundle, "ca-cert.pem": two}, NOW).expires_soon is False


def test_a_certificate_expiring_in_five_days_expires_soon(ca: trustme.CA) -> None:
    check = check_bundle(make_bundle(ca, not_after=NOW + timedelta(days=5)), NOW)
    assert check.expires_soon is True
    assert check.expires_in_days == pytest.approx(5)


def test_the_warning_starts_at_the_threshold(ca: trustme.CA) -> None:
    outside = NOW + timedelta(days=EXPIRY_WARNING_DAYS, hours=1)
    inside = NOW + timedelta(days=EXPIRY_WARNING_DAYS, hours=-1)
    assert check_bundle(make_bundle(ca, not_after=outside), NOW).expires_soon is False
    assert check_bundle(make_bundle(ca, not_after=inside), NOW).expires_soon is True


def test_an_expired_certificate_is_a_problem(ca: trustme.CA) -> None:
    expired = make_bundle(
        ca, not_before=NOW - timedelta(days=30), not_after=NOW - timedelta(days=1)
    )
    problem = problem_from(lambda: check_bundle(expired, NOW))
    assert problem.file == "client.pem"
    expected_day = (NOW - timedelta(days=1)).strftime("%Y-%m-%d")
    assert problem.reason.startswith(f"expired on {expected_day}")


def test_a_certificate_not_yet_valid_is_a_problem(ca: trustme.CA) -> None:
    future = make_bundle(ca, not_before=NOW + timedelta(days=2))
    problem = problem_from(lambda: check_bundle(future, NOW))
    assert problem.file == "client.pem"
    assert problem.reason.startswith("not valid before")


def test_a_naive_now_is_refused(bundle: Bundle) -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        check_bundle(bundle, datetime.now())


# --- the Secret -------------------------------------------------------------------------


def test_secret_manifest_carries_owner_bytes_and_fingerprint(bundle: Bundle) -> None:
    fingerprint = ObjectVersions({"client.pem": "a", "client-key.pem": "b", "ca-cert.pem": "c"})
    manifest = secret_manifest(
        "orders-certificates", "jobs", OWNER, bundle, fingerprint.fingerprint
    )

    assert manifest["apiVersion"] == "v1"
    assert manifest["kind"] == "Secret"
    assert manifest["type"] == "Opaque"
    metadata = manifest["metadata"]
    assert metadata["name"] == "orders-certificates"
    assert metadata["namespace"] == "jobs"
    assert metadata["ownerReferences"] == [OWNER]
    assert metadata["labels"] == {
        "app.kubernetes.io/managed-by": MANAGED_BY,
        "snowflake-processor.dev/processor": "orders",
    }
    assert metadata["annotations"] == {FINGERPRINT_ANNOTATION: fingerprint.fingerprint}
    assert set(manifest["data"]) == set(CERT_FILES)
    for name in CERT_FILES:
        assert base64.b64decode(manifest["data"][name], validate=True) == bundle[name]


def test_secret_manifest_keeps_the_processor_label_valid_for_long_names(bundle: Bundle) -> None:
    long_owner = {**OWNER, "name": "p" * 200}
    label = secret_manifest("x", "ns", long_owner, bundle, "f")["metadata"]["labels"][
        "snowflake-processor.dev/processor"
    ]
    assert len(label) <= 63
    assert re.fullmatch(r"[a-z0-9]([-a-z0-9_.]*[a-z0-9])?", label)


def test_secret_manifest_refuses_an_incomplete_bundle(bundle: Bundle) -> None:
    partial = {name: data for name, data in bundle.items() if name != "ca-cert.pem"}
    problem = problem_from(lambda: secret_manifest("x", "ns", OWNER, partial, "f"))
    assert problem.file == "ca-cert.pem"


def test_secret_name_is_a_valid_distinct_dns_name() -> None:
    assert secret_name("orders") == "orders-certificates"

    first = secret_name("a" * 230 + "-" + "b" * 22)
    second = secret_name("a" * 230 + "-" + "c" * 22)
    for name in (first, second):
        assert len(name) <= 253
        assert name.endswith("-certificates")
        assert re.fullmatch(r"[a-z0-9]([-a-z0-9.]*[a-z0-9])?", name)
    assert first != second
    assert secret_name("x" * 240) == "x" * 240 + "-certificates"  # exactly 253: kept whole


def test_needs_sync_without_a_secret_or_annotation() -> None:
    versions = ObjectVersions({"client.pem": "a", "client-key.pem": "b", "ca-cert.pem": "c"})
    assert needs_sync(None, versions) is True
    assert needs_sync({"metadata": {"name": "orders-certificates"}}, versions) is True
    stale = {"metadata": {"annotations": {FINGERPRINT_ANNOTATION: "0" * 64}}}
    assert needs_sync(stale, versions) is True
    current = {"metadata": {"annotations": {FINGERPRINT_ANNOTATION: versions.fingerprint}}}
    assert needs_sync(current, versions) is False


def test_fingerprint_ignores_order_but_not_which_file_has_which_etag() -> None:
    one = ObjectVersions({"client.pem": "a", "client-key.pem": "b", "ca-cert.pem": "c"})
    reordered = ObjectVersions({"ca-cert.pem": "c", "client-key.pem": "b", "client.pem": "a"})
    swapped = ObjectVersions({"client.pem": "b", "client-key.pem": "a", "ca-cert.pem": "c"})
    assert one.fingerprint == reordered.fingerprint
    assert one.fingerprint != swapped.fingerprint
