"""The production login, for real: `auth.mode: workload_identity`.

The product's own connection code (snowflake_worker.connection) logs in with
authenticator WORKLOAD_IDENTITY and provider AWS. botocore, inside the connector, gets the
pod's credentials as IRSA makes it (AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE:
AssumeRoleWithWebIdentity) from moto's server as STS; the connector signs a
GetCallerIdentity request with them and sends it as its attestation. The emulator
(--sts-endpoint) replays that request against moto, reads the assumed role and logs in the
user the project's own setup SQL (`sql apply --part users`) registered for that role, or
refuses the login as Snowflake does (390100).

The connector sends an attestation only to a Snowflake host (*.snowflakecomputing.com);
its environment-only SNOWFLAKE_WIF_ALLOWED_HOST_SUFFIXES adds the emulator's 127.0.0.1, in
this test process alone. The worker drops every SNOWFLAKE_* variable at start-up and
resources may not set it (tests/unit/test_worker_ambient.py, test_admission.py), so no
product path can widen the check.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import snowflake.connector
from snowflake.connector import errors as sf_errors

from snowflake_devtools.processes import ServerProcess
from snowflake_worker.connection import connect, connection_params
from snowflake_worker.errors import FatalError
from snowflake_worker.identifiers import TableRef
from snowflake_worker.snowflake_settings import AuthMode, SnowflakeSettings
from tests.support.cli import queue_flags, run_cli
from tests.support.s3 import moto_server
from tests.support.snowflake import connect_to_emulator, emulator

pytestmark = pytest.mark.integration

ACCOUNT = "123456789012"  # moto's default account: its assumed roles live there
WORKER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/sfp-worker"
OTHER_ROLE = f"arn:aws:iam::{ACCOUNT}:role/sfp-intruder"
WORKER_USER = "SNOWFLAKE_PROCESSOR_WORKER"
TABLE = TableRef("WIF_DB", "QUEUE", "JOBS")
# A projected service-account token's shape (header.claims.signature, base64url): moto
# accepts any token; Kubernetes would sign this one for the audience sts.amazonaws.com.
CLAIMS = "eyJpc3MiOiJodHRwczovL29pZGMuZWtzLmV4YW1wbGUiLCJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6c2ZwOndvcmtlciIsImF1ZCI6WyJzdHMuYW1hem9uYXdzLmNvbSJdfQ"  # noqa: E501
PROJECTED_TOKEN = f"eyJhbGciOiJSUzI1NiIsImtpZCI6InRlc3QifQ.{CLAIMS}.c2lnbmF0dXJl"


@pytest.fixture(scope="module")
def sts() -> Iterator[str]:
    """moto's server, as STS (the same server the tests use as S3)."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def wif_emulator(sts: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """An emulator that checks workload identities against ``sts``, with the queue table
    and the worker's service user made by the project's own setup SQL."""
    with emulator(tmp_path_factory.mktemp("wif"), "--sts-endpoint", sts) as server:
        apply_parts(server.port, "--part", "database", "--part", "table")
        apply_users_part(server.port, WORKER_ROLE)
        yield server


def apply_parts(port: int, *args: str) -> None:
    result = run_cli("sql", "apply", *queue_flags(port, TABLE), *args)
    assert result.returncode == 0, result.stderr


def apply_users_part(port: int, worker_role: str) -> None:
    """`sql apply --part users`: USE ROLE, CREATE USER ... WORKLOAD_IDENTITY, ALTER USER,
    GRANT ROLE, as an administrator runs it."""
    apply_parts(
        port, "--part", "users", "--service-role", "sfp_service",
        "--service-warehouse", "etl_wh", "--worker-role-arn", worker_role,
    )  # fmt: skip


@pytest.fixture
def pod(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, sts: str) -> Any:
    """This process's environment as IRSA sets a pod's, with STS at moto; nothing else
    AWS or Snowflake from the machine. Returns a function that names the pod's role."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "SNOWFLAKE_")):
            monkeypatch.delenv(name)
    token = tmp_path / "token"
    token.write_text(PROJECTED_TOKEN, encoding="utf-8")
    monkeypatch.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(token))
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL_STS", sts)
    monkeypatch.setenv("AWS_CONFIG_FILE", os.devnull)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", os.devnull)
    # Test only: the connector's own allow-list of hosts an attestation may go to.
    monkeypatch.setenv("SNOWFLAKE_WIF_ALLOWED_HOST_SUFFIXES", "127.0.0.1")

    def with_role(arn: str) -> None:
        monkeypatch.setenv("AWS_ROLE_ARN", arn)

    with_role(WORKER_ROLE)
    return with_role


def settings(port: int) -> SnowflakeSettings:
    """A worker's settings for workload identity (the chart's default auth), at the
    emulator's address instead of the account's host."""
    return SnowflakeSettings(
        account="local",
        database=TABLE.database,
        schema_name=TABLE.schema,
        table=TABLE.table,
        auth=AuthMode.WORKLOAD_IDENTITY,
        host="127.0.0.1",
        port=port,
        protocol="http",
        login_timeout_seconds=20,
        lock_timeout_seconds=5,
        statement_timeout_seconds=10,
        network_timeout_seconds=20,
    )


