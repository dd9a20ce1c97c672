"""ALPN, SNI certificate selection, RSA and ECDSA certificates, and session resumption with real peers."""

from __future__ import annotations

import pytest

import s2npy
from harness import (PEER_CLIENTS, PEER_SERVERS, Failure, S2nServer, describe, openssl_client, openssl_server,
                     s2npy_client)

SECTION_ALPN = "ALPN"


@pytest.mark.parametrize("protocol", ["h2", "http/1.1"])
@pytest.mark.parametrize("peer", ["curl", "openssl"])
def test_alpn_s2npy_server(peer, protocol, server_config, pki_files, matrix):
    """An s2npy server offering h2 and http/1.1 agrees on the protocol the peer client asks for."""
    cell = matrix(SECTION_ALPN, f"both agree on {protocol}", "the server picks the client's only protocol",
                  s2npy="server", peer=peer, protocol=protocol)
    with S2nServer(server_config(alpn=["h2", "http/1.1"])) as server:
        result = PEER_CLIENTS[peer](server.port, pki_files, version="1.3", alpn=protocol)
    seen = {"curl": f"ALPN: server accepted {protocol}", "openssl": f"ALPN protocol: {protocol}"}[peer]
    cell.observed["s2npy"] = f"alpn={server.outcome.facts.alpn}"
    assert server.outcome.error is None, server.outcome.error
    assert server.outcome.facts.alpn == protocol
    assert seen in result.output, result.output
    if protocol == "http/1.1":  # (our server answers HTTP/1.1 only: curl cannot read it as h2)
        assert result.ok, result.output


@pytest.mark.parametrize("server_protocols", ["h2,http/1.1", "http/1.1"])
@pytest.mark.parametrize("peer", list(PEER_SERVERS))
def test_alpn_s2npy_client(peer, server_protocols, client_config, pki_files, matrix):
    """An s2npy client offering h2 and http/1.1 gets the peer server's choice."""
    expected = server_protocols.split(",")[0]  # both servers prefer their own order
    cell = matrix(SECTION_ALPN, f"both agree on {expected}", f"the server supports {server_protocols}",
                  s2npy="client", peer=peer, protocol=server_protocols)
    protocols = server_protocols.split(",")
    option = ("-alpn", server_protocols) if peer == "openssl" else [arg for p in protocols for arg in ("--alpn", p)]
    with PEER_SERVERS[peer](pki_files, extra=option) as server:
        outcome = s2npy_client(client_config(alpn=["h2", "http/1.1"]), server.port)
    cell.observed["s2npy"] = describe(outcome.error, ok=f"alpn={outcome.facts and outcome.facts.alpn}")
    assert outcome.error is None, outcome.error
    assert outcome.facts.alpn == expected


NAME_REFUSED = Failure(s2npy.AlertError, "S2N_ERR_ALERT", "alert_received",
                       "the client checks the name and refuses the default certificate", alert="bad_certificate")


@pytest.mark.parametrize("name", ["alpha.test", "beta.test", "other.test"])
@pytest.mark.parametrize("peer", ["openssl", "gnutls", "python-ssl"])
def test_sni_selects_certificate(peer, name, sni_pkis, matrix):
    """One s2npy Config with chains for alpha.test and beta.test serves the one the client names.

    s2n picks the chain whose names match the SNI; for a name no chain covers
    it serves the first chain added (the default), which a client that
    checks names then refuses.
    """
    pkis, files = sni_pkis
    served = name if name in pkis else "alpha.test"
    refused = name not in pkis and peer != "openssl"  # s_client checks the chain, not the name
    cell = matrix("SNI: s2npy server with two certificates",
                  f"serves {served}" + (f", the client refuses the name; s2npy {NAME_REFUSED.summary()}"
                                        if refused else ""),
                  "s2n matches SNI to the certificate names, else uses the first chain (default)",
                  peer=peer, sni=name)
    config = s2npy.Config(certificates=[(pkis[n].server.cert, pkis[n].server.key) for n in pkis],
                          system_trust=False)
    with S2nServer(config) as server:
        result = PEER_CLIENTS[peer](server.port, files[served], version="1.3", server_name=name)
    facts = server.outcome.facts
    cell.observed["peer saw"] = result.summary()
    cell.observed["s2npy"] = describe(server.outcome.error, ok=f"server_name={facts and facts.server_name}")
    assert result.ok is not refused, result.output
    if refused:
        NAME_REFUSED.check(server.outcome.error)
    else:
        assert server.outcome.error is None, server.outcome.error
        assert facts.server_name == name
    if peer == "openssl":
        assert f"subject=O = s2npy test PKI, CN = {served}" in result.output, result.output


