"""The emulator's check of a workload identity login (snowflake_devtools/workload_identity.py):
the attestation the pinned connector builds, checked as Snowflake checks it, and the user
statements of the project's setup SQL that register the identities."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from snowflake_devtools import workload_identity as wi
from snowflake_operator.ops import sql_parts
from snowflake_operator.queue_schema import SchemaTarget
from snowflake_worker.identifiers import TableRef

STS_HOST = "127.0.0.1:4566"
STS = f"http://{STS_HOST}"
HOSTS = frozenset({STS_HOST})
WORKER_ARN = "arn:aws:iam::123456789012:role/sfp-worker"


@pytest.fixture
def attestation(monkeypatch: pytest.MonkeyPatch) -> str:
    """What the pinned connector sends for AWS (its own code builds it: no network for the
    signed GetCallerIdentity, which it signs and does not send)."""
    from snowflake.connector.wif_util import create_aws_attestation

    for name in ("AWS_PROFILE", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ASIAEXAMPLEKEY000001")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "session-token")
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", STS)
    return create_aws_attestation().credential


def recoded(token: str, **changes: Any) -> str:
    document = json.loads(base64.b64decode(token))
    headers = changes.pop("headers", None)
    document.update(changes)
    if headers is not None:
        document["headers"] = headers(document["headers"])
    return base64.b64encode(json.dumps(document).encode()).decode()


def now_for(token: str) -> datetime:
    signed = json.loads(base64.b64decode(token))["headers"]["X-Amz-Date"]
    return datetime.strptime(signed, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


# -- the attestation --------------------------------------------------------------------


def test_the_connectors_attestation_is_a_signed_get_caller_identity(attestation: str) -> None:
    request = wi.caller_identity_request(attestation, HOSTS, now_for(attestation))
    assert request.method == "POST"
    assert request.host == STS_HOST
    assert request.url == f"{STS}/?Action=GetCallerIdentity&Version=2011-06-15"
    assert request.path_and_query == "/?Action=GetCallerIdentity&Version=2011-06-15"
    assert (request.access_key_id, request.region) == ("ASIAEXAMPLEKEY000001", "eu-west-1")
    assert request.headers["X-Snowflake-Audience"] == "snowflakecomputing.com"
    assert request.headers["X-Amz-Security-Token"] == "session-token"


def _without(name: str) -> Any:
    return lambda headers: {k: v for k, v in headers.items() if k != name}


def _auth(old: str, new: str) -> Any:
    return lambda headers: {**headers, "Authorization": headers["Authorization"].replace(old, new)}


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"method": "GET"}, "method is GET, not POST"),
        ({"url": f"{STS}/?Action=AssumeRole&Version=2011-06-15"}, "not an STS GetCallerIdentity"),
        ({"url": f"{STS}/x?Action=GetCallerIdentity&Version=2011-06-15"}, "GetCallerIdentity"),
        (
            {"url": "http://evil.example/?Action=GetCallerIdentity&Version=2011-06-15"},
            "Host header is not its URL's host",
        ),
        ({"headers": _without("X-Snowflake-Audience")}, "X-Snowflake-Audience"),
        ({"headers": _without("X-Amz-Date")}, "no valid X-Amz-Date"),
        ({"headers": _without("Authorization")}, "not signed with AWS Signature Version 4"),
        ({"headers": _auth("/sts/", "/s3/")}, "not for the service sts"),
        ({"headers": _auth("x-snowflake-audience", "x-other")}, "does not cover x-snowflake"),
        ({"headers": _auth("Signature=", "Nothing=")}, "no signature"),
    ],
)
def test_anything_but_a_signed_get_caller_identity_is_refused(
    attestation: str, changes: dict[str, Any], reason: str
) -> None:
    with pytest.raises(wi.Refused, match=reason):
        wi.caller_identity_request(recoded(attestation, **changes), HOSTS, now_for(attestation))


def test_a_request_signed_for_another_host_is_refused(attestation: str) -> None:
    """Snowflake sends the request only to AWS's STS hosts: one signed for any other host
    could name an identity server of the signer's choice."""
    with pytest.raises(wi.Refused, match=r"signed for '127\.0\.0\.1:4566', not an STS endpoint"):
        wi.caller_identity_request(
            attestation, frozenset({"sts.example:443"}), now_for(attestation)
        )


