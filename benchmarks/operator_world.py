"""What the operator benchmarks run against: the Kubernetes API emulator of the tests (a
process), moto's S3 with a certificate bundle, SnowflakeProcessor manifests, and ways to
read what the emulator served and what the operator's /metrics say."""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import trustme
from kubernetes import client, config
from moto.server import ThreadedMotoServer
from prometheus_client.parser import text_string_to_metric_families
from tests.support.kube_server import start_kube_emulator, write_kubeconfig

from snowflake_operator.constants import GROUP, PLURAL, VERSION

WRITES = frozenset({"POST", "PUT", "PATCH", "DELETE"})
S3_PREFIX = "prod/"
# What a process needs in its environment to reach moto's S3 (besides the endpoint).
AWS_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "bench",
    "AWS_SECRET_ACCESS_KEY": "bench",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@dataclass
class KubeWorld:
    """A running Kubernetes emulator and moto S3 with a bucket of valid certificates."""

    kubeconfig: Path
    api: client.ApiClient
    emulator_port: int
    s3_endpoint: str
    bucket: str

    @property
    def custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(self.api)

    def environment(self) -> dict[str, str]:
        """What an operator needs to reach this world, like any cluster and S3."""
        return {
            "KUBECONFIG": str(self.kubeconfig),
            "SFP_OPERATOR_S3_ENDPOINT_URL": self.s3_endpoint,
            **AWS_ENVIRONMENT,
        }

    def create_processor(self, namespace: str, body: dict[str, Any]) -> None:
        self.custom.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)

    def requests(self) -> list[dict[str, Any]]:
        """What the emulator served since the last reset (see tests/support/kube_emulator)."""
        url = f"http://127.0.0.1:{self.emulator_port}/_emulator/requests"
        with urllib.request.urlopen(url, timeout=120) as response:
            return list(json.load(response))

    def writes(self) -> list[dict[str, Any]]:
        return [r for r in self.requests() if r["method"] in WRITES]

    def reset_requests(self) -> None:
        url = f"http://127.0.0.1:{self.emulator_port}/_emulator/reset"
        with urllib.request.urlopen(urllib.request.Request(url, method="POST"), timeout=120):
            pass


@contextmanager
def kube_world(tmp: Path) -> Iterator[KubeWorld]:
    kube = start_kube_emulator(tmp / "kube.log")
    moto, endpoint = _moto()
    try:
        kubeconfig = write_kubeconfig(tmp / "kubeconfig", kube.port)
        configuration = client.Configuration()
        config.load_kube_config(config_file=str(kubeconfig), client_configuration=configuration)
        bucket = _certificate_bucket(endpoint)
        yield KubeWorld(kubeconfig, client.ApiClient(configuration), kube.port, endpoint, bucket)
    finally:
        kube.stop()
        moto.stop()


def _moto() -> tuple[ThreadedMotoServer, str]:
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


def _certificate_bucket(endpoint: str) -> str:
    """A bucket holding a valid client.pem, client-key.pem and ca-cert.pem under prod/."""
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name=AWS_ENVIRONMENT["AWS_DEFAULT_REGION"],
        aws_access_key_id=AWS_ENVIRONMENT["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=AWS_ENVIRONMENT["AWS_SECRET_ACCESS_KEY"],
    )
    bucket = f"certs-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    ca, now = trustme.CA(), datetime.now(UTC)
    leaf = ca.issue_cert(
        "client", not_before=now - timedelta(days=1), not_after=now + timedelta(days=90)
    )
    files = {
        "client.pem": leaf.cert_chain_pems[0].bytes(),
        "client-key.pem": leaf.private_key_pem.bytes(),
        "ca-cert.pem": ca.cert_pem.bytes(),
    }
    for name, data in files.items():
        s3.put_object(Bucket=bucket, Key=S3_PREFIX + name, Body=data)
    return bucket


def processor_body(
    name: str, namespace: str, table: str, snowflake_port: int, bucket: str, **spec: Any
) -> dict[str, Any]:
    """A SnowflakeProcessor on BENCH.QUEUE.<table> of the Snowflake emulator; ``spec``
    adds or replaces top-level spec fields."""
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "SnowflakeProcessor",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "snowflake": {
                "account": "bench",
                "database": "BENCH",
                "schema": "QUEUE",
                "table": table,
                "auth": {"mode": "emulator"},
                "host": "127.0.0.1",
                "port": snowflake_port,
            },
            "endpoint": {"url": "https://service.example.com/"},
            "certificates": {"s3": {"bucket": bucket, "prefix": S3_PREFIX}},
            **spec,
        },
    }


def metric_total(port: int, name: str) -> float:
    """The sum of a metric's samples over every resource, from the operator's /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=120) as response:
        text = response.read().decode()
    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    )


def wait(check: Callable[[], object], timeout: float = 60, what: str = "the operator") -> None:
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise RuntimeError(f"operator benchmark: timed out waiting for {what}")
        time.sleep(0.5)


def environment_with(**changes: str) -> dict[str, str]:
    return {**os.environ, **changes}