def identity_stats(port: int) -> dict[str, Any]:
    """``GET /model/workload-identity``: registered users, logins per user, refusals."""
    url = f"http://127.0.0.1:{port}/model/workload-identity"
    with urllib.request.urlopen(url, timeout=10) as answer:
        stats: dict[str, Any] = json.loads(answer.read())
    return stats


def test_the_registered_role_logs_in_with_the_products_connection_and_runs_a_query(
    wif_emulator: ServerProcess, pod: Any
) -> None:
    before = identity_stats(wif_emulator.port)
    conn = connect(settings(wif_emulator.port))
    try:
        count = conn.cursor().execute(f"SELECT COUNT(*) FROM {TABLE.sql}").fetchone()
        assert count == (0,)
    finally:
        conn.close()
    after = identity_stats(wif_emulator.port)
    assert after["logins"].get(WORKER_USER, 0) == before["logins"].get(WORKER_USER, 0) + 1
    assert after["users"] == {WORKER_USER: WORKER_ROLE}


def test_a_role_the_setup_sql_did_not_register_is_refused(
    wif_emulator: ServerProcess, pod: Any
) -> None:
    pod(OTHER_ROLE)
    refused_before = identity_stats(wif_emulator.port)["refused"]
    with pytest.raises(FatalError) as caught:
        connect(settings(wif_emulator.port))
    message = str(caught.value)
    assert "with auth workload_identity" in message
    assert "Incorrect username or password was specified." in message
    assert f"no user has the workload identity {OTHER_ROLE}" in message
    # What the connector raises: Snowflake's code for a failed login, SQLSTATE 28000.
    with pytest.raises(sf_errors.DatabaseError) as raw:
        snowflake.connector.connect(**connection_params(settings(wif_emulator.port)))
    assert (raw.value.errno, raw.value.sqlstate) == (390100, "28000")
    assert identity_stats(wif_emulator.port)["refused"] == refused_before + 2


def test_running_the_users_part_again_moves_the_user_to_the_new_role(
    sts: str, tmp_path: Path, pod: Any
) -> None:
    """The part's ALTER USER is how an ARN changes (Terraform recreated the role): after
    it, the old role is refused and the new one logs in."""
    with emulator(tmp_path, "--sts-endpoint", sts) as server:
        apply_parts(server.port, "--part", "database", "--part", "table")
        apply_users_part(server.port, OTHER_ROLE)
        apply_users_part(server.port, WORKER_ROLE)
        assert identity_stats(server.port)["users"] == {WORKER_USER: WORKER_ROLE}
        connect(settings(server.port)).close()
        pod(OTHER_ROLE)
        with pytest.raises(FatalError, match="no user has the workload identity"):
            connect(settings(server.port))


def test_the_product_asks_the_connector_for_aws_workload_identity_and_nothing_else(
    wif_emulator: ServerProcess,
) -> None:
    """What the tests above log in with is the product's parameter set: no user, no
    password, no token of its own; the emulator sees the connector's WORKLOAD_IDENTITY
    login request."""
    params = connection_params(settings(wif_emulator.port))
    assert params["authenticator"] == "WORKLOAD_IDENTITY"
    assert params["workload_identity_provider"] == "AWS"
    for absent in ("user", "password", "token", "private_key", "workload_identity_host"):
        assert absent not in params
    assert (params["host"], params["port"], params["protocol"]) == (
        "127.0.0.1",
        wif_emulator.port,
        "http",
    )


def test_without_the_test_allow_list_the_connector_sends_no_attestation(
    wif_emulator: ServerProcess, pod: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The connector's own guard: an attestation goes to Snowflake hosts only. What a pod
    runs has no SNOWFLAKE_* variable, so a worker pointed at this emulator stops here."""
    monkeypatch.delenv("SNOWFLAKE_WIF_ALLOWED_HOST_SUFFIXES")
    refused_before = identity_stats(wif_emulator.port)["refused"]
    with pytest.raises(FatalError, match="WORKLOAD_IDENTITY requires a recognized Snowflake host"):
        connect(settings(wif_emulator.port))
    assert identity_stats(wif_emulator.port)["refused"] == refused_before  # never sent


def test_an_emulator_without_an_sts_endpoint_refuses_every_workload_identity(
    snowflake_server: ServerProcess, pod: Any
) -> None:
    with pytest.raises(FatalError, match="started without --sts-endpoint"):
        connect(settings(snowflake_server.port))
    # A password login still works there: only workload identity is checked.
    connect_to_emulator(snowflake_server.port).close()


def test_a_login_that_names_another_user_is_refused(wif_emulator: ServerProcess, pod: Any) -> None:
    """SFP_SNOWFLAKE_USER with workload identity: the identity must be that user's."""
    named = settings(wif_emulator.port).model_copy(update={"user": "snowflake_processor_worker"})
    connect(named).close()  # the same user, as Snowflake compares names: ignoring case
    other = named.model_copy(update={"user": "SNOWFLAKE_PROCESSOR_OPERATOR"})
    with pytest.raises(FatalError, match="is not the user SNOWFLAKE_PROCESSOR_OPERATOR's"):
        connect(other)