def test_a_signature_older_or_newer_than_15_minutes_is_refused(attestation: str) -> None:
    signed = now_for(attestation)
    for now in (signed + timedelta(minutes=14), signed - timedelta(minutes=14)):
        wi.caller_identity_request(attestation, HOSTS, now)
    for now in (signed + timedelta(minutes=16), signed - timedelta(minutes=16)):
        with pytest.raises(wi.Refused, match="more than 15 minutes off"):
            wi.caller_identity_request(attestation, HOSTS, now)


@pytest.mark.parametrize("token", ["not base64!", base64.b64encode(b"[1]").decode(), ""])
def test_a_token_that_is_no_attestation_is_refused(token: str) -> None:
    with pytest.raises(wi.Refused, match="attestation"):
        wi.caller_identity_request(token, HOSTS, datetime.now(UTC))


# -- the caller ------------------------------------------------------------------------


def test_an_assumed_role_is_registered_as_its_role() -> None:
    assert wi.identity_of("arn:aws:sts::123456789012:assumed-role/sfp-worker/botocore-1") == (
        WORKER_ARN
    )
    user = "arn:aws:iam::123456789012:user/ci"
    assert wi.identity_of(user) == user
    for caller in ("arn:aws:sts::123456789012:user/moto", "arn:aws:iam::123456789012:root"):
        with pytest.raises(wi.Refused, match="neither an assumed role nor an IAM user"):
            wi.identity_of(caller)


def test_a_role_with_a_path_matches_its_assumed_role_by_name() -> None:
    """An assumed role's ARN has no path: the role's name, account and partition match."""
    registry = wi.WorkloadIdentities(
        users={"A": "arn:aws:iam::123456789012:role/team/x/sfp-worker", "B": None}
    )
    assert registry.users_with(WORKER_ARN) == ["A"]
    assert registry.users_with("arn:aws:iam::210987654321:role/sfp-worker") == []
    assert registry.users_with("arn:aws:iam::123456789012:user/sfp-worker") == []


def test_the_callers_arn_is_read_from_the_sts_answer() -> None:
    answer = (
        b'<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">'
        b"<GetCallerIdentityResult><UserId>AROA:s</UserId><Account>123456789012</Account>"
        b"<Arn>arn:aws:sts::123456789012:assumed-role/r/s</Arn></GetCallerIdentityResult>"
        b"</GetCallerIdentityResponse>"
    )
    assert wi.caller_arn(answer) == "arn:aws:sts::123456789012:assumed-role/r/s"
    error = (
        b"<ErrorResponse><Error><Code>ExpiredToken</Code><Message>gone</Message></Error>"
        b"</ErrorResponse>"
    )
    assert wi.sts_error(error) == "ExpiredToken: gone"
    with pytest.raises(wi.Refused, match="no Arn"):
        wi.caller_arn(error)


# -- the users the setup SQL registers --------------------------------------------------


def users_part(arns: dict[str, str]) -> list[str]:
    """The project's own part "users", as `sql render --part users` renders it."""
    setup = sql_parts.AccountSetup(
        schema=SchemaTarget(
            table=TableRef("PROD_DB", "QUEUE", "JOBS"),
            service_role="sfp_service",
            warehouse="etl_wh",
        ),
        arns=arns,
    )
    return sql_parts.render_part(sql_parts.PARTS_BY_NAME["users"], setup).statements


