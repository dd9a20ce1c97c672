"""Shared fixtures: a throwaway PKI (ECDSA and RSA) and ready-made configs.

Generated once per test session with ``cryptography`` (s2npy.pki); tests that
need files use ``pki_files`` (a directory with every PEM).
"""

from __future__ import annotations

import pytest

import s2npy
from s2npy.pki import TestPKI, make_pki


@pytest.fixture(scope="session")
def pki() -> TestPKI:
    """ECDSA P-256 CA, server (localhost, 127.0.0.1), client, expired server, untrusted CA + client."""
    return make_pki("ecdsa")


@pytest.fixture(scope="session")
def rsa_pki() -> TestPKI:
    """The same PKI with RSA-2048 keys."""
    return make_pki("rsa")


@pytest.fixture(scope="session")
def pki_files(pki, tmp_path_factory):
    """``pki`` written as files: a dict name -> Path (ca, ca_key, server, server_key, ...)."""
    return pki.write(tmp_path_factory.mktemp("pki"))


@pytest.fixture
def server_config(pki):
    """A server with the ECDSA server certificate, trusting the test CA for client certs."""
    def make(**kwargs) -> s2npy.Config:
        return s2npy.Config(certificates=[(pki.server.cert, pki.server.key)], trust=pki.ca.cert,
                            system_trust=False, **kwargs)
    return make


@pytest.fixture
def client_config(pki):
    """A client trusting only the test CA; pass with_cert=True to present the client certificate."""
    def make(with_cert: bool = False, **kwargs) -> s2npy.Config:
        certificates = [(pki.client.cert, pki.client.key)] if with_cert else []
        return s2npy.Config(certificates=certificates, trust=pki.ca.cert, system_trust=False, **kwargs)
    return make
