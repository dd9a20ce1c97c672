"""s2npy server x cert auth x peer client certificate x TLS version, against real clients.

Every cell's expectation is in :data:`EXPECTED` with the reason. Two facts of
s2n shape the failing cells:

* s2n validates a client certificate whenever one is sent, so ``optional``
  fails an untrusted certificate just like ``required`` does.
* s2npy uses self-service blinding: after a failed handshake the server
  closes at once, and s2n only writes its alert from ``s2n_shutdown`` once
  the 10-30 s blinding delay has passed. So the peer sees the connection
  close without an alert (``peer_alert=None`` below, asserted).
"""

from __future__ import annotations

import pytest

import s2npy
from harness import PEER_CLIENTS, Failure, S2nServer, describe

UNTRUSTED = Failure(s2npy.ProtocolError, "S2N_ERR_CERT_UNTRUSTED", "certificate_untrusted",
                    "s2n validates a client certificate that is sent, even with optional")
MISSING = Failure(s2npy.ProtocolError, "S2N_ERR_MISSING_CLIENT_CERT", "client_certificate_missing",
                  "required: the client answered CertificateRequest with an empty Certificate")

#: (cert auth, client certificate) -> (Failure or None for success, reason).
EXPECTED = {
    ("none", None): (None, "no CertificateRequest, nothing to send"),
    ("none", "client"): (None, "no CertificateRequest, so the certificate is never sent"),
    ("none", "untrusted_client"): (None, "no CertificateRequest, so the certificate is never sent or checked"),
    ("optional", None): (None, "the empty Certificate answer is accepted"),
    ("optional", "client"): (None, "the certificate is sent and chains to the trusted CA"),
    ("optional", "untrusted_client"): (UNTRUSTED, UNTRUSTED.reason),
    ("required", None): (MISSING, MISSING.reason),
    ("required", "client"): (None, "the certificate is sent and chains to the trusted CA"),
    ("required", "untrusted_client"): (UNTRUSTED, "the certificate does not chain to the trusted CA"),
}
CERT_LABELS = {None: "no cert", "client": "cert from trusted CA", "untrusted_client": "cert from untrusted CA"}
GRID_PEERS = ("openssl", "gnutls", "python-ssl", "tlslite-ng", "curl")


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("client_cert", list(CERT_LABELS))
@pytest.mark.parametrize("cert_auth", ["none", "optional", "required"])
@pytest.mark.parametrize("peer", GRID_PEERS)
def test_client_certificate_grid(peer, cert_auth, client_cert, version, server_config, pki_files, matrix):
    """An s2npy server with ``cert_auth`` against ``peer`` presenting ``client_cert`` over TLS ``version``."""
    failure, reason = EXPECTED[cert_auth, client_cert]
    cell = matrix("s2npy server: client certificate authentication",
                  failure.summary() if failure else "handshake ok", reason,
                  peer=peer, cert_auth=cert_auth, client=CERT_LABELS[client_cert], tls=version)
    with S2nServer(server_config(cert_auth=cert_auth)) as server:
        result = PEER_CLIENTS[peer](server.port, pki_files, version=version, cert=client_cert)
    outcome = server.outcome
    cell.observed["peer saw"] = result.summary()
    used = outcome.facts is not None and outcome.facts.client_cert_sent
    cell.observed["s2npy"] = describe(outcome.error, ok=f"ok, client cert used: {used}")
    if failure is None:
        assert outcome.error is None, f"unexpected failure: {outcome.error}"
        assert result.ok, result.output
        assert outcome.facts.protocol == f"TLSv{version}"
        assert outcome.facts.client_cert_sent == (cert_auth != "none" and client_cert is not None)
    else:
        failure.check(outcome.error)
        assert not result.ok, result.output
        assert result.alert == failure.peer_alert, result.output
