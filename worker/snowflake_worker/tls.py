"""Client TLS material: the three mounted files checked and turned into an SSLContext."""

from __future__ import annotations

import ssl
from pathlib import Path

from .constants import CERT_FILES
from .errors import ConfigError


def client_ssl_context(cert_dir: Path) -> ssl.SSLContext:
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
    return context
