"""The worker's environment, stripped of what would change where its credentials come from
or where they are sent. Applied once at start-up, before anything reads the environment.

A SnowflakeProcessor's author may add environment variables to the worker's pod (within
the operator's allow-list); the worker does not rely on that list being right. The
libraries under it read more than the worker's own SFP_* settings: the AWS SDK (botocore,
which the Snowflake connector uses to prove the pod's IAM identity) reads profiles from
config files that may run any program (``credential_process``), static keys and container
credential endpoints; the Snowflake connector reads SNOWFLAKE_* variables, one of which
turns off its check that the identity proof goes to a Snowflake host. None of those is
honoured: the pod's own IAM role (IRSA: AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE, set
by EKS), its region, and the SFP_* settings are what the worker logs in with.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

# Set to a file that holds nothing: no profile, no credential_process, no static keys.
OVERRIDDEN = {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
# Removed: each chooses or supplies credentials, or where the SDK sends requests.
REMOVED = frozenset(
    {
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_SECURITY_TOKEN",
        "AWS_CREDENTIAL_EXPIRATION",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_STS",
        "AWS_CA_BUNDLE",
    }
)
REMOVED_PREFIXES = ("SNOWFLAKE_",)  # the connector's own knobs; the worker's are SFP_*
# The worker's settings are SFP_* in capitals. pydantic-settings matches names ignoring
# case, so sfp_x or Sfp_X would be read too (and which of two twins wins depends on the
# environment's order): any spelling other than the capitals is dropped.
OWN_PREFIX = "SFP_"


@dataclass(frozen=True)
class Cleaned:
    environment: dict[str, str]
    ignored: tuple[str, ...]  # names only: values may be secrets


def cleaned(environ: Mapping[str, str]) -> Cleaned:
    """The environment the worker runs with (pure), and the names it ignores."""
    ignored = sorted(
        name
        for name in environ
        if name in REMOVED
        or name.upper().startswith(REMOVED_PREFIXES)
        or (name.upper().startswith(OWN_PREFIX) and name != name.upper())
        or (name in OVERRIDDEN and environ[name] != OVERRIDDEN[name])
    )
    kept = {name: value for name, value in environ.items() if name not in set(ignored)}
    return Cleaned({**kept, **OVERRIDDEN}, tuple(ignored))


def apply(environ: MutableMapping[str, str] | None = None) -> tuple[str, ...]:
    """Replace the process environment with the cleaned one; the names ignored."""
    target = os.environ if environ is None else environ
    result = cleaned(target)
    target.clear()
    target.update(result.environment)
    return result.ignored
