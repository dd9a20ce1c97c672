"""TLS 1.3 handshake records decrypted with the key log, on real handshakes.

s2npy pairs in memory (``Config(key_log=True)``), an s2npy server against Python
``ssl`` and ``openssl s_client`` on loopback, and Python ``ssl`` pairs with their
key log file: the decrypted messages and alerts appear in order, flagged
``decrypted``; nothing is decrypted without a key log or in TLS 1.2; a damaged
record stays encrypted with a note; JSON lines never carry the secrets.
"""

from __future__ import annotations

import json
import socket
import ssl
import subprocess
from collections.abc import Callable

import s2npy
from loopback import accepted_peer
from s2npy.trace.decrypt import Tls13Decryptor
from s2npy.trace.recorder import ConnectionTrace
from s2npy.trace.wire import Alert, HandshakeMessage, Record, WireEvent, WireSession

SERVER_FLIGHT = ["encrypted_extensions", "certificate_request", "certificate", "certificate_verify", "finished"]


def decrypted(events: list[WireEvent], direction: str) -> list[HandshakeMessage | Alert]:
    """The decrypted messages and alerts of ``direction``, checking each follows its encrypted record."""
    found = []
    for previous, event in zip(events, events[1:]):
        if isinstance(event, (HandshakeMessage, Alert)) and event.decrypted and event.direction == direction:
            assert isinstance(previous, Record) and previous.encrypted or getattr(previous, "decrypted", False)
            found.append(event)
    return found


def names(events: list[WireEvent], direction: str) -> list[str]:
    """Names of ``direction``'s decrypted messages (``alert:<description>`` for alerts)."""
    return [event.name if isinstance(event, HandshakeMessage) else f"alert:{event.description_name}"
            for event in decrypted(events, direction)]


def in_memory(server_config, client_config, **options) -> s2npy.HandshakeResult:
    """A traced in-memory handshake of two configs that log keys."""
    return s2npy.handshake(server_config(key_log=True, **options.pop("server", {})),
                           client_config(key_log=True, **options.pop("client", {})),
                           server_name="localhost", trace=True)


def serve(config: s2npy.Config, client: Callable[[int], object]) -> ConnectionTrace:
    """Run ``client(port)`` against one traced s2npy server connection on loopback; return the trace."""
    with accepted_peer(client) as sock:
        connection = s2npy.Connection(config, "server", io=sock, trace=True)
        try:
            connection.negotiate()
            connection.shutdown()
        except s2npy.S2NError:
            pass
    return connection.trace


