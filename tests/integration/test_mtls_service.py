"""The local mTLS service: who it lets in, what it answers, and what it counts."""

from __future__ import annotations

import json
import os
import ssl
import stat
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from snowflake_devtools.certificates import (
    DemoCertificates,
    write_demo_certificates,
    write_mismatched_key_client,
    write_untrusted_client,
)
from snowflake_devtools.mtls_service import client_ssl_context, fetch_stats
from snowflake_devtools.processes import ServerProcess
from tests.support.mtls_client import context_for, entry_body, post_entry
from tests.support.polling import wait_for
from tests.support.worker_runs import StartService, mtls_services

pytestmark = pytest.mark.integration


@pytest.fixture
def certs(tmp_path: Path) -> DemoCertificates:
    """Per test, not the session's: these tests look at the files themselves."""
    return write_demo_certificates(tmp_path / "certs")


@pytest.fixture
def start_service(certs: DemoCertificates, tmp_path: Path) -> Iterator[StartService]:
    with mtls_services(certs, tmp_path, latency_ms=1) as start:
        yield start


@pytest.fixture
def service(start_service: StartService) -> ServerProcess:
    return start_service()


def test_demo_certificates_layout(certs: DemoCertificates) -> None:
    assert sorted(p.name for p in certs.client_dir.iterdir()) == [
        "ca-cert.pem",
        "client-key.pem",
        "client.pem",
    ]
    assert certs.client_cert == certs.client_dir / "client.pem"
    assert certs.client_key == certs.client_dir / "client-key.pem"
    assert (certs.client_dir / "ca-cert.pem").read_bytes() == certs.ca_cert.read_bytes()
    for key in (certs.server_key, certs.client_key):
        assert stat.S_IMODE(os.stat(key).st_mode) == 0o600

    ca = x509.load_pem_x509_certificate(certs.ca_cert.read_bytes())
    client = x509.load_pem_x509_certificate(certs.client_cert.read_bytes())
    server = x509.load_pem_x509_certificate(certs.server_cert.read_bytes())
    assert client.issuer == ca.subject
    assert server.issuer == ca.subject
    cn = client.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value
    assert cn == "snowflake-processor-demo"
    names = server.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in names.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in names.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]


def test_untrusted_client_is_signed_elsewhere_but_trusts_the_server(
    certs: DemoCertificates, tmp_path: Path
) -> None:
    directory = write_untrusted_client(tmp_path / "certs")
    assert sorted(p.name for p in directory.iterdir()) == [
        "ca-cert.pem",
        "client-key.pem",
        "client.pem",
    ]
    assert (directory / "ca-cert.pem").read_bytes() == certs.ca_cert.read_bytes()
    ca = x509.load_pem_x509_certificate(certs.ca_cert.read_bytes())
    client = x509.load_pem_x509_certificate((directory / "client.pem").read_bytes())
    assert client.issuer != ca.subject
    assert stat.S_IMODE(os.stat(directory / "client-key.pem").st_mode) == 0o600


def test_mismatched_key_client_cannot_be_loaded(certs: DemoCertificates, tmp_path: Path) -> None:
    directory = write_mismatched_key_client(certs, tmp_path / "bad")
    assert (directory / "client.pem").read_bytes() == certs.client_cert.read_bytes()
    assert (directory / "client-key.pem").read_bytes() != certs.client_key.read_bytes()
    with pytest.raises(ssl.SSLError):
        context_for(directory)


def test_trusted_client_gets_200_and_is_counted(
    service: ServerProcess, certs: DemoCertificates
) -> None:
    response = post_entry(service.port, client_ssl_context(certs), entry_body("e-1"), key="k-1")
    assert response.status_code == 200
    assert response.json() == {"ok": True, "entry_id": "e-1"}
    assert fetch_stats(service.port, certs) == {
        "requests": 1,
        "successes": 1,
        "distinct_successes": 1,
        "duplicates": 0,
        "status_counts": {"200": 1},
        "missing_idempotency_key": 0,
        "streamed_body_bytes": 0,
        "methods": {"POST": 1},
        "unauthorized": 0,
    }


def test_client_folder_works_as_the_worker_would_load_it(
    service: ServerProcess, certs: DemoCertificates
) -> None:
    response = post_entry(service.port, context_for(certs.client_dir), entry_body("e-1"))
    assert response.status_code == 200


def test_same_idempotency_key_twice_is_one_duplicate(
    service: ServerProcess, certs: DemoCertificates
) -> None:
    context = client_ssl_context(certs)
    for _ in range(2):
        assert post_entry(service.port, context, entry_body("e-1"), key="same").status_code == 200
    assert post_entry(service.port, context, entry_body("e-2"), key="other").status_code == 200
    stats = fetch_stats(service.port, certs)
    assert stats["requests"] == 3
    assert stats["successes"] == 3
    assert stats["distinct_successes"] == 2
    assert stats["duplicates"] == 1


