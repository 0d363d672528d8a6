"""Throw-away certificates for the local mTLS service, made with trustme.

Layout under ``root`` after :func:`write_demo_certificates`::

    root/ca/ca-cert.pem                 the CA that signed the server and the demo client
    root/ca/ca-key.pem                  its key (0600), to issue more clients later
    root/server/server.pem              server certificate for 127.0.0.1, localhost (and extras)
    root/server/server-key.pem          (0600)
    root/client/client.pem              client certificate, identity snowflake-processor-demo
    root/client/client-key.pem          (0600)
    root/client/ca-cert.pem             copy of the CA, so the worker trusts the server

The client folder holds exactly the three file names the worker reads from its
certificate directory (:data:`CERT_FILES`).
"""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import trustme

from snowflake_worker.constants import CA_CERT, CLIENT_CERT, CLIENT_KEY

DEMO_CLIENT_IDENTITY = "snowflake-processor-demo"
UNTRUSTED_CLIENT_IDENTITY = "snowflake-processor-untrusted"
CA_KEY = "ca-key.pem"


@dataclass(frozen=True)
class DemoCertificates:
    """Paths of one CA, one server certificate and one client certificate folder."""

    ca_cert: Path
    server_cert: Path
    server_key: Path
    client_cert: Path
    client_key: Path
    client_dir: Path


def _write_private(path: Path, data: bytes) -> None:
    """Write a private key readable by its owner only (0600 even if the file existed)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    path.chmod(0o600)


def _write_client_dir(directory: Path, cert: trustme.LeafCert, ca_cert_pem: bytes) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / CLIENT_CERT).write_bytes(b"".join(blob.bytes() for blob in cert.cert_chain_pems))
    _write_private(directory / CLIENT_KEY, cert.private_key_pem.bytes())
    (directory / CA_CERT).write_bytes(ca_cert_pem)


def write_demo_certificates(
    root: Path, extra_server_hosts: tuple[str, ...] = ()
) -> DemoCertificates:
    """Create a CA, a server certificate and a client certificate folder under ``root``.

    The server certificate names 127.0.0.1 and localhost, plus ``extra_server_hosts``
    (e.g. the local cluster's bridge address, where pods call the service).
    """
    ca = trustme.CA(organization_name="snowflake-processor demo CA")
    ca_pem = ca.cert_pem.bytes()

    ca_dir = root / "ca"
    ca_dir.mkdir(parents=True, exist_ok=True)
    ca_cert = ca_dir / CA_CERT
    ca_cert.write_bytes(ca_pem)
    _write_private(ca_dir / CA_KEY, ca.private_key_pem.bytes())

    server = ca.issue_cert("127.0.0.1", "localhost", *extra_server_hosts, common_name="localhost")
    server_dir = root / "server"
    server_dir.mkdir(parents=True, exist_ok=True)
    server_cert = server_dir / "server.pem"
    server_cert.write_bytes(b"".join(blob.bytes() for blob in server.cert_chain_pems))
    server_key = server_dir / "server-key.pem"
    _write_private(server_key, server.private_key_pem.bytes())

    client = ca.issue_cert(DEMO_CLIENT_IDENTITY, common_name=DEMO_CLIENT_IDENTITY)
    client_dir = root / "client"
    _write_client_dir(client_dir, client, ca_pem)

    return DemoCertificates(
        ca_cert=ca_cert,
        server_cert=server_cert,
        server_key=server_key,
        client_cert=client_dir / CLIENT_CERT,
        client_key=client_dir / CLIENT_KEY,
        client_dir=client_dir,
    )


def write_untrusted_client(root: Path) -> Path:
    """Write ``root/untrusted-client/``: a client signed by a different CA.

    ``root`` is the folder :func:`write_demo_certificates` wrote. The folder's ``ca-cert.pem``
    is still the server's CA (the client trusts the server), but the service does not trust
    the client's certificate, so the TLS handshake fails.
    """
    server_ca = root / "ca" / CA_CERT
    if not server_ca.is_file():
        raise FileNotFoundError(
            f"{server_ca} not found: call write_demo_certificates({root}) first"
        )
    other_ca = trustme.CA(organization_name="snowflake-processor untrusted CA")
    client = other_ca.issue_cert(UNTRUSTED_CLIENT_IDENTITY, common_name=UNTRUSTED_CLIENT_IDENTITY)
    directory = root / "untrusted-client"
    _write_client_dir(directory, client, server_ca.read_bytes())
    return directory


def write_client_valid_between(
    root: Path, name: str, not_before: datetime, not_after: datetime
) -> Path:
    """Write ``root/<name>/``: a client signed by the demo CA, valid only in that window.

    ``root`` is the folder :func:`write_demo_certificates` wrote; the client is trusted by
    the service, so an expired or not-yet-valid certificate is its only problem.
    """
    ca_dir = root / "ca"
    ca = trustme.CA.from_pem((ca_dir / CA_CERT).read_bytes(), (ca_dir / CA_KEY).read_bytes())
    client = ca.issue_cert(
        DEMO_CLIENT_IDENTITY,
        common_name=DEMO_CLIENT_IDENTITY,
        not_before=not_before,
        not_after=not_after,
    )
    directory = root / name
    _write_client_dir(directory, client, ca.cert_pem.bytes())
    return directory


def write_mismatched_key_client(src: DemoCertificates, root: Path) -> Path:
    """Write ``root/mismatched-key-client/``: src's client certificate with a foreign key.

    ``client.pem`` and ``ca-cert.pem`` are copies of ``src``'s; ``client-key.pem`` is a valid
    private key that does not belong to ``client.pem``, so loading the pair fails.
    """
    directory = root / "mismatched-key-client"
    directory.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(src.client_cert, directory / CLIENT_CERT)
    shutil.copyfile(src.ca_cert, directory / CA_CERT)
    stranger = trustme.CA().issue_cert(DEMO_CLIENT_IDENTITY, common_name=DEMO_CLIENT_IDENTITY)
    _write_private(directory / CLIENT_KEY, stranger.private_key_pem.bytes())
    return directory
