"""Throwaway PKIs for experiments and tests: a CA and leaves, RSA or ECDSA.

``make_pki()`` returns PEM bytes for a CA, a server leaf (SANs: the given
names, by default ``localhost`` and ``127.0.0.1``), a client leaf, an expired
server leaf, and a second, untrusted CA with its own client leaf. Nothing is
written to disk unless you call :meth:`TestPKI.write`.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .errors import ConfigError

KEY_TYPES = ("ecdsa", "rsa")


@dataclass(frozen=True)
class Identity:
    """A certificate (PEM, leaf first then issuers) and its private key (PEM)."""

    cert: bytes
    key: bytes

    @property
    def chain(self) -> bytes:
        return self.cert

    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert)


@dataclass(frozen=True)
class TestPKI:
    """A CA with server and client leaves, plus an untrusted CA and its client."""

    __test__ = False  # not a pytest test class

    ca: Identity
    server: Identity
    client: Identity
    expired_server: Identity
    other_ca: Identity
    untrusted_client: Identity

    def write(self, directory: str | os.PathLike) -> dict[str, Path]:
        """Write every certificate and key as PEM files (keys with mode 0600)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        written = {}
        for name in ("ca", "server", "client", "expired_server", "other_ca", "untrusted_client"):
            identity: Identity = getattr(self, name)
            cert_path, key_path = out / f"{name}.pem", out / f"{name}.key"
            cert_path.write_bytes(identity.cert)
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(fd, "wb") as key_file:
                key_file.write(identity.key)
            written[name], written[f"{name}_key"] = cert_path, key_path
        return written


def _new_key(key_type: str):
    if key_type == "ecdsa":
        return ec.generate_private_key(ec.SECP256R1())
    if key_type == "rsa":
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ConfigError(f"unknown key type {key_type!r}: use one of {', '.join(KEY_TYPES)}")


def _pem_key(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "s2npy test PKI"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _san(names: list[str]) -> x509.SubjectAlternativeName:
    entries: list[x509.GeneralName] = []
    for name in names:
        try:
            entries.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            entries.append(x509.DNSName(name))
    return x509.SubjectAlternativeName(entries)


def _issue(subject: str, key, issuer_name: x509.Name, issuer_key, *, ca: bool, usage=None,
           names: list[str] | None = None, not_before: datetime.datetime, not_after: datetime.datetime):
    builder = (x509.CertificateBuilder().subject_name(_name(subject)).issuer_name(issuer_name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(not_before).not_valid_after(not_after)
               .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True))
    if ca:
        builder = builder.add_extension(x509.KeyUsage(
            digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
            key_encipherment=False, data_encipherment=False, key_agreement=False,
            encipher_only=False, decipher_only=False), critical=True)
    if usage is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if names:
        builder = builder.add_extension(_san(names), critical=False)
    return builder.sign(issuer_key, hashes.SHA256())


def _pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def make_ca(common_name: str, key_type: str = "ecdsa") -> tuple[Identity, object, x509.Name]:
    """A self-signed CA valid for ten years around now."""
    now = datetime.datetime.now(datetime.timezone.utc)
    key = _new_key(key_type)
    cert = _issue(common_name, key, _name(common_name), key, ca=True,
                  not_before=now - datetime.timedelta(days=1), not_after=now + datetime.timedelta(days=3650))
    return Identity(_pem(cert), _pem_key(key)), key, cert.subject


def issue_leaf(ca_key, ca_name: x509.Name, common_name: str, *, server: bool, key_type: str = "ecdsa",
               names: list[str] | None = None, expired: bool = False) -> Identity:
    """A server or client leaf signed by the CA (``expired`` ended yesterday)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    if expired:
        window = (now - datetime.timedelta(days=30), now - datetime.timedelta(days=1))
    else:
        window = (now - datetime.timedelta(days=1), now + datetime.timedelta(days=365))
    key = _new_key(key_type)
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    cert = _issue(common_name, key, ca_name, ca_key, ca=False, usage=usage, names=names,
                  not_before=window[0], not_after=window[1])
    return Identity(_pem(cert), _pem_key(key))


def make_pki(key_type: str = "ecdsa", server_names: list[str] | None = None) -> TestPKI:
    """A complete throwaway PKI; ``server_names`` become the server leaf's SANs."""
    names = server_names or ["localhost", "127.0.0.1"]
    ca, ca_key, ca_name = make_ca("s2npy test CA", key_type)
    other_ca, other_key, other_name = make_ca("s2npy untrusted CA", key_type)
    return TestPKI(
        ca=ca,
        server=issue_leaf(ca_key, ca_name, names[0], server=True, key_type=key_type, names=names),
        client=issue_leaf(ca_key, ca_name, "s2npy test client", server=False, key_type=key_type),
        expired_server=issue_leaf(ca_key, ca_name, names[0], server=True, key_type=key_type, names=names,
                                  expired=True),
        other_ca=other_ca,
        untrusted_client=issue_leaf(other_key, other_name, "untrusted client", server=False, key_type=key_type),
    )
