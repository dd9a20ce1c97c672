"""In-memory handshakes: negotiated facts, client auth outcomes, failures and their exceptions."""

from __future__ import annotations

import pytest
from cryptography import x509

import s2npy
from s2npy import Behaviour


def test_tls13_facts_on_both_sides(server_config, client_config):
    result = s2npy.handshake(server_config(alpn=["h2", "http/1.1"]), client_config(alpn=["http/1.1"]),
                             server_name="localhost")
    assert result.ok, result.error
    for facts in (result.server.facts, result.client.facts):
        assert facts.protocol == "TLSv1.3"
        assert facts.cipher == "TLS_AES_128_GCM_SHA256" and facts.cipher_iana == 0x1301
        assert facts.alpn == "http/1.1"
        assert facts.server_name == "localhost"
        assert facts.group
        assert facts.last_message == "APPLICATION_DATA"
        assert not facts.client_cert_sent
    assert result.server.facts.wire_bytes_in == result.client.facts.wire_bytes_out
    leaf = result.client.facts.peer_cert_chain[0]
    assert isinstance(leaf, x509.Certificate)
    assert leaf.subject.rfc4514_string().startswith("CN=localhost")


def test_tls12_policy(server_config, client_config):
    result = s2npy.handshake(server_config(policy="ELBSecurityPolicy-TLS-1-2-2017-01"), client_config(), server_name="localhost")
    assert result.ok, result.error
    assert result.client.facts.protocol == "TLSv1.2"
    assert result.client.facts.cipher.startswith("ECDHE-ECDSA")


def test_optional_without_client_cert_sends_empty_certificate(server_config, client_config):
    result = s2npy.handshake(server_config(cert_auth="optional"), client_config(), server_name="localhost")
    assert result.ok, result.error
    facts = result.server.facts
    assert "CLIENT_AUTH" in facts.handshake_type and "NO_CLIENT_CERT" in facts.handshake_type
    assert facts.client_cert_chain == []


def test_optional_with_client_cert(server_config, client_config, pki):
    result = s2npy.handshake(server_config(cert_auth="optional"), client_config(with_cert=True),
                             server_name="localhost")
    assert result.ok, result.error
    facts = result.server.facts
    assert facts.client_cert_sent
    assert facts.client_cert_chain[0] == pki.client.certificate()


def test_required_without_client_cert_fails(server_config, client_config):
    result = s2npy.handshake(server_config(cert_auth="required"), client_config(), server_name="localhost")
    assert not result.ok
    error = result.server.error
    assert isinstance(error, s2npy.S2NError)
    assert error.mode == "server"
    assert "CLIENT_AUTH" in error.handshake_type


def test_untrusted_client_cert_fails_even_when_optional(server_config, pki):
    client = s2npy.Config(certificates=[(pki.untrusted_client.cert, pki.untrusted_client.key)],
                          trust=pki.ca.cert, system_trust=False)
    result = s2npy.handshake(server_config(cert_auth="optional"), client, server_name="localhost")
    assert isinstance(result.server.error, s2npy.ProtocolError)
    assert result.server.error.name == "S2N_ERR_CERT_UNTRUSTED"


def test_untrusted_server_fails_on_client(server_config):
    client = s2npy.Config(system_trust=False)
    result = s2npy.handshake(server_config(), client, server_name="localhost")
    error = result.client.error
    assert isinstance(error, s2npy.ProtocolError) and error.name == "S2N_ERR_CERT_UNTRUSTED"
    assert isinstance(error, OSError)


def test_hostname_mismatch_fails(server_config, client_config):
    result = s2npy.handshake(server_config(), client_config(), server_name="wrong.example")
    assert isinstance(result.client.error, s2npy.ProtocolError)
    assert result.client.error.name == "S2N_ERR_CERT_INVALID_HOSTNAME"


def test_client_without_server_name_does_not_trust_by_default(server_config, client_config):
    result = s2npy.handshake(server_config(), client_config())
    assert isinstance(result.client.error, s2npy.ProtocolError)


def test_verification_disabled_explicitly(server_config):
    client = s2npy.Config(system_trust=False, verify_peer=False)
    result = s2npy.handshake(server_config(), client)
    assert result.ok, result.error


