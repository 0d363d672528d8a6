"""S3 for tests: moto's server on 127.0.0.1, a client for it and versioned buckets."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

REGION = "us-east-1"
PREFIX = "prod/"
# moto accepts any credentials; these are the ones the tests hand to the operator too.
ACCESS_KEY_ID = SECRET_ACCESS_KEY = "testing"


@contextmanager
def moto_server() -> Iterator[str]:
    """moto's S3 server in a thread; yields its endpoint URL."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        region_name=REGION,
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )


def s3_environment(endpoint: str) -> dict[str, str]:
    """What a process (the operator) needs in its environment to reach the same S3."""
    return {
        "SFP_OPERATOR_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_DEFAULT_REGION": REGION,
    }


def versioned_bucket(s3: Any) -> str:
    """A new, empty bucket with versioning on, as the certificates bucket is."""
    name = f"certs-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=name)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    return name


def upload(s3: Any, bucket: str, files: Mapping[str, bytes], prefix: str = PREFIX) -> None:
    for name, data in files.items():
        s3.put_object(Bucket=bucket, Key=prefix + name, Body=data)
