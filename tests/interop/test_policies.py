"""Security policies against peers limited to one TLS version or one cipher suite.

Policies: ``default`` and ``default_tls13`` (TLS 1.2 and 1.3) and
``20240501`` (TLS 1.2 only; its cipher list has no TLS 1.3 suites). Names
from s2n-tls's ``tls/s2n_security_policies.c``.
"""

from __future__ import annotations

import pytest

import s2npy
from harness import PEER_CLIENTS, Failure, S2nServer, describe, openssl_client, openssl_server, s2npy_client

POLICIES = ("default", "default_tls13", "20240501")
TLS12_ONLY = "20240501"
SECTION = "Security policies"

OLD_VERSION = Failure(s2npy.ProtocolError, "S2N_ERR_PROTOCOL_VERSION_UNSUPPORTED", "no_shared_version",
                      "every policy here starts at TLS 1.2")
TLS13_ONLY_CLIENT = Failure(
    s2npy.ProtocolError, "S2N_ERR_CIPHER_NOT_SUPPORTED", "no_shared_cipher",
    "without TLS 1.3 in the policy s2n negotiates TLS 1.2 from the legacy version and finds none of the "
    "client's (TLS 1.3-only) cipher suites: s2n reports a cipher mismatch, not a version one")
TLSLITE_REFUSES_12 = Failure(
    s2npy.AlertError, "S2N_ERR_ALERT", "no_shared_version",
    "tlslite-ng offers TLS 1.2 suites even when limited to 1.3, so s2n answers with TLS 1.2 and tlslite-ng "
    "refuses that with protocol_version", alert="protocol_version")


def version_expectation(policy: str, peer: str, version: str) -> Failure | None:
    """What an s2npy server with ``policy`` does with ``peer`` limited to TLS ``version``."""
    if version == "1.1":
        return OLD_VERSION
    if policy == TLS12_ONLY and version == "1.3":
        return TLSLITE_REFUSES_12 if peer == "tlslite-ng" else TLS13_ONLY_CLIENT
    return None


#: Peers and versions of the version grid; OpenSSL 3 needs security level 0 to speak TLS 1.1 at all.
VERSION_CELLS = [(peer, version) for peer in ("openssl", "gnutls", "tlslite-ng") for version in ("1.2", "1.3")] \
    + [("openssl", "1.1"), ("tlslite-ng", "1.1")]
PEER_OPTIONS = {("openssl", "1.1"): dict(extra=("-cipher", "DEFAULT@SECLEVEL=0"))}


def check_server_cell(cell, server: S2nServer, result, failure: Failure | None, version: str) -> None:
    """Assert an s2npy server cell: the negotiated version, or the expected failure and a failed peer."""
    outcome = server.outcome
    cell.observed["s2npy"] = describe(outcome.error, ok=f"ok, {outcome.facts and outcome.facts.cipher}")
    cell.observed["peer saw"] = result.summary()
    if failure is None:
        assert outcome.error is None, outcome.error
        assert result.ok, result.output
        assert outcome.facts.protocol == f"TLSv{version}"
    else:
        failure.check(outcome.error)
        assert not result.ok, result.output
        assert result.alert == failure.peer_alert, result.output


@pytest.mark.parametrize("peer,version", VERSION_CELLS)
@pytest.mark.parametrize("policy", POLICIES)
def test_policy_against_peer_version(policy, peer, version, server_config, pki_files, matrix):
    """An s2npy server with ``policy`` against a peer client limited to TLS ``version``."""
    failure = version_expectation(policy, peer, version)
    cell = matrix(SECTION, failure.summary() if failure else f"TLSv{version} negotiated",
                  failure.reason if failure else "the version is inside the policy",
                  s2npy="server", policy=policy, peer=peer, peer_limit=f"TLS {version} only")
    with S2nServer(server_config(policy=policy)) as server:
        result = PEER_CLIENTS[peer](server.port, pki_files, version=version,
                                    **PEER_OPTIONS.get((peer, version), {}))
    check_server_cell(cell, server, result, failure, version)


#: OpenSSL cipher -> the policies whose TLS 1.2 list has it.
CIPHERS = {"ECDHE-ECDSA-AES128-SHA": (), "ECDHE-ECDSA-CHACHA20-POLY1305": ("default_tls13",),
           "ECDHE-ECDSA-AES128-SHA256": ("default_tls13", TLS12_ONLY)}


@pytest.mark.parametrize("cipher", list(CIPHERS))
@pytest.mark.parametrize("policy", POLICIES)
def test_policy_against_peer_cipher(policy, cipher, server_config, pki_files, matrix):
    """An s2npy server with ``policy`` against openssl limited to one TLS 1.2 cipher suite."""
    failure = None if policy in CIPHERS[cipher] else Failure(
        s2npy.ProtocolError, "S2N_ERR_CIPHER_NOT_SUPPORTED", "no_shared_cipher", f"{policy} does not list {cipher}")
    cell = matrix(SECTION, failure.summary() if failure else "TLSv1.2 negotiated",
                  failure.reason if failure else f"{policy} lists {cipher}",
                  s2npy="server", policy=policy, peer="openssl", peer_limit=cipher)
    with S2nServer(server_config(policy=policy)) as server:
        result = openssl_client(server.port, pki_files, version="1.2", extra=("-cipher", cipher))
    check_server_cell(cell, server, result, failure, "1.2")


@pytest.mark.parametrize("peer_version", ["1.2", "1.3"])
def test_tls12_only_client(peer_version, client_config, pki_files, matrix):
    """An s2npy client with the TLS 1.2-only policy against openssl s_server limited to one version."""
    failure = Failure(s2npy.AlertError, "S2N_ERR_ALERT", "no_shared_version",
                      "OpenSSL refuses a ClientHello without TLS 1.3", alert="protocol_version") \
        if peer_version == "1.3" else None
    cell = matrix(SECTION, failure.summary() if failure else "TLSv1.2 negotiated",
                  failure.reason if failure else "the version is inside the policy",
                  s2npy="client", policy=TLS12_ONLY, peer="openssl", peer_limit=f"TLS {peer_version} only")
    with openssl_server(pki_files, version=peer_version) as server:
        outcome = s2npy_client(client_config(policy=TLS12_ONLY), server.port)
    cell.observed["s2npy"] = describe(outcome.error, ok=f"ok, {outcome.facts and outcome.facts.protocol}")
    if failure:
        failure.check(outcome.error)
    else:
        assert outcome.error is None, outcome.error
        assert outcome.facts.protocol == "TLSv1.2"
