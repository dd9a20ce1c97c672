"""``peer_cert_chain`` is read lazily, yet survives ``Connection.close()`` and serialises."""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import socket
import threading

import pytest

from cryptography.hazmat.primitives import serialization

import s2npy
from s2npy.facts import PeerCertChain


@contextlib.contextmanager
def socket_handshake(server_config: s2npy.Config, client_config: s2npy.Config, server_name: str = "localhost"):
    """(client, client facts) after a handshake over a socketpair; both ends closed on exit."""
    server_sock, client_sock = socket.socketpair()
    with server_sock, client_sock:
        server = s2npy.Connection(server_config, "server", io=server_sock)
        thread = threading.Thread(target=server.negotiate)
        thread.start()
        client = s2npy.Connection(client_config, "client", io=client_sock, server_name=server_name)
        facts = client.negotiate()
        thread.join()
        try:
            yield client, facts
        finally:
            client.close()
            server.close()


def test_chain_read_after_close_over_a_socket(server_config, client_config):
    with socket_handshake(server_config(), client_config()) as (_, facts):
        pass
    assert isinstance(facts.peer_cert_chain, PeerCertChain)
    assert facts.peer_cert_chain[0].subject.rfc4514_string().startswith("CN=localhost")
    assert facts.to_dict()["peer_cert_chain"][0].startswith("CN=localhost")
    assert facts.peer_cert_chain == list(facts.peer_cert_chain)


def test_chain_loads_once_and_parses_only_when_used(pki):
    from cryptography import x509

    der = x509.load_pem_x509_certificate(pki.server.cert).public_bytes(serialization.Encoding.DER)
    calls = []
    chain = PeerCertChain(lambda: calls.append(1) or [der])
    chain.capture()  # what close() does: copy the DER out of s2n, no parsing yet
    assert chain.loaded and calls == [1] and chain._certs is None
    assert len(chain) == 1 and chain[0].public_bytes(serialization.Encoding.DER) == der
    assert list(chain) == [chain[0]] and calls == [1]


def test_negotiate_facts_have_every_field_and_long_names(server_config, client_config):
    """negotiate()'s facts come packed from C: every field set, 255-byte names and ALPN intact."""
    name = ".".join(["a" * 63, "b" * 63, "c" * 63, "d" * 61])  # 253 bytes, the DNS maximum
    protocol = "p" * 255  # the ALPN maximum
    client = client_config(alpn=[protocol], verify_host=lambda host: host == "localhost")
    with socket_handshake(server_config(alpn=[protocol]), client, server_name=name) as (connection, facts):
        later = connection.facts()
    # negotiate()'s facts are decoded from their C snapshot on first read: here, after close
    values = {field.name: getattr(facts, field.name) for field in dataclasses.fields(facts)}
    assert set(vars(facts)) == set(values)  # every field decoded at once, the snapshot dropped
    assert facts.server_name == name and facts.alpn == protocol
    assert facts.cipher and facts.group and facts.signature_scheme and facts.handshake_type
    assert facts.last_message == "APPLICATION_DATA" and facts.protocol == "TLSv1.3"
    assert facts == later and copy.copy(later) == later
    with pytest.raises(AttributeError, match="no attribute 'missing'"):
        facts.missing


def test_no_field_has_a_class_default():
    """A class attribute would answer before __getattr__ and hide a lazily decoded field's value."""
    shadowed = [field.name for field in dataclasses.fields(s2npy.NegotiatedFacts)
                if field.name in vars(s2npy.NegotiatedFacts)]
    assert shadowed == []


def test_chain_larger_than_the_first_buffer(server_config, client_config, monkeypatch):
    """The C copy reports the room it needs; a second call with that much gets every certificate."""
    import s2npy.facts

    full = handshake_chain(server_config, client_config)
    monkeypatch.setattr(s2npy.facts, "_CHAIN_BUFFER", 64)  # smaller than one certificate
    assert [cert.subject for cert in handshake_chain(server_config, client_config)] == \
        [cert.subject for cert in full] and len(full) == 2


def handshake_chain(server_config, client_config) -> list:
    """The client's view of the server chain after a handshake over a socketpair."""
    with socket_handshake(server_config(), client_config()) as (_, facts):
        return list(facts.peer_cert_chain)


def test_a_traced_handshake_copies_the_chain_when_it_completes(server_config, client_config):
    """A trace keeps its facts: their chain is this handshake's, copied before negotiate() returns."""
    server_sock, client_sock = socket.socketpair()
    with server_sock, client_sock:
        server = s2npy.Connection(server_config(), "server", io=server_sock, trace=True)
        thread = threading.Thread(target=server.negotiate)
        thread.start()
        client = s2npy.Connection(client_config(), "client", io=client_sock, server_name="localhost", trace=True)
        facts = client.negotiate()
        thread.join()
        chain = vars(facts)["_chain"]  # the facts' view, still undecoded
        assert chain.loaded and chain._certs is None  # copied out of s2n, not parsed
        assert client.trace.facts is facts and server.trace.facts.client_cert_chain == []
        client.close()
        server.close()
    assert facts.peer_cert_chain[0].subject.rfc4514_string().startswith("CN=localhost")