def test_missing_idempotency_key_falls_back_to_entry_id(
    service: ServerProcess, certs: DemoCertificates
) -> None:
    context = client_ssl_context(certs)
    for _ in range(2):
        assert post_entry(service.port, context, entry_body("e-7"), key=None).status_code == 200
    stats = fetch_stats(service.port, certs)
    assert stats["missing_idempotency_key"] == 2
    assert stats["distinct_successes"] == 1
    assert stats["duplicates"] == 1


def test_client_without_certificate_is_rejected(
    service: ServerProcess, certs: DemoCertificates
) -> None:
    no_cert = ssl.create_default_context(cafile=str(certs.ca_cert))
    with pytest.raises(httpx.TransportError):
        post_entry(service.port, no_cert, entry_body("e-1"))
    stats = fetch_stats(service.port, certs)
    assert stats["requests"] == 0
    assert stats["successes"] == 0


def test_client_from_untrusted_ca_is_rejected(
    service: ServerProcess, certs: DemoCertificates, tmp_path: Path
) -> None:
    untrusted = context_for(write_untrusted_client(tmp_path / "certs"))
    with pytest.raises(httpx.TransportError):
        post_entry(service.port, untrusted, entry_body("e-1"))
    stats = fetch_stats(service.port, certs)
    assert stats["requests"] == 0
    assert stats["successes"] == 0


@pytest.mark.parametrize(
    "data", [{"poison": True, "value": 1}, json.dumps({"poison": True})], ids=["object", "string"]
)
def test_poison_entry_is_rejected_every_time(
    service: ServerProcess, certs: DemoCertificates, data: Any
) -> None:
    context = client_ssl_context(certs)
    for _ in range(3):
        response = post_entry(service.port, context, entry_body("e-p", data), key="poison-key")
        assert response.status_code == 422
        assert response.json() == {"error": "poison entry rejected"}
    stats = fetch_stats(service.port, certs)
    assert stats["status_counts"] == {"422": 3}
    assert stats["successes"] == 0
    assert stats["distinct_successes"] == 0


def test_delay_seconds_slows_one_answer(service: ServerProcess, certs: DemoCertificates) -> None:
    context = client_ssl_context(certs)
    started = time.monotonic()
    response = post_entry(service.port, context, entry_body("e-1", {"delay_seconds": 1}))
    assert response.status_code == 200
    assert time.monotonic() - started >= 1
    with pytest.raises(httpx.ReadTimeout):
        post_entry(service.port, context, entry_body("e-2", {"delay_seconds": 5}), timeout=0.5)


def test_trickle_sends_the_status_then_a_byte_at_a_time(
    service: ServerProcess, certs: DemoCertificates
) -> None:
    url = f"https://127.0.0.1:{service.port}/v1/process"
    body = entry_body("e-1", {"trickle_seconds": 0.2})
    with (
        httpx.Client(verify=client_ssl_context(certs), timeout=5) as client,
        client.stream("POST", url, json=body) as response,
    ):
        assert response.status_code == 200
        raw = response.iter_raw()
        chunks = [next(raw) for _ in range(3)]
    assert chunks == [b"x", b"x", b"x"]
    stats = wait_for(
        lambda: (s := fetch_stats(service.port, certs))["streamed_body_bytes"] and s, 10, "count"
    )
    assert 3 <= stats["streamed_body_bytes"] < 30  # it stopped when the client left
    assert stats["status_counts"] == {"200": 1}


def test_error_body_bytes_streams_a_422_until_the_client_leaves(
    service: ServerProcess, certs: DemoCertificates
) -> None:
    url = f"https://127.0.0.1:{service.port}/v1/process"
    size = 500 * 1024 * 1024
    with httpx.Client(verify=client_ssl_context(certs), timeout=5) as client:
        response = client.post(url, json=entry_body("e-1", {"error_body_bytes": 1000}))
        assert (response.status_code, response.content) == (422, b"x" * 1000)
        with client.stream("POST", url, json=entry_body("e-2", {"error_body_bytes": size})) as big:
            assert big.status_code == 422
            assert big.headers["content-length"] == str(size)
            next(big.iter_raw())
    stats = wait_for(
        lambda: (s := fetch_stats(service.port, certs))["streamed_body_bytes"] > 1000 and s,
        10,
        "the large body's count",
    )
    assert stats["streamed_body_bytes"] < 100 * 1024 * 1024
    assert stats["status_counts"] == {"422": 2}
    assert stats["successes"] == 0


def test_poison_must_be_true_not_truthy(service: ServerProcess, certs: DemoCertificates) -> None:
    response = post_entry(
        service.port, client_ssl_context(certs), entry_body("e-1", {"poison": "yes"})
    )
    assert response.status_code == 200


@pytest.mark.parametrize(
    ("body", "key"),
    [
        (b"not json", "key-1"),
        (b"[1, 2]", None),  # the data alone, but no Idempotency-Key to name its entry
        (json.dumps({"data": {}}).encode(), None),
    ],
    ids=["not-json", "not-object", "no-entry-id"],
)
def test_bad_body_is_400(
    service: ServerProcess, certs: DemoCertificates, body: bytes, key: str | None
) -> None:
    response = post_entry(service.port, client_ssl_context(certs), body, key=key)
    assert response.status_code == 400
    stats = fetch_stats(service.port, certs)
    assert stats["requests"] == 1
    assert stats["status_counts"] == {"400": 1}
    assert stats["successes"] == 0