def python_client(context: ssl.SSLContext) -> Callable[[int], object]:
    """A Python ``ssl`` client that handshakes, then closes (its failure, if any, is the test's subject)."""
    def run(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            try:
                context.wrap_socket(sock, server_hostname="localhost").close()
            except (ssl.SSLError, OSError):
                pass
    return run


def python_capture_events(capture) -> list[WireEvent]:
    """A Python ``ssl`` pair's streams parsed with its client's key log."""
    session = WireSession(Tls13Decryptor(capture.keylog.read_text().splitlines()))
    for t, direction, data in capture.chunks:
        session.feed(direction, data, t)
    return session.transcript()


# --- s2npy pairs in memory ----------------------------------------------------------------------


def test_cert_auth_optional_shows_the_certificate_request_and_the_empty_certificate(server_config, client_config):
    result = in_memory(server_config, client_config, server={"cert_auth": "optional"})
    assert result.ok, result.error
    server, client = result.server.trace.wire_events(), result.client.trace.wire_events()
    assert names(server, "s2c") == names(client, "s2c") == SERVER_FLIGHT
    request = decrypted(server, "s2c")[1].details
    assert "ecdsa_secp256r1_sha256" in request["signature_algorithms"] and request["context_length"] == 0
    assert decrypted(server, "s2c")[2].details["subject"] == "CN=localhost,O=s2npy test PKI"
    assert decrypted(server, "s2c")[3].details["signature_scheme"] == "ecdsa_secp256r1_sha256"
    assert names(client, "c2s") == ["certificate", "finished"]
    assert decrypted(client, "c2s")[0].details == {"certificate_count": 0, "empty": True}
    ladder = s2npy.trace.render_pair(result.server.trace, result.client.trace)
    assert "C <------ S  [decrypted] CertificateRequest" in ladder
    assert "C ------> S  [decrypted] Certificate 4 B EMPTY (no certificate)" in ladder


def test_client_certificate_and_its_verify(server_config, client_config):
    result = in_memory(server_config, client_config, server={"cert_auth": "required"},
                       client={"with_cert": True})
    assert result.ok, result.error
    client = decrypted(result.client.trace.wire_events(), "c2s")
    assert [message.name for message in client] == ["certificate", "certificate_verify", "finished"]
    assert client[0].details["subject"] == "CN=s2npy test client,O=s2npy test PKI"
    assert client[1].details["signature_scheme"] == "ecdsa_secp256r1_sha256"


def test_required_without_certificate_s2n_server_closes_with_encrypted_close_notify(server_config,
                                                                                     client_config):
    """s2n sends no certificate_required: after its Finished it closes with close_notify (application keys)."""
    result = in_memory(server_config, client_config, server={"cert_auth": "required"})
    assert result.server.error.name == "S2N_ERR_MISSING_CLIENT_CERT"
    server = result.server.trace.wire_events()
    assert names(server, "c2s") == ["certificate"] and decrypted(server, "c2s")[0].details["empty"]  # then it stops
    assert names(server, "s2c") == SERVER_FLIGHT + ["alert:close_notify"]


def test_aes_256_gcm(server_config, client_config):
    result = in_memory(server_config, client_config, server={"policy": "20190801", "cert_auth": "optional"})
    assert result.server.facts.cipher == "TLS_AES_256_GCM_SHA384"
    events = result.server.trace.wire_events()
    assert names(events, "s2c") == SERVER_FLIGHT and names(events, "c2s") == ["certificate", "finished"]


def test_no_key_log_no_decryption(server_config, client_config):
    result = s2npy.handshake(server_config(cert_auth="optional"), client_config(), server_name="localhost",
                             trace=True)
    events = result.server.trace.wire_events()
    assert not [event for event in events if getattr(event, "decrypted", False)]
    assert all(event.note is None for event in events if isinstance(event, Record))
    assert "[decrypted]" not in result.server.trace.render_text()


def test_tls12_is_left_as_it_was(server_config, client_config):
    result = in_memory(server_config, client_config, client={"policy": "test_all_tls12"})
    assert result.server.facts.protocol == "TLSv1.2"
    events = result.server.trace.wire_events()
    assert not [event for event in events if getattr(event, "decrypted", False)]
    assert all(event.note is None for event in events if isinstance(event, Record))


def test_damaged_record_stays_encrypted_with_a_note(server_config, client_config):
    result = in_memory(server_config, client_config, server={"cert_auth": "optional"})
    trace = result.server.trace
    stream = b"".join(data for _, direction, data in trace.chunks if direction == "s2c")
    ends, start = [], 0
    while start < len(stream):
        start += 5 + int.from_bytes(stream[start + 3 : start + 5], "big")
        ends.append(start)
    # Flip the last bit of the CertificateRequest's record (the second encrypted one): its tag.
    end = [end for begin, end in zip([0, *ends], ends) if stream[begin] == 23][1]
    damaged = stream[: end - 1] + bytes([stream[end - 1] ^ 1]) + stream[end:]
    first_sent = next(t for t, direction, _ in trace.chunks if direction == "s2c")
    trace.chunks = sorted([chunk for chunk in trace.chunks if chunk[1] == "c2s"] + [(first_sent, "s2c", damaged)],
                          key=lambda chunk: chunk[0])
    events = trace.wire_events()
    record = [event for event in events if isinstance(event, Record) and event.encrypted
              and event.direction == "s2c"][1]
    assert record.note and "did not decrypt" in record.note
    assert names(events, "s2c") == ["encrypted_extensions", "certificate", "certificate_verify", "finished"]
    assert "(not decrypted: did not decrypt" in trace.render_text()


def test_json_lines_carry_the_decrypted_messages_but_never_the_secrets(server_config, client_config):
    result = in_memory(server_config, client_config, server={"cert_auth": "optional"})
    trace = result.server.trace
    jsonl = trace.to_jsonl()
    objects = [json.loads(line) for line in jsonl.splitlines()]
    assert all(item["schema"] == 2 for item in objects)
    request = next(item for item in objects if item["kind"] == "handshake" and item["name"] == "certificate_request")
    assert request["decrypted"] is True and request["direction"] == "s2c"
    assert "ecdsa_secp256r1_sha256" in request["details"]["signature_algorithms"]
    secrets = [line.split()[2] for line in trace.keylog_lines]
    assert len(secrets) == 5 and not [secret for secret in secrets if secret.lower() in jsonl.lower()]


# --- s2npy server against Python ssl and openssl s_client ---------------------------------------


def test_python_client_with_certificate_and_alpn(server_config, pki, pki_files):
    context = ssl.create_default_context(cadata=pki.ca.cert.decode())
    context.load_cert_chain(pki_files["client"], pki_files["client_key"])
    context.set_alpn_protocols(["h2", "http/1.1"])
    trace = serve(server_config(key_log=True, cert_auth="optional", alpn=["http/1.1"]), python_client(context))
    events = trace.wire_events()
    assert names(events, "s2c") == SERVER_FLIGHT + ["alert:close_notify"]  # serve() shuts down at once
    assert decrypted(events, "s2c")[0].details["alpn"] == "http/1.1"
    assert names(events, "c2s") == ["certificate", "certificate_verify", "finished"]
    assert decrypted(events, "c2s")[0].details["subject"] == "CN=s2npy test client,O=s2npy test PKI"


def test_python_client_that_distrusts_the_server_alerts_before_encrypting(server_config, pki):
    """OpenSSL rejects the server's certificate before it switches to its handshake keys: a plaintext alert."""
    context = ssl.create_default_context(cadata=pki.other_ca.cert.decode())
    trace = serve(server_config(key_log=True), python_client(context))
    events = trace.wire_events()
    flight, sent = [name for name in SERVER_FLIGHT if name != "certificate_request"], names(events, "s2c")
    # The flight goes out record by record: a client that rejects the certificate can close before
    # the last ones are written (on a loaded machine), and those failed writes are not on the wire.
    assert sent[:2] == ["encrypted_extensions", "certificate"] and sent == flight[:len(sent)]
    alerts = [event for event in events if isinstance(event, Alert)]
    assert [(alert.description_name, alert.decrypted) for alert in alerts] == [("unknown_ca", False)]


def test_chacha20_from_openssl_s_client(server_config):
    def run(port: int) -> None:
        subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-tls1_3",
                        "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256"],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=20)

    trace = serve(server_config(key_log=True, cert_auth="optional"), run)
    events = trace.wire_events()
    assert trace.facts.cipher == "TLS_CHACHA20_POLY1305_SHA256"
    assert names(events, "s2c") == SERVER_FLIGHT + ["alert:close_notify"]
    assert names(events, "c2s")[:2] == ["certificate", "finished"]  # then s_client's close_notify, if in time


