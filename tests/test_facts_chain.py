"""``peer_cert_chain`` is read lazily, yet survives ``Connection.close()`` and serialises."""

from __future__ import annotations

import socket
import threading

from cryptography.hazmat.primitives import serialization

import s2npy
from s2npy.facts import PeerCertChain


def test_chain_read_after_close_over_a_socket(server_config, client_config):
    server_sock, client_sock = socket.socketpair()
    server = s2npy.Connection(server_config(), "server", io=server_sock)
    thread = threading.Thread(target=server.negotiate)
    thread.start()
    client = s2npy.Connection(client_config(), "client", io=client_sock, server_name="localhost")
    facts = client.negotiate()
    thread.join()
    client.close()
    server.close()
    assert isinstance(facts.peer_cert_chain, PeerCertChain)
    assert facts.peer_cert_chain[0].subject.rfc4514_string().startswith("CN=localhost")
    assert facts.to_dict()["peer_cert_chain"][0].startswith("CN=localhost")
    assert facts.peer_cert_chain == list(facts.peer_cert_chain)
    server_sock.close()
    client_sock.close()


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
    server_sock, client_sock = socket.socketpair()
    server = s2npy.Connection(server_config(alpn=[protocol]), "server", io=server_sock)
    client = s2npy.Connection(client_config(alpn=[protocol], verify_host=lambda host: host == "localhost"), "client",
                              io=client_sock, server_name=name)
    thread = threading.Thread(target=server.negotiate)
    thread.start()
    facts = client.negotiate()
    thread.join()
    assert set(vars(facts)) == set(s2npy.NegotiatedFacts.__dataclass_fields__)
    assert facts.server_name == name and facts.alpn == protocol
    assert facts.cipher and facts.group and facts.signature_scheme and facts.handshake_type
    assert facts.last_message == "APPLICATION_DATA" and facts.protocol == "TLSv1.3"
    assert facts == client.facts()  # the same snapshot as the getter-by-getter read
    client.close(), server.close(), server_sock.close(), client_sock.close()