def test_transient_rate_one_gives_503(start_service: StartService, certs: DemoCertificates) -> None:
    service = start_service(transient_rate=1.0)
    context = client_ssl_context(certs)
    for index in range(3):
        response = post_entry(service.port, context, entry_body(f"e-{index}"), key=f"k-{index}")
        assert response.status_code == 503
        assert response.json() == {"error": "transient"}
    stats = fetch_stats(service.port, certs)
    assert stats["status_counts"] == {"503": 3}
    assert stats["successes"] == 0


def test_same_seed_gives_same_faults(start_service: StartService, certs: DemoCertificates) -> None:
    context = client_ssl_context(certs)

    def statuses(service: ServerProcess) -> list[int]:
        return [
            post_entry(service.port, context, entry_body(f"e-{i}"), key=f"k-{i}").status_code
            for i in range(20)
        ]

    first = statuses(start_service(transient_rate=0.5, seed=7))
    second = statuses(start_service(transient_rate=0.5, seed=7))
    assert first == second
    assert set(first) == {200, 503}


def test_timeout_rate_holds_the_request_past_the_client_timeout(
    start_service: StartService, certs: DemoCertificates
) -> None:
    service = start_service(timeout_rate=1.0)
    with pytest.raises(httpx.ReadTimeout):
        post_entry(service.port, client_ssl_context(certs), entry_body("e-1"), timeout=0.5)
    stats = fetch_stats(service.port, certs)
    assert stats["requests"] == 1
    assert stats["status_counts"] == {"503": 1}
    assert stats["successes"] == 0


def test_sigterm_exits_zero_and_answers_held_requests(
    start_service: StartService, certs: DemoCertificates
) -> None:
    service = start_service(timeout_rate=1.0)
    context = client_ssl_context(certs)
    with ThreadPoolExecutor(max_workers=1) as pool:
        held = pool.submit(post_entry, service.port, context, entry_body("e-1"), "k-1", 30.0)
        wait_for(
            lambda: fetch_stats(service.port, certs)["requests"] != 0,
            10,
            "the held request to reach the service",
            interval=0.05,
        )
        started = time.monotonic()
        service.stop(timeout=10)
        assert time.monotonic() - started < 5
        assert service.process.returncode == 0
        response = held.result(timeout=10)
    assert response.status_code == 503


def test_the_data_alone_is_an_entry_named_by_its_idempotency_key(
    service: ServerProcess, certs: DemoCertificates
) -> None:
    context = client_ssl_context(certs)
    body = json.dumps({"echo": True, "n": 7}).encode()
    response = post_entry(service.port, context, body, key="Q/e-7")
    assert response.json() == {
        "ok": True,
        "entry_id": "Q/e-7",
        "method": "POST",
        "received": {"echo": True, "n": 7},
    }
    poison = post_entry(service.port, context, json.dumps({"poison": True}).encode(), key="Q/p")
    assert poison.status_code == 422  # the data is judged the same way, envelope or not


def test_required_headers_and_retry_after(
    start_service: StartService, certs: DemoCertificates
) -> None:
    service = start_service(required_headers={"X-Api-Key": "k3y"})
    context = client_ssl_context(certs)
    url = f"https://127.0.0.1:{service.port}/v1/process"
    assert post_entry(service.port, context, entry_body("e-1")).status_code == 401
    slow = entry_body("e-2", {"retry_after": "7", "fail_first": 1})
    headers = {"X-Api-Key": "k3y", "Idempotency-Key": "k-2"}
    first = httpx.put(url, json=slow, headers=headers, verify=context, timeout=10)
    second = httpx.patch(url, json=slow, headers=headers, verify=context, timeout=10)
    assert (first.status_code, first.headers["Retry-After"]) == (429, "7")
    assert second.status_code == 200 and "Retry-After" not in second.headers
    stats = fetch_stats(service.port, certs, arrivals=True)
    assert stats["unauthorized"] == 1
    assert stats["methods"] == {"POST": 1, "PUT": 1, "PATCH": 1}
    assert [key for _, key in stats["arrivals"]] == ["k-2", "k-2"]  # 401s are not arrivals
    assert "successes_by_key" not in stats


def test_successes_by_key_name_the_entries_called_twice(
    start_service: StartService, certs: DemoCertificates
) -> None:
    service = start_service()
    context = client_ssl_context(certs)
    for entry_id in ("e-1", "e-2", "e-1"):
        sent = post_entry(service.port, context, entry_body(entry_id), key=entry_id)
        assert sent.status_code == 200
    poison = entry_body("e-3", {"poison": True})
    assert post_entry(service.port, context, poison, key="e-3").status_code == 422
    stats = fetch_stats(service.port, certs, successes=True, arrivals=True)
    assert stats["successes_by_key"] == {"e-1": 2, "e-2": 1}
    assert stats["duplicates"] == 1
    assert len(stats["arrivals"]) == 4
