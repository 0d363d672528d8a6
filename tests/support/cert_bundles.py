"""Client certificate bundles as the operator finds them in S3: ``client.pem``,
``client-key.pem`` and ``ca-cert.pem``, issued by a trustme CA."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
import trustme

from snowflake_operator.poll.certificate_bundle import CertificateProblem

Bundle = dict[str, bytes]


def make_bundle(
    ca: trustme.CA,
    *,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
    key_type: trustme.KeyType = trustme.KeyType.ECDSA,
) -> Bundle:
    """A fresh client certificate from ``ca``; by default valid from a day ago for 90 days."""
    now = datetime.now(UTC)
    leaf = ca.issue_cert(
        "snowflake-processor",
        common_name="snowflake-processor-client",
        not_before=not_before or now - timedelta(days=1),
        not_after=not_after or now + timedelta(days=90),
        key_type=key_type,
    )
    return {
        "client.pem": b"".join(blob.bytes() for blob in leaf.cert_chain_pems),
        "client-key.pem": leaf.private_key_pem.bytes(),
        "ca-cert.pem": ca.cert_pem.bytes(),
    }


def problem_from(call: Callable[[], object]) -> CertificateProblem:
    """Run ``call``, expect a CertificateProblem, and check it carries no file contents."""
    with pytest.raises(CertificateProblem) as caught:
        call()
    problem = caught.value
    for text in (str(problem), repr(problem), problem.reason, problem.file):
        assert "BEGIN" not in text
        assert "PRIVATE" not in text
    assert str(problem) == f"{problem.file}: {problem.reason}"
    return problem
