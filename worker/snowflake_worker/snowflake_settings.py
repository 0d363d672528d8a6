"""Where the queue table lives and how to log in to Snowflake (pure settings: the
connector is loaded only by connection.py, when a connection is opened)."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from .errors import ConfigError
from .identifiers import SnowflakeIdentifier, TableRef


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
    network_timeout_seconds: int = Field(
        default=120, gt=0, description="how long one request to Snowflake may take"
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
        return self

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
