"""The certificate files in S3: list their versions and download them (boto3 I/O).

Nothing here logs or raises with file contents: a :class:`CertificateProblem` names the
file and what is wrong with it.
"""

from __future__ import annotations

import threading
from typing import Any

from snowflake_operator.constants import CERT_FILES
from snowflake_operator.poll.certificate_bundle import (
    MAX_FILE_BYTES,
    CertificateProblem,
    ObjectVersions,
)


def _location(bucket: str, prefix: str) -> str:
    return f"s3://{bucket}/{prefix}"


def list_versions(s3: Any, bucket: str, prefix: str) -> ObjectVersions:
    """ETags of ``prefix + name`` for the three files, from one listing (no download).

    Objects deeper under the prefix (``prefix + "old/client.pem"``) never count: only the
    exact keys do. Raises :class:`CertificateProblem` for the first missing file, or for a
    file too large to fit in a Secret.
    """
    wanted = {prefix + name: name for name in CERT_FILES}
    found: dict[str, str] = {}
    request: dict[str, Any] = {"Bucket": bucket, "Prefix": prefix, "Delimiter": "/"}
    while True:
        page = s3.list_objects_v2(**request)
        for item in page.get("Contents", []):
            name = wanted.get(item["Key"])
            if name is None:
                continue
            if int(item.get("Size", 0)) > MAX_FILE_BYTES:
                raise CertificateProblem(
                    name, f"is {item['Size']} bytes, more than the {MAX_FILE_BYTES} allowed"
                )
            found[name] = str(item["ETag"]).strip('"')
        # One call covers any sane prefix; only a prefix holding over 1000 other objects
        # needs the next page.
        if len(found) == len(CERT_FILES) or not page.get("IsTruncated"):
            break
        request["ContinuationToken"] = page["NextContinuationToken"]
    for name in CERT_FILES:
        if name not in found:
            raise CertificateProblem(name, f"missing from {_location(bucket, prefix)}")
    return ObjectVersions(etags={name: found[name] for name in CERT_FILES})


def download(s3: Any, bucket: str, prefix: str) -> dict[str, bytes]:
    """The three files' bytes (``get_object`` each). A missing one is a CertificateProblem."""
    from botocore.exceptions import ClientError

    files: dict[str, bytes] = {}
    for name in CERT_FILES:
        try:
            response = s3.get_object(Bucket=bucket, Key=prefix + name)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", ""))
            if code in ("NoSuchKey", "404", "NotFound"):
                raise CertificateProblem(
                    name, f"missing from {_location(bucket, prefix)}"
                ) from None
            raise
        body = response["Body"]
        try:
            data = body.read(MAX_FILE_BYTES + 1)
        finally:
            body.close()
        if len(data) > MAX_FILE_BYTES:
            raise CertificateProblem(name, f"is more than the {MAX_FILE_BYTES} bytes allowed")
        files[name] = bytes(data)
    return files


_clients: dict[tuple[str | None, str | None], Any] = {}
_clients_lock = threading.Lock()


def make_s3_client(region: str | None, endpoint_url: str | None = None) -> Any:
    """The S3 client for a region (and endpoint), made once and shared: building one costs
    milliseconds of CPU, a poll of an idle resource must not spend them. A client is safe
    to share between threads, and refreshes its credentials itself (IRSA in the cluster:
    the default credential chain).

    ``endpoint_url`` (the operator's SFP_OPERATOR_S3_ENDPOINT_URL) is for tests and
    local S3 emulators only; production uses AWS's endpoints.
    """
    key = (region, endpoint_url)
    with _clients_lock:  # making clients is not thread-safe; using them is
        if key not in _clients:
            _clients[key] = _new_client(region, endpoint_url)
        return _clients[key]


def _new_client(region: str | None, endpoint_url: str | None) -> Any:
    import boto3
    from botocore.config import Config

    config = Config(
        connect_timeout=5,
        read_timeout=15,
        retries={"max_attempts": 3, "mode": "standard"},
    )
    return boto3.client("s3", region_name=region, endpoint_url=endpoint_url, config=config)