def test_expired_server_certificate(pki, client_config):
    server = s2npy.Config(certificates=[(pki.expired_server.cert, pki.expired_server.key)])
    result = s2npy.handshake(server, client_config(), server_name="localhost")
    assert result.client.error.name == "S2N_ERR_CERT_EXPIRED"


def test_verify_host_callback_decides(server_config, client_config):
    seen = []
    client = client_config(verify_host=lambda name: seen.append(name) or name == "127.0.0.1")
    result = s2npy.handshake(server_config(), client, server_name="anything")
    assert result.ok, result.error
    assert "127.0.0.1" in seen


def test_alpn_mismatch_negotiates_no_protocol(server_config, client_config):
    """s2n (like OpenSSL's default) completes the handshake without ALPN when nothing overlaps."""
    result = s2npy.handshake(server_config(alpn=["h2"]), client_config(alpn=["http/1.1"]),
                             server_name="localhost")
    assert result.ok, result.error
    assert result.client.facts.alpn is None and result.server.facts.alpn is None


def test_peer_closing_mid_handshake_is_closed_error(server_config, client_config):
    result = s2npy.handshake(server_config(cert_auth="optional"), client_config(), server_name="localhost",
                             client=Behaviour(abort_at="CLIENT_CERT"))
    error = result.server.error
    assert isinstance(error, s2npy.ClosedError)
    assert error.name == "S2N_ERR_CLOSED"
    assert result.client.aborted
    assert result.error is error
    assert str(error).startswith("handshake failed (server): peer closed the connection without an alert")
    assert "CertificateRequest" in str(error)
    assert error.blinding_delay >= 0


def test_peer_reset_is_io_error(server_config, client_config):
    result = s2npy.handshake(server_config(), client_config(), server_name="localhost",
                             client=Behaviour(abort_at="CLIENT_FINISHED", reset=True))
    error = result.server.error
    assert isinstance(error, s2npy.S2NIOError)
    assert error.errno is not None
    assert isinstance(error.__cause__, ConnectionResetError)


def test_raw_http_peer(server_config):
    result = s2npy.handshake(server_config(), None, client=Behaviour(raw=b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
    assert isinstance(result.server.error, s2npy.S2NError)
    assert not result.ok


def test_session_resumption_with_tickets(server_config, client_config):
    server = server_config(session_tickets=True)
    client = client_config(session_tickets=True)
    first = s2npy.handshake(server, client, server_name="localhost")
    assert first.ok, first.error
    assert first.client.session and not first.client.facts.session_resumed
    second = s2npy.handshake(server, client, server_name="localhost", client_session=first.client.session)
    assert second.ok, second.error
    assert second.client.facts.session_resumed and second.server.facts.session_resumed


def test_session_resumes_from_any_bytes_like_object(server_config, client_config):
    """Connection(session=...) sets the session in its create call; a bytearray or memoryview works as bytes do."""
    server, client = server_config(session_tickets=True), client_config(session_tickets=True)
    session = s2npy.handshake(server, client, server_name="localhost").client.session
    for copy in (bytearray(session), memoryview(session)):
        result = s2npy.handshake(server, client, server_name="localhost", client_session=copy)
        assert result.ok, result.error
        assert result.client.facts.session_resumed


@pytest.mark.parametrize("session, message", [
    (b"not a session", "serialized session state is not in valid format"),
    ("a str", "session must be bytes, not str"),
    (b"", "the session is empty"),
])
def test_bad_session_is_refused_by_the_constructor_which_frees_what_it_made(client_config, session, message):
    """A refused session fails Connection() with what to try; the config no longer counts the connection."""
    config = client_config(session_tickets=True)
    with pytest.raises(s2npy.UsageError) as caught:
        s2npy.Connection(config, "client", server_name="localhost", session=session)
    assert caught.value.operation == "setting session for resumption"
    assert message in str(caught.value)
    assert "Connection.session of a compatible config" in str(caught.value)
    config.close()  # refused while any connection still counted as its user


def test_simulated_abort_is_diagnosed_as_such(server_config, client_config):
    result = s2npy.handshake(server_config(cert_auth="optional"), client_config(), server_name="localhost",
                             client=Behaviour(abort_at="CLIENT_CERT"))
    assert result.client.aborted
    assert result.client.error.diagnosis.cause == "simulated_abort"
    assert "this client closed without an alert at CLIENT_CERT" in str(result.client.error)
    assert result.server.error.diagnosis.cause == "closed_after_certificate_request"
