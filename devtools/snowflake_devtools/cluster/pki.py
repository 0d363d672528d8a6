"""The cluster's certificates and keys, made with `cryptography` (ECDSA P-256: fast)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from . import config
from .settings import ClusterSettings

VALIDITY = dt.timedelta(days=30)


@dataclass(frozen=True)
class KeyPair:
    cert_pem: str
    key_pem: str


def _new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


def _name(common_name: str, organizations: tuple[str, ...] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


@dataclass(frozen=True)
class Authority:
    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @classmethod
    def create(cls, common_name: str = "snowflake-processor-local-ca") -> Authority:
        key = _new_key()
        now = dt.datetime.now(dt.UTC)
        name = _name(common_name)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    key_cert_sign=True,
                    crl_sign=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
            .sign(key, hashes.SHA256())
        )
        return cls(cert, key)

    @property
    def pair(self) -> KeyPair:
        return KeyPair(
            self.cert.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(self.key)
        )

    def issue(
        self,
        common_name: str,
        organizations: tuple[str, ...] = (),
        *,
        server: bool = False,
        client: bool = False,
        dns_names: tuple[str, ...] = (),
        ip_addresses: tuple[str, ...] = (),
    ) -> KeyPair:
        key = _new_key()
        now = dt.datetime.now(dt.UTC)
        usages = []
        if server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        if client:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name, organizations))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), False
            )
        )
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_names]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return KeyPair(cert.public_bytes(serialization.Encoding.PEM).decode(), _key_pem(key))


def issue_all(s: ClusterSettings, ca: Authority) -> dict[str, KeyPair]:
    """Every certificate of the cluster, by file stem."""
    dns, ips = config.apiserver_sans(s)
    pairs = {
        "ca": ca.pair,
        "apiserver": ca.issue(
            "kube-apiserver", server=True, dns_names=tuple(dns), ip_addresses=tuple(ips)
        ),
        "kubelet-serving": ca.issue(
            s.node_name,
            server=True,
            dns_names=(s.node_name,),
            ip_addresses=(s.network.host_address,),
        ),
    }
    # The aggregation layer's own CA, as kubeadm and EKS set it up: the API server
    # publishes it in kube-system/extension-apiserver-authentication for the
    # controller-manager and scheduler (and any extension API server) to trust.
    front_proxy = Authority.create("snowflake-processor-local-front-proxy-ca")
    pairs["front-proxy-ca"] = front_proxy.pair
    pairs["front-proxy-client"] = front_proxy.issue(config.FRONT_PROXY_CLIENT, client=True)
    identities = dict(config.CLIENT_IDENTITIES)
    identities["kubelet"] = config.kubelet_identity(s.node_name)
    for stem, (cn, orgs) in identities.items():
        pairs[stem] = ca.issue(cn, orgs, client=True)
    return pairs


def service_account_keys() -> KeyPair:
    """The ServiceAccount token signing key (cert_pem holds the public key here)."""
    key = _new_key()
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return KeyPair(public.decode(), _key_pem(key))


def _write(path: Path, text: str, private: bool) -> None:
    path.write_text(text)
    path.chmod(0o600 if private else 0o644)


def write_pki(s: ClusterSettings) -> dict[str, KeyPair]:
    """Create the PKI under the state dir (fresh each `up`) and return it."""
    paths = config.pki_of(s)
    paths.root.mkdir(parents=True, exist_ok=True)
    pairs = issue_all(s, Authority.create())
    for stem, pair in pairs.items():
        _write(paths.cert(stem), pair.cert_pem, private=False)
        _write(paths.key(stem), pair.key_pem, private=True)
    sa = service_account_keys()
    _write(paths.service_account_public_key, sa.cert_pem, private=False)
    _write(paths.service_account_key, sa.key_pem, private=True)
    return pairs
