"""The worker's start-up environment: nothing that changes where its credentials come from
or where they go, and its own SFP_* settings only in capitals."""

from __future__ import annotations

import os
from pathlib import Path

import botocore.session
import pytest
from botocore.exceptions import CredentialRetrievalError

from snowflake_worker import ambient

IRSA = {
    "AWS_ROLE_ARN": "arn:aws:iam::111122223333:role/worker",
    "AWS_WEB_IDENTITY_TOKEN_FILE": "/var/run/secrets/eks.amazonaws.com/serviceaccount/token",
    "AWS_REGION": "eu-west-1",
    "AWS_STS_REGIONAL_ENDPOINTS": "regional",
}


def test_the_pods_own_identity_and_settings_are_kept() -> None:
    environ = {**IRSA, "SFP_PROCESSOR_ID": "orders", "HTTPS_PROXY": "http://proxy:3128"}
    result = ambient.cleaned(environ)
    assert result.ignored == ()
    assert result.environment == {**environ, **ambient.OVERRIDDEN}


@pytest.mark.parametrize(
    "name",
    [
        "AWS_CONFIG_FILE",  # a profile with credential_process: any program, run at login
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_ENDPOINT_URL_STS",
        "SNOWFLAKE_WIF_ALLOWED_HOST_SUFFIXES",  # would send the identity proof anywhere
        "snowflake_wif_allowed_host_suffixes",
        "sfp_endpoint_headers_dir",  # read by pydantic-settings, which ignores case
        "Sfp_Snowflake_Host",
    ],
)
def test_what_would_move_credentials_is_ignored(name: str) -> None:
    result = ambient.cleaned({**IRSA, name: "/somewhere/the/author/controls"})
    assert result.ignored == (name,)
    assert result.environment.get(name) in (None, os.devnull)


def test_lower_case_twins_of_settings_are_not_read(tmp_path: Path) -> None:
    environ = {"sfp_endpoint_headers_dir": str(tmp_path), "SFP_PROCESSOR_ID": "orders"}
    ambient.apply(environ)
    assert environ == {"SFP_PROCESSOR_ID": "orders", **ambient.OVERRIDDEN}


def test_a_credential_process_profile_is_never_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """botocore itself, as the Snowflake connector uses it for workload identity."""
    ran = tmp_path / "ran"
    config = tmp_path / "config"
    config.write_text(
        f"[default]\ncredential_process = sh -c 'touch {ran}; echo {{}}'\n"
        f"[profile other]\ncredential_process = sh -c 'touch {ran}; echo {{}}'\n"
    )
    environ = {"AWS_CONFIG_FILE": str(config), "AWS_PROFILE": "other"}
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ROLE_ARN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in ambient.cleaned(environ).environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    credentials = botocore.session.Session().get_credentials()
    assert not ran.exists()
    assert credentials is None or credentials.method != "custom-process"
    # The same profile without the cleaning does run the program: the test can fail.
    monkeypatch.setenv("AWS_CONFIG_FILE", str(config))
    with pytest.raises(CredentialRetrievalError):  # it printed no credentials
        botocore.session.Session().get_credentials()
    assert ran.exists()