def test_the_users_part_registers_each_role_and_nothing_else_reaches_fakesnow() -> None:
    statements = users_part({"worker": WORKER_ARN})
    registry = wi.WorkloadIdentities()
    answers = [registry.statement(s) for s in statements]
    assert answers[0] is None  # USE ROLE: fakesnow's
    assert [a.status if a else None for a in answers[1:]] == [
        "User SNOWFLAKE_PROCESSOR_WORKER successfully created.",
        "Statement executed successfully.",
        "Statement executed successfully.",
    ]
    assert registry.users == {"SNOWFLAKE_PROCESSOR_WORKER": WORKER_ARN}
    # Again, with another role: the ALTER brings the existing user to it.
    other = "arn:aws:iam::123456789012:role/sfp-worker-2"
    for statement in users_part({"worker": other}):
        answer = registry.statement(statement)
        assert answer is None or answer.error is None, answer
    assert registry.users == {"SNOWFLAKE_PROCESSOR_WORKER": other}
    assert registry.users_with(WORKER_ARN) == []


def test_user_statements_keep_snowflakes_rules() -> None:
    registry = wi.WorkloadIdentities()
    create = "CREATE USER sfp_x TYPE = SERVICE WORKLOAD_IDENTITY = (TYPE = AWS ARN = '{}')"
    assert registry.statement(create.format(WORKER_ARN)) == wi.Answer(
        "User SFP_X successfully created."
    )
    again = registry.statement(create.format(WORKER_ARN))
    assert again is not None and again.error is not None and again.error[0] == "002002"
    missing = registry.statement('ALTER USER "nobody" SET DEFAULT_ROLE = R')
    assert missing is None  # no identity named: fakesnow's (it refuses ALTER USER)
    missing = registry.statement(
        f"ALTER USER \"nobody\" SET WORKLOAD_IDENTITY = (TYPE = AWS ARN = '{WORKER_ARN}')"
    )
    assert missing is not None and missing.error is not None
    assert missing.error[:2] == wi.USER_MISSING and "'nobody'" in missing.error[2]
    assert registry.statement("ALTER USER IF EXISTS nobody UNSET WORKLOAD_IDENTITY") == wi.Answer(
        "Statement executed successfully."
    )
    assert registry.statement("alter user Sfp_X unset workload_identity") is not None
    assert registry.users == {"SFP_X": None}
    assert registry.users_with(WORKER_ARN) == []
    assert registry.statement("DROP USER sfp_x") == wi.Answer("SFP_X successfully dropped.")
    assert registry.users == {}
    refused = registry.statement(
        "CREATE USER y WORKLOAD_IDENTITY = (TYPE = OIDC ISSUER = 'https://x' SUBJECT = 's')"
    )
    assert refused is not None and refused.error is not None and "TYPE = AWS" in refused.error[2]
    bad = registry.statement("CREATE USER y WORKLOAD_IDENTITY = (TYPE = AWS ARN = 'arn:x')")
    assert bad is not None and bad.error is not None and "invalid AWS ARN" in bad.error[2]
    assert registry.statement("SELECT 1") is None
    assert registry.statement("CREATE USER plain PASSWORD = 'x'") is None


def test_a_login_is_refused_without_an_sts_endpoint_or_for_another_provider() -> None:
    registry = wi.WorkloadIdentities(users={"U": WORKER_ARN})
    for data, reason in (
        ({"PROVIDER": "AWS", "TOKEN": "x"}, "without --sts-endpoint"),
        ({"PROVIDER": "OIDC", "TOKEN": "x"}, "AWS workload identities only"),
    ):
        with pytest.raises(wi.Refused, match=reason):
            asyncio.run(registry.login(data))
    assert registry.refused == 2 and registry.logins == {}
    answer = wi.login_refusal("no user has the workload identity x")
    assert (answer["code"], answer["success"]) == ("390100", False)
    assert answer["message"].startswith("Incorrect username or password was specified.")


def test_the_sts_endpoints_own_host_is_accepted() -> None:
    registry = wi.WorkloadIdentities(
        sts_endpoint="http://127.0.0.1:5000", sts_hosts=frozenset({"A:1"})
    )
    assert registry.sts_hosts == frozenset({"127.0.0.1:5000", "a:1"})