# --- Python ssl pairs with their key log file ---------------------------------------------------


def test_python_pair_decrypts_with_the_tls13_forms(connect):
    capture = connect(ssl.TLSVersion.TLSv1_3, request_client_cert=ssl.CERT_OPTIONAL)
    events = python_capture_events(capture)
    server = decrypted(events, "s2c")
    assert [message.name for message in server] == SERVER_FLIGHT
    assert server[1].details["context_length"] == 0 and "ecdsa_secp256r1_sha256" in server[1].details[
        "signature_algorithms"]
    assert server[2].details["subject"] == "CN=localhost,O=s2npy test PKI"
    assert [(message.name, message.details) for message in decrypted(events, "c2s")] == [
        ("certificate", {"certificate_count": 0, "empty": True}), ("finished", {})]


def test_python_server_requiring_a_certificate_sends_certificate_required(connect):
    """OpenSSL's server alert comes after its Finished, under its application keys: still decrypted."""
    capture = connect(ssl.TLSVersion.TLSv1_3, request_client_cert=ssl.CERT_REQUIRED)
    assert names(python_capture_events(capture), "s2c") == SERVER_FLIGHT + ["alert:certificate_required"]


def test_hello_retry_request_then_the_second_server_hello_chooses(connect):
    capture = connect(ssl.TLSVersion.TLSv1_3, server_curve="prime256v1", request_client_cert=ssl.CERT_OPTIONAL)
    events = python_capture_events(capture)
    hellos = [event.name for event in events if isinstance(event, HandshakeMessage) and not event.decrypted]
    assert hellos == ["client_hello", "hello_retry_request", "client_hello", "server_hello"]
    assert names(events, "s2c") == SERVER_FLIGHT and names(events, "c2s") == ["certificate", "finished"]
