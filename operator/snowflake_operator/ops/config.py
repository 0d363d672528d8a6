"""Which queue an ops command works on: a SnowflakeProcessor resource file or flags.

Both end in the worker's SnowflakeSettings, so they are validated the same way. Secrets
come from the environment (or a key file) only and never appear in a message.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from snowflake_worker.connection import AuthMode, SnowflakeSettings
from snowflake_worker.errors import ConfigError, one_line
from snowflake_worker.validation_errors import spec_location, validation_problems

from ..spec import ProcessorSpec, QueueSettings
from .shared_arguments import LOGIN_FLAGS, TARGET_FLAGS

RESOURCE_KIND = "SnowflakeProcessor"
DEFAULT_MAX_ATTEMPTS = QueueSettings().max_attempts

PASSWORD_ENV = "SFP_SNOWFLAKE_PASSWORD"  # noqa: S105 (a variable name)
PASSPHRASE_ENV = "SFP_SNOWFLAKE_PRIVATE_KEY_PASSPHRASE"  # noqa: S105 (a variable name)
KEY_FILE_ENV = "SFP_SNOWFLAKE_PRIVATE_KEY_FILE"

# How SnowflakeSettings' messages name things, and what to say instead on a command line.
_FIELD_FLAGS = {
    "account": "--account",
    "database": "--database",
    "schema_name": "--schema",
    "SFP_SNOWFLAKE_SCHEMA": "--schema",
    "table": "--table",
    "host": "--host",
    "port": "--port",
    "user": "--user",
    "role": "--role",
    "warehouse": "--warehouse",
    "auth": "--auth",
    "private_key_file": "--private-key-file",
}
_MESSAGE_FLAGS = {
    "SFP_SNOWFLAKE_PRIVATE_KEY_FILE": f"--private-key-file (or {KEY_FILE_ENV})",
    "SFP_SNOWFLAKE_USER": "--user",
    "SFP_SNOWFLAKE_HOST": "--host",
    "SFP_SNOWFLAKE_PORT": "--port",
}


class _ExplicitSettings(SnowflakeSettings):
    """SnowflakeSettings from the values given only: no SFP_SNOWFLAKE_* surprises from
    the environment (the secrets are read explicitly, below)."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


@dataclass(frozen=True)
class OpsTarget:
    settings: SnowflakeSettings
    max_attempts: int  # decides which pending entries are "eligible"
    source: str  # for messages: "resource FILE" or "flags"

    @property
    def table_name(self) -> str:
        return str(self.settings.table_ref)


def load_target(args: argparse.Namespace) -> OpsTarget:
    """Settings from exactly one of --resource or the target flags; ConfigError otherwise."""
    given = [name for name in TARGET_FLAGS if getattr(args, name) is not None]
    login = {name: getattr(args, name) for name in LOGIN_FLAGS if getattr(args, name) is not None}
    if args.resource is not None:
        if given:
            flags = ", ".join(f"--{name}" for name in given)
            raise ConfigError(
                f"--resource names the queue table already: leave out {flags} "
                "(only --user, --role, --warehouse and --auth may override the resource)"
            )
        spec = load_resource_spec(args.resource)
        snowflake = spec.snowflake
        fields: dict[str, Any] = {
            "account": snowflake.account,
            "user": snowflake.user,
            "role": snowflake.role,
            "warehouse": snowflake.warehouse,
            "database": snowflake.database,
            "schema_name": snowflake.schema_,
            "table": snowflake.table,
            "auth": snowflake.auth.mode,
            "host": snowflake.host,
            "port": snowflake.port,
            **login,
        }
        settings = _settings(fields, args)
        return OpsTarget(settings, spec.queue.max_attempts, f"resource {args.resource}")
    required = ("account", "database", "schema", "table")
    if not given:
        raise ConfigError(
            "say which queue table: --resource FILE (a SnowflakeProcessor resource), or "
            "--account, --database, --schema and --table"
        )
    missing = [f"--{name}" for name in required if getattr(args, name) is None]
    if missing:
        raise ConfigError(
            f"missing {', '.join(missing)}: without --resource, give --account, --database, "
            "--schema and --table"
        )
    fields = {
        "account": args.account,
        "database": args.database,
        "schema_name": args.schema,
        "table": args.table,
        "host": args.host,
        "port": args.port,
        **login,
    }
    return OpsTarget(_settings(fields, args), DEFAULT_MAX_ATTEMPTS, "flags")


def load_resource_spec(path: Path) -> ProcessorSpec:
    """Read a SnowflakeProcessor YAML file and validate its spec as the operator does."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"cannot read the resource file {path}: {reason}") from None
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        where = getattr(exc, "problem_mark", None)
        line = f" at line {where.line + 1}" if where is not None else ""
        problem = getattr(exc, "problem", None) or one_line(exc)
        raise ConfigError(f"{path} is not valid YAML{line}: {problem}") from None
    if not isinstance(document, dict) or not isinstance(document.get("spec"), dict):
        raise ConfigError(f"{path} is not a {RESOURCE_KIND} resource: it has no spec mapping")
    kind = document.get("kind")
    if kind is not None and kind != RESOURCE_KIND:
        raise ConfigError(f"{path} is a {kind}, not a {RESOURCE_KIND}")
    try:
        return ProcessorSpec.model_validate(document["spec"])
    except ValidationError as exc:
        problems = validation_problems(exc, spec_location)
        raise ConfigError(f"invalid resource {path}: {problems}") from None


def _settings(fields: dict[str, Any], args: argparse.Namespace) -> SnowflakeSettings:
    fields = {
        **fields,
        **_secrets(AuthMode(fields.get("auth") or AuthMode.WORKLOAD_IDENTITY), args),
    }
    try:
        return _ExplicitSettings(**fields)
    except ValidationError as exc:
        raise ConfigError(_settings_message(exc)) from None


def _secrets(auth: AuthMode, args: argparse.Namespace) -> dict[str, Any]:
    """Only what the login mode uses; read here so no other SFP_* variable leaks in."""
    if auth is AuthMode.KEY_PAIR:
        key_file = args.private_key_file or os.environ.get(KEY_FILE_ENV) or None
        secrets: dict[str, Any] = {}
        if key_file is not None:
            key_path = Path(key_file)
            if not key_path.is_file():
                raise ConfigError(f"the private key file {key_path} does not exist")
            secrets["private_key_file"] = key_path
        if os.environ.get(PASSPHRASE_ENV):
            secrets["private_key_passphrase"] = os.environ[PASSPHRASE_ENV]
        return secrets
    if auth is AuthMode.PASSWORD and os.environ.get(PASSWORD_ENV):
        return {"password": os.environ[PASSWORD_ENV]}
    return {}


def _settings_message(exc: ValidationError) -> str:
    def as_flags(parts: Sequence[str]) -> str:
        return " ".join(_FIELD_FLAGS.get(part, part) for part in parts)

    def reword(message: str) -> str:
        for variable, flag in _MESSAGE_FLAGS.items():
            message = message.replace(variable, flag)
        return message

    return "invalid Snowflake settings: " + validation_problems(exc, as_flags, reword)
