"""Which queue an ops command works on: a SnowflakeProcessor in the cluster (NAME), a
resource file (--resource) or flags.

All end in the worker's SnowflakeSettings, so they are validated the same way. Secrets come
from the environment (or a key file), or from the Secrets a resource in the cluster
references, and never appear in a message.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource

from snowflake_operator.spec.documents import read_yaml_file
from snowflake_operator.spec.fields import known_fields_only, unknown_fields_message
from snowflake_operator.spec.model import ProcessorSpec, QueueSettings
from snowflake_worker.errors import ConfigError
from snowflake_worker.snowflake_settings import AuthMode, SnowflakeSettings
from snowflake_worker.validation_errors import spec_location, validation_problems

from .shared_arguments import KUBECTL_GLOBAL_FLAGS, LOGIN_FLAGS, TARGET_FLAGS

if TYPE_CHECKING:  # only for the annotation: the cluster module loads the kubernetes client
    from .cluster import ClusterResource

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
    "user": "--snowflake-user",
    "role": "--role",
    "warehouse": "--warehouse",
    "auth": "--auth",
    "private_key_file": "--private-key-file",
}
_MESSAGE_FLAGS = {
    "SFP_SNOWFLAKE_PRIVATE_KEY_FILE": f"--private-key-file (or {KEY_FILE_ENV})",
    "SFP_SNOWFLAKE_USER": "--snowflake-user",
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
class NamedResource:
    """A SnowflakeProcessor named by NAME (read from the cluster) or --resource FILE."""

    spec: ProcessorSpec
    source: str  # for messages: "resource FILE" or "SnowflakeProcessor NAMESPACE/NAME"
    # The cluster's copy only: its status, and how to read the Secrets it references.
    cluster: ClusterResource | None = None


@dataclass(frozen=True)
class OpsTarget:
    settings: SnowflakeSettings
    max_attempts: int  # decides which pending entries are "eligible"
    source: str  # for messages: "resource FILE", "SnowflakeProcessor NS/NAME" or "flags"
    resource: NamedResource | None = None

    @property
    def table_name(self) -> str:
        return str(self.settings.table_ref)


def named_resource(args: argparse.Namespace) -> NamedResource | None:
    """The resource NAME or --resource names; None when neither is given (flags).

    ConfigError when both are, when a resource comes with flags that say where the table
    is, or when -n, --context, --kubeconfig or kubectl's other global flags come without
    NAME.
    """
    where_in_cluster = {"-n": "namespace", "--context": "context", "--kubeconfig": "kubeconfig"}
    cluster_flags = [
        flag
        for flag, dest in {**where_in_cluster, **KUBECTL_GLOBAL_FLAGS}.items()
        if getattr(args, dest, None) is not None
    ]
    if args.name is None and cluster_flags:
        raise ConfigError(
            f"{', '.join(cluster_flags)} given without NAME: they say where to find a "
            "SnowflakeProcessor in the cluster; give its NAME too (kubectl get sfp lists them)"
        )
    if args.name is not None and args.resource is not None:
        raise ConfigError(
            f"give NAME (a resource in the cluster) or --resource FILE, not both "
            f"(NAME {args.name!r}, --resource {args.resource})"
        )
    if args.name is None and args.resource is None:
        return None
    given = [name for name in TARGET_FLAGS if getattr(args, name, None) is not None]
    if given:
        flags = ", ".join(f"--{name}" for name in given)
        how = "NAME" if args.name is not None else "--resource"
        raise ConfigError(
            f"{how} names the queue table already: leave out {flags} "
            "(only --snowflake-user, --role, --warehouse and --auth may override the resource)"
        )
    if args.resource is not None:
        return NamedResource(load_resource_spec(args.resource), f"resource {args.resource}")
    from .cluster import read_processor  # the kubernetes client: only when NAME is given

    found = read_processor(args.name, args.namespace, args)
    spec = validate_spec(found.document.get("spec"), found.source)
    return NamedResource(spec, found.source, found)


def load_target(args: argparse.Namespace) -> OpsTarget:
    """Settings from exactly one of NAME, --resource or the target flags; ConfigError
    otherwise."""
    login = {name: getattr(args, name) for name in LOGIN_FLAGS if getattr(args, name) is not None}
    resource = named_resource(args)
    if resource is not None:
        snowflake = resource.spec.snowflake
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
        secrets = _cluster_secrets(resource, args)
        settings = _settings(fields, args, secrets)
        return OpsTarget(settings, resource.spec.queue.max_attempts, resource.source, resource)
    given = [name for name in TARGET_FLAGS if getattr(args, name) is not None]
    required = ("account", "database", "schema", "table")
    if not given:
        raise ConfigError(
            "say which queue table: NAME (a SnowflakeProcessor in the cluster, with -n "
            "NAMESPACE), --resource FILE (a SnowflakeProcessor resource file), or --account, "
            "--database, --schema and --table"
        )
    missing = [f"--{name}" for name in required if getattr(args, name) is None]
    if missing:
        raise ConfigError(
            f"missing {', '.join(missing)}: without NAME or --resource, give --account, "
            "--database, --schema and --table"
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


def _cluster_secrets(resource: NamedResource, args: argparse.Namespace) -> dict[str, Any] | None:
    """The resource's own key or password, from its Secrets in the cluster, when the login
    is the resource's own (no --snowflake-user, --auth or --private-key-file); else None:
    the local secrets (flags, environment) apply."""
    if resource.cluster is None:
        return None
    if args.user is not None or args.auth is not None or args.private_key_file is not None:
        return None
    return resource.cluster.login_secrets(resource.spec)


def load_resource_spec(path: Path) -> ProcessorSpec:
    """Read a SnowflakeProcessor YAML file and validate its spec as the operator does."""
    document = read_yaml_file(path, "resource file")
    if not isinstance(document, dict) or not isinstance(document.get("spec"), dict):
        raise ConfigError(f"{path} is not a {RESOURCE_KIND} resource: it has no spec mapping")
    kind = document.get("kind")
    if kind is not None and kind != RESOURCE_KIND:
        raise ConfigError(f"{path} is a {kind}, not a {RESOURCE_KIND}")
    return validate_spec(document["spec"], f"resource {path}")


def validate_spec(spec: Any, source: str) -> ProcessorSpec:
    """A resource's spec validated as the operator validates it (fields this version does
    not know are left out, with a warning on stderr); ConfigError naming the field
    (``spec.job.cpu: ...``) otherwise."""
    if not isinstance(spec, dict):
        raise ConfigError(f"{source} is not a {RESOURCE_KIND} resource: it has no spec mapping")
    known, unknown = known_fields_only(spec, ProcessorSpec)
    if unknown:
        print(f"warning: {source}: {unknown_fields_message(unknown)}", file=sys.stderr)
    try:
        return ProcessorSpec.model_validate(known)
    except ValidationError as exc:
        problems = validation_problems(exc, spec_location)
        raise ConfigError(f"invalid {source}: {problems}") from None


def _settings(
    fields: dict[str, Any],
    args: argparse.Namespace,
    cluster_secrets: dict[str, Any] | None = None,
) -> SnowflakeSettings:
    auth = AuthMode(fields.get("auth") or AuthMode.WORKLOAD_IDENTITY)
    secrets = _secrets(auth, args) if cluster_secrets is None else cluster_secrets
    fields = {**fields, **secrets}
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