@pytest.fixture(scope="session")
def dual_key_files(pki, rsa_pki, tmp_path_factory):
    """A CA file trusting both the ECDSA and the RSA test CA, for a server holding both chains."""
    path = tmp_path_factory.mktemp("dual") / "ca.pem"
    path.write_bytes(pki.ca.cert + rsa_pki.ca.cert)
    return {"ca": path}


SIGALGS = {"ecdsa": "ECDSA+SHA256", "rsa": "rsa_pss_rsae_sha256:RSA+SHA256"}


@pytest.mark.parametrize("version", ["1.2", "1.3"])
@pytest.mark.parametrize("key", list(SIGALGS))
def test_server_picks_rsa_or_ecdsa(key, version, pki, rsa_pki, dual_key_files, matrix):
    """An s2npy server holding an RSA and an ECDSA chain serves the one the client can verify."""
    cell = matrix("RSA and ECDSA certificates", f"{key} certificate served",
                  "s2n picks the chain matching the client's signature algorithms",
                  s2npy="server (RSA + ECDSA chains)", peer="openssl", key=key, tls=version)
    config = s2npy.Config(certificates=[(pki.server.cert, pki.server.key), (rsa_pki.server.cert, rsa_pki.server.key)],
                          system_trust=False)
    with S2nServer(config) as server:
        result = openssl_client(server.port, dual_key_files, version=version, extra=("-sigalgs", SIGALGS[key]))
    cell.observed["s2npy"] = describe(server.outcome.error, ok=f"signature {server.outcome.facts.signature_scheme}"
                                      if server.outcome.facts else "ok")
    assert server.outcome.error is None, server.outcome.error
    assert result.ok, result.output
    assert key in server.outcome.facts.signature_scheme.lower(), server.outcome.facts
    assert f"Peer signature type: {'ECDSA' if key == 'ecdsa' else 'RSA'}" in result.output, result.output


@pytest.mark.parametrize("key", ["ecdsa", "rsa"])
@pytest.mark.parametrize("peer", list(PEER_SERVERS))
def test_client_verifies_rsa_or_ecdsa(peer, key, pki_files, rsa_pki_files, matrix):
    """An s2npy client verifies an RSA or an ECDSA server certificate from a peer server."""
    files = {"ecdsa": pki_files, "rsa": rsa_pki_files}[key]
    cell = matrix("RSA and ECDSA certificates", f"{key} certificate verified", "s2n clients verify either key type",
                  s2npy="client", peer=peer, key=key, tls="default")
    config = s2npy.Config(trust=files["ca"], system_trust=False)
    with PEER_SERVERS[peer](files) as server:
        outcome = s2npy_client(config, server.port)
    cell.observed["s2npy"] = describe(outcome.error, ok=f"signature {outcome.facts and outcome.facts.signature_scheme}")
    assert outcome.error is None, outcome.error
    assert key in outcome.facts.signature_scheme.lower(), outcome.facts


SECTION_RESUME = "Session resumption with tickets"


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_resumption_s2npy_client(version, client_config, pki_files, matrix):
    """An s2npy client resumes with the ticket openssl s_server gave it on the first connection."""
    cell = matrix(SECTION_RESUME, "second connection resumed", "TLS 1.3 tickets arrive after the handshake: "
                  "the first connection reads its response before saving the session",
                  s2npy="client", peer="openssl", tls=version)
    config = client_config(session_tickets=True)
    with openssl_server(pki_files, version=version) as server:
        first = s2npy_client(config, server.port)
        assert first.error is None and first.session, first.error
        second = s2npy_client(config, server.port, session=first.session)
    cell.observed["s2npy"] = describe(second.error, ok=f"resumed={second.facts and second.facts.session_resumed}")
    assert second.error is None, second.error
    assert not first.facts.session_resumed
    assert second.facts.session_resumed


@pytest.mark.parametrize("version", ["1.2", "1.3"])
def test_resumption_s2npy_server(version, server_config, pki_files, tmp_path, matrix):
    """openssl s_client resumes with the ticket an s2npy server issued (-sess_out, then -sess_in)."""
    cell = matrix(SECTION_RESUME, "second connection resumed", "the server encrypts tickets with its ticket key",
                  s2npy="server", peer="openssl", tls=version)
    session_file = str(tmp_path / "session.pem")
    with S2nServer(server_config(session_tickets=True), connections=2) as server:
        first = openssl_client(server.port, pki_files, version=version, extra=("-sess_out", session_file))
        second = openssl_client(server.port, pki_files, version=version, extra=("-sess_in", session_file))
    resumed = [outcome.facts.session_resumed for outcome in server.outcomes]
    cell.observed["s2npy"] = f"resumed={resumed}"
    assert first.ok and second.ok, second.output
    assert resumed == [False, True]
    assert "Reused" in second.output, second.output
