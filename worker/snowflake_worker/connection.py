"""The one place that opens a Snowflake connection (its settings: snowflake_settings.py)."""

from __future__ import annotations

from typing import Any

from pydantic import SecretStr

from .errors import ConfigError, FatalError, one_line
from .snowflake_settings import AuthMode, SnowflakeSettings

# How every session of the protocol behaves, whatever the account's or user's defaults:
# - paramstyle qmark: values are bound on the server, so entry data and error messages stay
#   out of the query text QUERY_HISTORY shows (the default, pyformat, escapes them into it);
# - autocommit: each statement commits on its own. An account or user can default AUTOCOMMIT
#   to FALSE; a claim would then never commit and would hold the table's lock.
# - timezone UTC: any time function that follows the session's zone agrees with SYSDATE().
SESSION_OPTIONS: dict[str, Any] = {"paramstyle": "qmark", "autocommit": True, "timezone": "UTC"}


def session_parameters(settings: SnowflakeSettings) -> dict[str, Any]:
    """The session parameters every login sets (pure).

    - LOCK_TIMEOUT and STATEMENT_TIMEOUT_IN_SECONDS bound a statement's wait on the
      server, which ends it with an error the queue client retries (000625, 000630);
      the connector's own timer (network_timeout, longer) is only the last resort.
    - ABORT_DETACHED_QUERY: a statement whose session lost its connection is aborted
      (Snowflake: within 5 minutes) instead of running on, so a claim retried on a new
      session does not race one still waiting for the lock under the old.
    """
    return {
        "QUERY_TAG": settings.query_tag,
        "LOCK_TIMEOUT": settings.lock_timeout_seconds,
        "STATEMENT_TIMEOUT_IN_SECONDS": settings.statement_timeout_seconds,
        "ABORT_DETACHED_QUERY": True,
    }


def connection_params(settings: SnowflakeSettings) -> dict[str, Any]:
    """Keyword arguments for snowflake.connector.connect (pure: no I/O, no secrets logged)."""
    params: dict[str, Any] = {
        **SESSION_OPTIONS,
        "account": settings.account,
        "database": settings.database,
        "schema": settings.schema_name,
        "login_timeout": settings.login_timeout_seconds,
        "network_timeout": settings.client_timeout_seconds,
        "session_parameters": session_parameters(settings),
        "application": "snowflake-processor",
    }
    for key in ("user", "role", "warehouse", "host", "port"):
        value = getattr(settings, key)
        if value is not None:
            params[key] = value
    if settings.auth is AuthMode.WORKLOAD_IDENTITY:
        params["authenticator"] = "WORKLOAD_IDENTITY"
        params["workload_identity_provider"] = "AWS"
    elif settings.auth is AuthMode.KEY_PAIR and settings.private_key_pem is not None:
        params["private_key"] = _der_private_key(
            settings.private_key_pem, settings.private_key_passphrase
        )
    elif settings.auth is AuthMode.KEY_PAIR:
        params["private_key_file"] = str(settings.private_key_file)
        if settings.private_key_passphrase is not None:
            params["private_key_file_pwd"] = settings.private_key_passphrase.get_secret_value()
    elif settings.auth is AuthMode.PASSWORD:
        assert settings.password is not None
        params["password"] = settings.password.get_secret_value()
    else:  # emulator: any credentials, plain HTTP, no telemetry, fail fast
        params.update(user=settings.user or "local", password="local", protocol="http")  # noqa: S106
        params["session_parameters"]["CLIENT_OUT_OF_BAND_TELEMETRY_ENABLED"] = False
    if settings.auth is not AuthMode.EMULATOR and settings.protocol != "https":
        params["protocol"] = settings.protocol
    return params


def _der_private_key(pem: SecretStr, passphrase: SecretStr | None) -> bytes:
    """The connector takes an in-memory key as unencrypted PKCS#8 DER."""
    from cryptography.hazmat.primitives import serialization

    try:
        key = serialization.load_pem_private_key(
            pem.get_secret_value().encode(),
            password=None if passphrase is None else passphrase.get_secret_value().encode(),
        )
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"the Snowflake private key cannot be loaded: {exc}") from None
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def connect(settings: SnowflakeSettings) -> Any:
    """Open a connection or raise FatalError saying why (never with the secret in it)."""
    import snowflake.connector
    from snowflake.connector import errors as sf_errors

    try:
        return snowflake.connector.connect(**connection_params(settings))
    except (sf_errors.DatabaseError, sf_errors.InterfaceError, OSError) as exc:
        where = f"{settings.host}:{settings.port}" if settings.host else settings.account
        raise FatalError(
            f"cannot connect to Snowflake at {where} with auth {settings.auth.value}: "
            f"{one_line(exc)}. Check the account, network access and credentials."
        ) from None


def reconnect(settings: SnowflakeSettings) -> Any:
    """A fresh connection after a lost session; connector errors propagate (and are retried
    by the queue client when transient)."""
    import snowflake.connector

    return snowflake.connector.connect(**connection_params(settings))
