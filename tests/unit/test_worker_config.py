"""Worker and Snowflake settings from SFP_* variables, and the connector parameters."""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path

import pytest

from snowflake_worker.connection import connection_params
from snowflake_worker.errors import ConfigError
from snowflake_worker.settings import WorkerSettings, load_worker_settings
from snowflake_worker.snowflake_settings import (
    AuthMode,
    SnowflakeSettings,
    load_snowflake_settings,
)

MINIMAL_WORKER = {"SFP_ENDPOINT_URL": "https://service.example/entries"}
MINIMAL_SNOWFLAKE = {
    "SFP_SNOWFLAKE_ACCOUNT": "myorg-myaccount",
    "SFP_SNOWFLAKE_DATABASE": "analytics",
    "SFP_SNOWFLAKE_SCHEMA": "queue",
    "SFP_SNOWFLAKE_TABLE": "work_items",
}


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A clean slate: no SFP_ variable from the outer environment leaks in."""
    for key in list(os.environ):
        if key.upper().startswith("SFP_"):
            monkeypatch.delenv(key)
    for key, value in {**MINIMAL_WORKER, **MINIMAL_SNOWFLAKE}.items():
        monkeypatch.setenv(key, value)
    return monkeypatch


def _config_error(load: object) -> str:
    with pytest.raises(ConfigError) as caught:
        load()  # type: ignore[operator]
    message = str(caught.value)
    assert "\n" not in message, "a ConfigError is shown as one line"
    assert message.startswith("invalid configuration: ")
    return message


# -- WorkerSettings -----------------------------------------------------------------


def test_minimal_worker_settings_load_with_defaults(env: pytest.MonkeyPatch) -> None:
    settings = load_worker_settings()
    assert isinstance(settings, WorkerSettings)
    assert settings.endpoint_url == "https://service.example/entries"
    assert settings.concurrency == 32
    assert settings.claim_batch == 200
    assert settings.lease_seconds == 3600
    assert settings.cert_dir == Path("/etc/snowflake-processor/certs")
    assert settings.processor_id  # the host name by default


def test_worker_settings_read_their_variables(env: pytest.MonkeyPatch) -> None:
    env.setenv("SFP_CONCURRENCY", "7")
    env.setenv("SFP_CLAIM_BATCH", "50")
    env.setenv("SFP_PROCESSOR_ID", "job-1")
    env.setenv("SFP_CERT_DIR", "/tmp/certs")
    env.setenv("SFP_LEASE_SECONDS", "900")
    env.setenv("SFP_DEADLINE_SECONDS", "580")
    env.setenv("SFP_GRACE_SECONDS", "20")
    settings = load_worker_settings()
    assert settings.concurrency == 7
    assert settings.claim_batch == 50
    assert settings.processor_id == "job-1"
    assert settings.cert_dir == Path("/tmp/certs")
    assert settings.lease_seconds == 900
    assert settings.deadline_seconds == 580


@pytest.mark.parametrize(
    ("deadline_at", "remaining"),
    [
        ("2026-11-25T10:01:40Z", 100.0),  # the Job's deadline comes first
        ("2026-11-25T11:00:00Z", 580.0),  # the relative one comes first
        ("2026-11-25T09:59:00Z", 0.0),  # already past: claim nothing, exit cleanly
        ("2026-11-25T10:01:40+00:00", 100.0),
        ("2026-11-25T10:01:40", 100.0),  # no offset: UTC, as the operator writes
    ],
)
def test_absolute_deadline_counts_from_the_jobs_start(
    env: pytest.MonkeyPatch, deadline_at: str, remaining: float
) -> None:
    env.setenv("SFP_LEASE_SECONDS", "900")
    env.setenv("SFP_DEADLINE_SECONDS", "580")
    env.setenv("SFP_DEADLINE_AT", deadline_at)
    settings = load_worker_settings()
    now = datetime(2026, 11, 25, 10, 0, 0, tzinfo=UTC)
    assert settings.seconds_to_deadline(now) == remaining


def test_without_an_absolute_deadline_the_relative_one_holds(env: pytest.MonkeyPatch) -> None:
    env.setenv("SFP_DEADLINE_SECONDS", "580")
    settings = load_worker_settings()
    assert settings.seconds_to_deadline(datetime.now(UTC)) == 580


def test_a_malformed_absolute_deadline_names_the_variable(env: pytest.MonkeyPatch) -> None:
    env.setenv("SFP_DEADLINE_AT", "tomorrow")
    assert "SFP_DEADLINE_AT" in _config_error(load_worker_settings)


def test_upper_case_https_is_accepted(env: pytest.MonkeyPatch) -> None:
    env.setenv("SFP_ENDPOINT_URL", "HTTPS://service.example")
    assert load_worker_settings().endpoint_url == "HTTPS://service.example"


def test_http_endpoint_is_rejected(env: pytest.MonkeyPatch) -> None:
    env.setenv("SFP_ENDPOINT_URL", "http://service.example/entries")
    message = _config_error(load_worker_settings)
    assert "https://" in message
    assert "http://service.example/entries" in message


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("https://127.0.0.1:99999/x", "port"),
        ("https://127.0.0.1:0/x", "port"),
        ("https://[::1/x", "not a valid URL"),
        ("https://", "host"),
        ("https:///entries", "host"),
        ("https://service example/x", "not a valid URL"),
    ],
)
def test_endpoint_that_cannot_be_called_is_rejected(
    env: pytest.MonkeyPatch, url: str, problem: str
) -> None:
    env.setenv("SFP_ENDPOINT_URL", url)
    message = _config_error(load_worker_settings)
    assert "SFP_ENDPOINT_URL:" in message
    assert problem in message
    assert url in message


@pytest.mark.parametrize(
    "url", ["https://service.example:8443/v1/process?x=1", "https://[::1]:443/x", "https://h"]
)
def test_callable_endpoints_are_accepted(env: pytest.MonkeyPatch, url: str) -> None:
    env.setenv("SFP_ENDPOINT_URL", url)
    assert load_worker_settings().endpoint_url == url


@pytest.mark.parametrize("level", ["LOUD", "", "verbose", "5"])
def test_unknown_log_level_is_rejected(env: pytest.MonkeyPatch, level: str) -> None:
    env.setenv("SFP_LOG_LEVEL", level)
    message = _config_error(load_worker_settings)
    assert "SFP_LOG_LEVEL:" in message
    assert "DEBUG, INFO, WARNING, ERROR" in message


@pytest.mark.parametrize("level", ["debug", "Warning", "ERROR"])
def test_log_levels_are_case_insensitive(env: pytest.MonkeyPatch, level: str) -> None:
    env.setenv("SFP_LOG_LEVEL", level)
    assert load_worker_settings().log_level == level.upper()


@pytest.mark.parametrize(
    "variable",
    [
        "SFP_REQUEST_TIMEOUT_SECONDS",
        "SFP_RETRY_BACKOFF_SECONDS",
        "SFP_FLUSH_SECONDS",
        "SFP_GRACE_SECONDS",
        "SFP_DEADLINE_SECONDS",
    ],
)
@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "Infinity"])
def test_non_finite_numbers_are_rejected(
    env: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    env.setenv(variable, value)
    assert f"{variable}:" in _config_error(load_worker_settings)


def test_missing_endpoint_names_the_variable(env: pytest.MonkeyPatch) -> None:
    env.delenv("SFP_ENDPOINT_URL")
    assert "SFP_ENDPOINT_URL" in _config_error(load_worker_settings)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SFP_CONCURRENCY", "0"),
        ("SFP_CONCURRENCY", "-1"),
        ("SFP_CONCURRENCY", "many"),
        ("SFP_CLAIM_BATCH", "0"),
        ("SFP_MAX_ENTRIES", "0"),
        ("SFP_LEASE_SECONDS", "0"),
        ("SFP_REQUEST_RETRIES", "-1"),
    ],
)
def test_out_of_range_values_name_the_variable(
    env: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    env.setenv(variable, value)
    assert f"{variable}:" in _config_error(load_worker_settings)


@pytest.mark.parametrize(
    ("deadline", "grace", "lease"),
    [("3580", "20", "3600"), ("3590", "20", "3600"), ("100", "20", "100")],
)
def test_deadline_plus_grace_must_stay_below_lease(
    env: pytest.MonkeyPatch, deadline: str, grace: str, lease: str
) -> None:
    env.setenv("SFP_DEADLINE_SECONDS", deadline)
    env.setenv("SFP_GRACE_SECONDS", grace)
    env.setenv("SFP_LEASE_SECONDS", lease)
    message = _config_error(load_worker_settings)
    assert "SFP_LEASE_SECONDS" in message


def test_deadline_plus_grace_just_below_lease_is_accepted(env: pytest.MonkeyPatch) -> None:
    env.setenv("SFP_DEADLINE_SECONDS", "3579")
    env.setenv("SFP_GRACE_SECONDS", "20")
    env.setenv("SFP_LEASE_SECONDS", "3600")
    assert load_worker_settings().deadline_seconds == 3579


# -- SnowflakeSettings --------------------------------------------------------------


def test_minimal_snowflake_settings_load(env: pytest.MonkeyPatch) -> None:
    settings = load_snowflake_settings()
    assert settings.account == "myorg-myaccount"
    assert settings.auth is AuthMode.WORKLOAD_IDENTITY
    assert str(settings.table_ref) == "ANALYTICS.QUEUE.WORK_ITEMS"
    assert settings.schema_name == "QUEUE"


@pytest.mark.parametrize(
    "variable", ["SFP_SNOWFLAKE_TABLE", "SFP_SNOWFLAKE_DATABASE", "SFP_SNOWFLAKE_SCHEMA"]
)
def test_invalid_identifier_names_the_variable(env: pytest.MonkeyPatch, variable: str) -> None:
    env.setenv(variable, "bad-name")
    message = _config_error(load_snowflake_settings)
    assert f"{variable}:" in message
    assert "bad-name" in message


def test_invalid_warehouse_names_the_variable(env: pytest.MonkeyPatch) -> None:
    env.setenv("SFP_SNOWFLAKE_WAREHOUSE", 'wh"; DROP TABLE x; --')
    assert "SFP_SNOWFLAKE_WAREHOUSE:" in _config_error(load_snowflake_settings)


def test_missing_account_names_the_variable(env: pytest.MonkeyPatch) -> None:
    env.delenv("SFP_SNOWFLAKE_ACCOUNT")
    assert "SFP_SNOWFLAKE_ACCOUNT" in _config_error(load_snowflake_settings)


def test_key_pair_without_key_file_is_rejected(env: pytest.MonkeyPatch) -> None:
    env.setenv("SFP_SNOWFLAKE_AUTH", "key_pair")
    env.setenv("SFP_SNOWFLAKE_USER", "svc")
    assert "SFP_SNOWFLAKE_PRIVATE_KEY_FILE" in _config_error(load_snowflake_settings)


def test_password_without_password_is_rejected(env: pytest.MonkeyPatch) -> None:
    env.setenv("SFP_SNOWFLAKE_AUTH", "password")
    env.setenv("SFP_SNOWFLAKE_USER", "svc")
    assert "SFP_SNOWFLAKE_PASSWORD" in _config_error(load_snowflake_settings)


def test_key_pair_without_user_is_rejected(env: pytest.MonkeyPatch) -> None:
    env.setenv("SFP_SNOWFLAKE_AUTH", "key_pair")
    env.setenv("SFP_SNOWFLAKE_PRIVATE_KEY_FILE", "/keys/rsa_key.p8")
    assert "SFP_SNOWFLAKE_USER" in _config_error(load_snowflake_settings)


def test_emulator_without_host_is_rejected(env: pytest.MonkeyPatch) -> None:
    env.setenv("SFP_SNOWFLAKE_AUTH", "emulator")
    message = _config_error(load_snowflake_settings)
    assert "SFP_SNOWFLAKE_HOST" in message


def test_unknown_auth_mode_names_the_variable(env: pytest.MonkeyPatch) -> None:
    env.setenv("SFP_SNOWFLAKE_AUTH", "oauth")
    assert "SFP_SNOWFLAKE_AUTH:" in _config_error(load_snowflake_settings)


# -- connection_params --------------------------------------------------------------


def _settings(**overrides: object) -> SnowflakeSettings:
    values: dict[str, object] = {
        "account": "myorg-myaccount",
        "database": "analytics",
        "schema_name": "queue",
        "table": "work_items",
    }
    values.update(overrides)
    return SnowflakeSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def no_sfp_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in list(os.environ):
        if key.upper().startswith("SFP_"):
            monkeypatch.delenv(key)


@pytest.mark.usefixtures("no_sfp_env")
def test_workload_identity_params() -> None:
    params = connection_params(_settings(role="loader", warehouse="wh"))
    assert params["authenticator"] == "WORKLOAD_IDENTITY"
    assert params["workload_identity_provider"] == "AWS"
    assert "password" not in params
    assert "private_key_file" not in params
    assert "protocol" not in params
    assert params["account"] == "myorg-myaccount"
    assert params["database"] == "ANALYTICS"
    assert params["schema"] == "QUEUE"
    assert params["role"] == "LOADER"
    assert params["warehouse"] == "WH"
    assert "user" not in params
    assert "host" not in params
    assert params["session_parameters"]["QUERY_TAG"] == "snowflake-processor"


@pytest.mark.usefixtures("no_sfp_env")
def test_key_pair_params_without_passphrase() -> None:
    settings = _settings(auth="key_pair", user="svc", private_key_file="/keys/rsa_key.p8")
    params = connection_params(settings)
    assert params["private_key_file"] == "/keys/rsa_key.p8"
    assert params["user"] == "svc"
    assert "private_key_file_pwd" not in params
    assert "password" not in params
    assert "authenticator" not in params


@pytest.mark.usefixtures("no_sfp_env")
def test_key_pair_params_with_passphrase() -> None:
    settings = _settings(
        auth="key_pair",
        user="svc",
        private_key_file="/keys/rsa_key.p8",
        private_key_passphrase="open-sesame",
    )
    params = connection_params(settings)
    assert params["private_key_file"] == "/keys/rsa_key.p8"
    assert params["private_key_file_pwd"] == "open-sesame"


@pytest.mark.usefixtures("no_sfp_env")
def test_password_params() -> None:
    params = connection_params(_settings(auth="password", user="svc", password="hunter2-secret"))
    assert params["password"] == "hunter2-secret"
    assert params["user"] == "svc"
    assert "authenticator" not in params


@pytest.mark.usefixtures("no_sfp_env")
def test_emulator_params_use_plain_http() -> None:
    params = connection_params(_settings(auth="emulator", host="127.0.0.1", port=8123))
    assert params["protocol"] == "http"
    assert params["host"] == "127.0.0.1"
    assert params["port"] == 8123
    assert params["user"] == "local"
    assert "authenticator" not in params
    assert params["session_parameters"]["CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED"] is False


@pytest.mark.usefixtures("no_sfp_env")
def test_non_default_protocol_is_passed_outside_emulator() -> None:
    params = connection_params(_settings(host="sf.internal", protocol="http"))
    assert params["protocol"] == "http"
    assert params["host"] == "sf.internal"


def test_secrets_do_not_appear_in_repr_or_str(env: pytest.MonkeyPatch) -> None:
    env.setenv("SFP_SNOWFLAKE_AUTH", "password")
    env.setenv("SFP_SNOWFLAKE_USER", "svc")
    env.setenv("SFP_SNOWFLAKE_PASSWORD", "hunter2-secret")
    env.setenv("SFP_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE", "open-sesame")
    settings = load_snowflake_settings()
    assert settings.password is not None
    assert settings.password.get_secret_value() == "hunter2-secret"
    for text in (repr(settings), str(settings), repr(settings.model_dump())):
        assert "hunter2-secret" not in text
        assert "open-sesame" not in text


def test_config_error_does_not_echo_the_password(env: pytest.MonkeyPatch) -> None:
    env.setenv("SFP_SNOWFLAKE_AUTH", "password")
    env.setenv("SFP_SNOWFLAKE_PASSWORD", "hunter2-secret")  # but no user
    message = _config_error(load_snowflake_settings)
    assert "SFP_SNOWFLAKE_USER" in message
    assert "hunter2-secret" not in message


@pytest.mark.usefixtures("no_sfp_env")
@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"auth": "key_pair", "user": "svc", "private_key_file": "/keys/rsa_key.p8"},
        {"auth": "password", "user": "svc", "password": "pw"},
        {"auth": "emulator", "host": "127.0.0.1", "port": 8123},
    ],
    ids=["workload_identity", "key_pair", "password", "emulator"],
)
def test_every_session_binds_on_the_server_commits_each_statement_and_uses_utc(
    overrides: dict[str, object],
) -> None:
    """Whatever the account's or user's defaults: values bound on the server (kept out of
    QUERY_HISTORY's text), AUTOCOMMIT on, TIMEZONE UTC."""
    params = connection_params(_settings(**overrides))
    assert params["paramstyle"] == "qmark"
    assert params["autocommit"] is True
    assert params["timezone"] == "UTC"
