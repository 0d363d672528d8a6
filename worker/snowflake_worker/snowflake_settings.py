"""Where the queue table lives and how to log in to Snowflake (pure settings: the
connector is loaded only by connection.py, when a connection is opened)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError
from .identifiers import SnowflakeIdentifier, TableRef

# How much longer than the server's statement bound the connector waits by default: time
# for the server's answer (a cancelled statement's error) to arrive.
CLIENT_MARGIN_SECONDS = 30


class AuthMode(StrEnum):
    WORKLOAD_IDENTITY = "workload_identity"  # the pod's IAM role (IRSA), no stored secret
    KEY_PAIR = "key_pair"
    PASSWORD = "password"  # noqa: S105 (a mode name) legacy only: Snowflake blocks passwords for service users
    EMULATOR = "emulator"  # the local fakesnow server (make demo, tests)


class SnowflakeSettings(BaseSettings):
    """Where the queue table lives and how to log in. Environment prefix SFP_SNOWFLAKE_."""

    model_config = SettingsConfigDict(
        env_prefix="SFP_SNOWFLAKE_", extra="ignore", populate_by_name=True
    )

    # Each description is the variable's line in the worker's `--help` and in
    # docs/worker-environment.md (scripts/gen_worker_environment.py writes its tables).
    account: str = Field(min_length=1, description="account identifier")
    user: str | None = Field(default=None, description="required for key_pair and password")
    role: SnowflakeIdentifier | None = Field(default=None, description="role of the session")
    warehouse: SnowflakeIdentifier | None = Field(
        default=None, description="warehouse of the session"
    )
    database: SnowflakeIdentifier = Field(
        description="database of the queue table: an unquoted identifier (letters, digits, "
        "_, $), upper-cased and quoted in SQL"
    )
    # `schema` would shadow a pydantic method; the variable is still SFP_SNOWFLAKE_SCHEMA.
    schema_name: SnowflakeIdentifier = Field(
        validation_alias="SFP_SNOWFLAKE_SCHEMA",
        description="schema of the queue table (an identifier, like the database)",
    )
    table: SnowflakeIdentifier = Field(description="the queue table (an identifier)")
    auth: AuthMode = Field(
        default=AuthMode.WORKLOAD_IDENTITY,
        description="workload_identity (the pod's IAM role through IRSA, no stored secret), "
        "key_pair, password (legacy: Snowflake blocks passwords for service users), emulator "
        "(the local fakesnow server)",
    )
    private_key_file: Path | None = Field(
        default=None, description="key_pair: PEM private key file (mounted from a Secret)"
    )
    private_key_pem: SecretStr | None = Field(
        default=None,
        description="key_pair: the PEM private key itself, instead of a file (the operator "
        "passes its own connection the key read from a Secret)",
    )
    private_key_passphrase: SecretStr | None = Field(
        default=None, description="key_pair: its passphrase, if encrypted (from a Secret)"
    )
    password: SecretStr | None = Field(default=None, description="password mode (from a Secret)")
    host: str | None = Field(
        default=None,
        description="private link host, or the emulator's address (required for emulator)",
    )
    port: int | None = Field(
        default=None, gt=0, lt=65536, description="with host (required for emulator)"
    )
    protocol: str = Field(
        default="https", description="https, except for a test endpoint that serves http"
    )
    login_timeout_seconds: int = Field(default=60, gt=0, description="how long logging in may take")
    # Waits for the table's lock are bounded on the server, each statement by these two
    # session parameters, so a long lock holder (a purge, a migration's backfill) ends a
    # wait with an error the worker retries; the client's own timer (network timeout) is
    # set longer, since a statement it cancels fails with an error nobody retries.
    lock_timeout_seconds: int = Field(
        default=60,
        gt=0,
        description="how long a claim or write-back waits for the queue table's lock before "
        "Snowflake ends the wait (LOCK_TIMEOUT of the session); the statement is then retried",
    )
    statement_timeout_seconds: int = Field(
        default=300,
        gt=0,
        description="how long one statement may take, its wait for the lock included, before "
        "Snowflake cancels it (STATEMENT_TIMEOUT_IN_SECONDS of the session); more than "
        "SFP_SNOWFLAKE_LOCK_TIMEOUT_SECONDS",
    )
    network_timeout_seconds: int | None = Field(
        default=None,
        gt=0,
        description="how long the connector waits for one request, a statement's answer "
        "included, before it cancels it; more than SFP_SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS, so "
        "the server's bound always ends a statement first",
        json_schema_extra={"default_text": f"statement timeout + {CLIENT_MARGIN_SECONDS}"},
    )
    query_tag: str = Field(
        default="snowflake-processor",
        description="QUERY_TAG of the session, to find its statements in query history",
    )

    @model_validator(mode="after")
    def _credentials_for_mode(self) -> SnowflakeSettings:
        key = self.private_key_file or self.private_key_pem
        if self.auth is AuthMode.KEY_PAIR and key is None:
            raise ValueError("auth key_pair needs SFP_SNOWFLAKE_PRIVATE_KEY_FILE")
        if self.auth is AuthMode.PASSWORD and self.password is None:
            raise ValueError("auth password needs SFP_SNOWFLAKE_PASSWORD")
        if self.auth in (AuthMode.KEY_PAIR, AuthMode.PASSWORD) and not self.user:
            raise ValueError(f"auth {self.auth.value} needs SFP_SNOWFLAKE_USER")
        if self.auth is AuthMode.EMULATOR and (self.host is None or self.port is None):
            raise ValueError("auth emulator needs SFP_SNOWFLAKE_HOST and SFP_SNOWFLAKE_PORT")
        if self.statement_timeout_seconds <= self.lock_timeout_seconds:
            raise ValueError(
                "SFP_SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS must be more than "
                "SFP_SNOWFLAKE_LOCK_TIMEOUT_SECONDS: a statement waits for the lock, then runs"
            )
        if self.client_timeout_seconds <= self.statement_timeout_seconds:
            raise ValueError(
                "SFP_SNOWFLAKE_NETWORK_TIMEOUT_SECONDS must be more than "
                "SFP_SNOWFLAKE_STATEMENT_TIMEOUT_SECONDS: the connector would cancel a statement "
                "Snowflake still bounds, with an error that is not retried"
            )
        return self

    @property
    def client_timeout_seconds(self) -> int:
        """The connector's network timeout: its timer for each statement."""
        if self.network_timeout_seconds is not None:
            return self.network_timeout_seconds
        return self.statement_timeout_seconds + CLIENT_MARGIN_SECONDS

    @property
    def table_ref(self) -> TableRef:
        return TableRef(self.database, self.schema_name, self.table)


def load_snowflake_settings() -> SnowflakeSettings:
    """Read SFP_SNOWFLAKE_* from the environment; bad values become one ConfigError line."""
    from .validation_errors import settings_error_message

    try:
        return SnowflakeSettings()
    except ValueError as exc:
        raise ConfigError(settings_error_message(exc, "SFP_SNOWFLAKE_")) from None
