"""s2npy client against peer servers: client certificates, and bad server certificates.

In TLS 1.3 the client's handshake is complete before the server has looked
at the client certificate, so a server that requires one and gets none
answers with a ``certificate_required`` alert that s2npy receives in
``recv()`` after ``negotiate()`` returned: the cells say where each failure
surfaces (``failed_in``).
"""

from __future__ import annotations

import pytest

import s2npy
from harness import PEER_SERVERS, Failure, describe, s2npy_client

CLIENT_AUTH_LABELS = {"none": "does not ask", "request": "asks (optional)", "require": "requires"}


def _alert(alert: str, reason: str, cause: str = "alert_received") -> Failure:
    return Failure(s2npy.AlertError, "S2N_ERR_ALERT", cause, reason, alert=alert)


#: (peer, TLS version) -> (failure, where it surfaces) for a server that requires a certificate and gets none.
REQUIRED_BUT_NONE = {
    ("openssl", "1.2"): (_alert("handshake_failure", "OpenSSL refuses the empty Certificate in the handshake"),
                         "handshake"),
    ("openssl", "1.3"): (_alert("certificate_required", "TLS 1.3: the verdict comes after the client finished",
                                "client_certificate_missing"),
                         "exchange"),
    ("gnutls", "1.2"): (_alert("decode_error", "GnuTLS answers 'No certificate was found' with decode_error"),
                        "handshake"),
    ("gnutls", "1.3"): (_alert("certificate_required", "TLS 1.3: the verdict comes after the client finished",
                                "client_certificate_missing"),
                        "exchange"),
}


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("with_cert", [False, True], ids=["no-cert", "cert"])
@pytest.mark.parametrize("client_auth", list(CLIENT_AUTH_LABELS))
@pytest.mark.parametrize("peer", list(PEER_SERVERS))
def test_client_certificate_to_peer(peer, client_auth, with_cert, version, client_config, pki_files, matrix):
    """An s2npy client, with or without a certificate, against a peer server asking for one or not."""
    failure, failed_in = REQUIRED_BUT_NONE[peer, version] if client_auth == "require" and not with_cert \
        else (None, None)
    sends = client_auth != "none" and with_cert
    cell = matrix("s2npy client: peer server asks for a client certificate",
                  f"{failure.summary()} in {failed_in}" if failure else f"ok, certificate sent: {sends}",
                  failure.reason if failure else "s2n clients answer a CertificateRequest with what they have",
                  peer=peer, server=CLIENT_AUTH_LABELS[client_auth],
                  client_cert="configured" if with_cert else "none", tls=version)
    with PEER_SERVERS[peer](pki_files, version=version, client_auth=client_auth) as server:
        outcome = s2npy_client(client_config(with_cert=with_cert), server.port)
    cell.observed["s2npy"] = describe(outcome.error, ok=f"ok, certificate sent: {outcome.facts.client_cert_sent}"
                                      if outcome.facts else "ok")
    if failure:
        failure.check(outcome.error)
        assert outcome.failed_in == failed_in
    else:
        assert outcome.error is None, outcome.error
        assert outcome.response.startswith(b"HTTP/1.0 200")
        assert outcome.facts.protocol == f"TLSv{version}"
        assert outcome.facts.client_cert_sent == sends


BAD_SERVER_CERTS = {
    "untrusted CA": (dict(trust="other_ca"),
                     Failure(s2npy.ProtocolError, "S2N_ERR_CERT_UNTRUSTED", "certificate_untrusted",
                             "the client trusts only another CA")),
    "hostname mismatch": (dict(server_name="wrong.example"),
                          Failure(s2npy.ProtocolError, "S2N_ERR_CERT_INVALID_HOSTNAME", "hostname_mismatch",
                                  "the certificate is for localhost and 127.0.0.1")),
    "expired": (dict(cert="expired_server"),
                Failure(s2npy.ProtocolError, "S2N_ERR_CERT_EXPIRED", "certificate_expired",
                        "the server certificate's notAfter was yesterday")),
}


@pytest.mark.parametrize("problem", list(BAD_SERVER_CERTS))
@pytest.mark.parametrize("peer", list(PEER_SERVERS))
def test_bad_server_certificate(peer, problem, pki, pki_files, matrix):
    """The s2npy client refuses an untrusted, misnamed or expired server certificate."""
    setup, failure = BAD_SERVER_CERTS[problem]
    cell = matrix("s2npy client: bad server certificate", failure.summary(), failure.reason,
                  peer=peer, problem=problem)
    trust = getattr(pki, setup.get("trust", "ca")).cert
    config = s2npy.Config(trust=trust, system_trust=False)
    with PEER_SERVERS[peer](pki_files, cert=setup.get("cert", "server")) as server:
        outcome = s2npy_client(config, server.port, server_name=setup.get("server_name", "localhost"))
    cell.observed["s2npy"] = describe(outcome.error)
    failure.check(outcome.error)
    assert outcome.failed_in == "handshake"
