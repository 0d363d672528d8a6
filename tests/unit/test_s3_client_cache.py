"""The operator's S3 clients: one per region and endpoint, built once (building one costs
milliseconds of CPU, which a poll of an idle resource must not spend)."""

from __future__ import annotations

import pytest

from snowflake_operator.kube.s3_certificates import make_s3_client


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")


def test_one_client_per_region_and_endpoint() -> None:
    first = make_s3_client("eu-west-1", "http://127.0.0.1:9")
    assert make_s3_client("eu-west-1", "http://127.0.0.1:9") is first
    assert make_s3_client("us-east-1", "http://127.0.0.1:9") is not first
    assert make_s3_client("eu-west-1", None) is not first
    assert first.meta.region_name == "eu-west-1"
    assert first.meta.endpoint_url == "http://127.0.0.1:9"
