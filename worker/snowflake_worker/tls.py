"""Client TLS material: the three mounted files checked and turned into an SSLContext."""

from __future__ import annotations

import ssl
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509

from .constants import CERT_FILES
from .errors import ConfigError


def client_ssl_context(cert_dir: Path, now: datetime | None = None) -> ssl.SSLContext:
    """Build the mTLS context, or raise ConfigError naming the file and the fix."""
    cert, key, ca = (cert_dir / name for name in CERT_FILES)
    for path in (cert, key, ca):
        if not path.is_file():
            raise ConfigError(
                f"certificate file {path} is missing: mount {', '.join(CERT_FILES)} "
                f"into {cert_dir} (SFP_CERT_DIR)"
            )
    try:
        context = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=str(ca))
    except (ssl.SSLError, ValueError) as exc:
        raise ConfigError(f"{ca} is not a valid PEM CA certificate: {exc}") from None
    try:
        context.load_cert_chain(certfile=str(cert), keyfile=str(key))
    except ssl.SSLError as exc:
        if "KEY_VALUES_MISMATCH" in str(exc):
            raise ConfigError(
                f"{key} does not match the certificate in {cert}: sync the pair together"
            ) from None
        raise ConfigError(f"cannot load {cert} with {key}: {exc}") from None
    _check_validity(cert, now or datetime.now(UTC))
    return context


def _check_validity(cert: Path, now: datetime) -> None:
    """A service rejects an expired client certificate with a TLS alert that names no
    cause; say it here, before anything is claimed."""
    try:
        client = x509.load_pem_x509_certificate(cert.read_bytes())
    except ValueError as exc:
        raise ConfigError(f"{cert} is not a valid PEM certificate: {exc}") from None
    problem = validity_problem(client.not_valid_before_utc, client.not_valid_after_utc, now)
    if problem is not None:
        raise ConfigError(
            f"client certificate {cert} {problem}: sync a current client.pem and "
            "client-key.pem (or check the clock)"
        )


def validity_problem(not_before: datetime, not_after: datetime, now: datetime) -> str | None:
    """``"expired on ..."`` or ``"not valid before ..."`` for a certificate at ``now``
    (timezone-aware), None while it is valid."""
    if not_after < now:
        return f"expired on {_timestamp(not_after)}"
    if not_before > now:
        return f"not valid before {_timestamp(not_before)}"
    return None


def _timestamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
