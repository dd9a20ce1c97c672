"""Each diagnosis rule, produced by a real failure: an in-memory s2n pair or a real peer on loopback."""

from __future__ import annotations

import socket
import ssl
import subprocess
from collections.abc import Callable

import pytest

import s2npy
from loopback import accepted_peer
from s2npy import Behaviour
from s2npy.trace import Diagnosis, diagnose


def failed(result, side: str) -> s2npy.S2NError:
    """The exception of ``side`` ("server"/"client") of an in-memory handshake, which must have failed."""
    error = getattr(result, side).error
    assert isinstance(error, s2npy.S2NError), f"{side} did not fail: {result}"
    assert isinstance(error.diagnosis, Diagnosis)
    return error


def serve_once(config: s2npy.Config, client: Callable[[int], object]) -> s2npy.S2NError:
    """Run ``client(port)`` against one traced s2n server connection on loopback; return its error."""
    with accepted_peer(client) as sock, pytest.raises(s2npy.S2NError) as caught:
        s2npy.Connection(config, "server", io=sock, trace=True).negotiate()
    return caught.value


def openssl_client(*args: str) -> Callable[[int], object]:
    """``openssl s_client`` with extra ``args`` (it exits at once: stdin is empty)."""
    def run(port: int) -> None:
        subprocess.run(["openssl", "s_client", "-connect", f"127.0.0.1:{port}", *args],
                       stdin=subprocess.DEVNULL, capture_output=True, timeout=20)
    return run


def python_client(context: ssl.SSLContext) -> Callable[[int], object]:
    """A Python ``ssl`` client whose handshake is expected to fail (it then sends its alert)."""
    def run(port: int) -> None:
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            with pytest.raises(ssl.SSLError):
                context.wrap_socket(sock, server_hostname="localhost")
    return run


# --- the founding case ------------------------------------------------------------------------------


@pytest.mark.parametrize("traced", [True, False])
def test_closed_after_certificate_request(server_config, client_config, traced):
    result = s2npy.handshake(server_config(cert_auth="optional"), client_config(), server_name="localhost",
                             client=Behaviour(abort_at="CLIENT_CERT"), trace=traced)
    error = failed(result, "server")
    diagnosis = error.diagnosis
    assert diagnosis.cause == "closed_after_certificate_request"
    assert (diagnosis.side, diagnosis.step) == ("server", "CLIENT_CERT")
    assert "cert auth 'none'" in diagnosis.next_step and "client hello callback" in diagnosis.next_step
    assert diagnosis.headline in str(error)
    assert (error.trace is not None) == traced


def test_closed_after_certificate_request_names_messages_from_checkpoints(server_config, client_config):
    result = s2npy.handshake(server_config(cert_auth="optional", events=True), client_config(),
                             server_name="localhost", client=Behaviour(abort_at="CLIENT_CERT"), trace=True)
    diagnosis = failed(result, "server").diagnosis
    assert diagnosis.last_sent == "encrypted record (SERVER_FINISHED)"
    assert diagnosis.last_received == "ChangeCipherSpec"
    assert "SERVER_FINISHED" in str(diagnosis)


def test_peer_closed_without_alert(server_config, client_config):
    result = s2npy.handshake(server_config(), client_config(), server_name="localhost",
                             server=Behaviour(abort_at="SERVER_CERT"), trace=True)
    diagnosis = failed(result, "client").diagnosis
    assert diagnosis.cause == "peer_closed"
    assert diagnosis.side == "client" and "server closed" in diagnosis.headline
    assert diagnosis.last_sent == "ClientHello"


# --- alerts -----------------------------------------------------------------------------------------


def test_alert_received_says_what_it_means(server_config):
    error = serve_once(server_config(), openssl_client("-tls1_3", "-sigalgs", "rsa_pss_rsae_sha256"))
    diagnosis = error.diagnosis
    assert isinstance(error, s2npy.AlertError)
    assert diagnosis.cause == "alert_received"
    assert "client sent alert handshake_failure (40)" in diagnosis.headline
    assert "no acceptable set of parameters" in diagnosis.headline
    assert diagnosis.last_received == "alert handshake_failure"


def test_alert_unknown_ca_from_python_client_means_untrusted(server_config, pki):
    context = ssl.create_default_context(cadata=pki.other_ca.cert.decode())
    error = serve_once(server_config(), python_client(context))
    assert error.diagnosis.cause == "certificate_untrusted"
    assert "client sent alert unknown_ca (48)" in error.diagnosis.headline


# --- nothing in common ------------------------------------------------------------------------------


def test_no_shared_version(server_config, client_config):
    result = s2npy.handshake(server_config(policy="CloudFront-TLS-1-3-2025"), client_config(policy="test_all_tls12"),
                             server_name="localhost", trace=True)
    server = failed(result, "server").diagnosis
    assert server.cause == "no_shared_version"
    assert "TLSv1.2" in server.explanation and "'CloudFront-TLS-1-3-2025'" in server.explanation
    client = failed(result, "client").diagnosis
    assert client.cause == "no_shared_version" and "protocol_version (70)" in client.headline


def test_no_shared_cipher(server_config, client_config):
    result = s2npy.handshake(server_config(policy="test_all_rsa_kex"), client_config(), server_name="localhost",
                             trace=True)
    diagnosis = failed(result, "server").diagnosis
    assert diagnosis.cause == "no_shared_cipher"
    assert "TLS_AES_128_GCM_SHA256" in diagnosis.explanation and "'test_all_rsa_kex'" in diagnosis.explanation


def test_no_shared_group(server_config):
    error = serve_once(server_config(), openssl_client("-tls1_3", "-groups", "ffdhe2048"))
    assert error.diagnosis.cause == "no_shared_group"
    assert "ffdhe2048" in error.diagnosis.explanation


def test_no_shared_signature_algorithm(server_config, client_config):
    result = s2npy.handshake(server_config(), client_config(policy="rfc9151"), server_name="localhost", trace=True)
    diagnosis = failed(result, "client").diagnosis
    assert diagnosis.cause == "no_shared_signature_algorithm"
    assert "'rfc9151'" in diagnosis.explanation


# --- certificates -----------------------------------------------------------------------------------


@pytest.mark.parametrize("case, cause", [("untrusted", "certificate_untrusted"),
                                         ("expired", "certificate_expired"),
                                         ("hostname", "hostname_mismatch")])
def test_server_certificate_problems(pki, server_config, client_config, case, cause):
    server = s2npy.Config(certificates=[(pki.expired_server.cert, pki.expired_server.key)], system_trust=False) \
        if case == "expired" else server_config()
    client = s2npy.Config(trust=pki.other_ca.cert, system_trust=False) if case == "untrusted" else client_config()
    name = "example.com" if case == "hostname" else "localhost"
    result = s2npy.handshake(server, client, server_name=name, trace=True)
    diagnosis = failed(result, "client").diagnosis
    assert (diagnosis.cause, diagnosis.side, diagnosis.step) == (cause, "client", "SERVER_CERT")
    assert diagnosis.headline.startswith("the server's certificate")
    if case == "hostname":
        assert "'example.com'" in diagnosis.headline


def test_client_sent_no_certificate_under_required(server_config, client_config):
    result = s2npy.handshake(server_config(cert_auth="required", policy="test_all_tls12"),
                             client_config(policy="test_all_tls12"), server_name="localhost", trace=True)
    diagnosis = failed(result, "server").diagnosis
    assert diagnosis.cause == "client_certificate_missing"
    assert diagnosis.last_received == "Certificate (empty)"


# --- transport-level failures -----------------------------------------------------------------------


def test_plaintext_http_to_tls_port(server_config):
    result = s2npy.handshake(server_config(), None, client=Behaviour(raw=b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"),
                             trace=True)
    diagnosis = failed(result, "server").diagnosis
    assert diagnosis.cause == "not_tls"
    assert "plaintext HTTP" in diagnosis.headline and "GET / HTTP/1.1" in diagnosis.explanation
    assert diagnosis.last_received == "non-TLS bytes (http)"


def test_malformed_client_hello(server_config):
    truncated_hello = b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00"
    result = s2npy.handshake(server_config(), None, client=Behaviour(raw=truncated_hello), trace=True)
    diagnosis = failed(result, "server").diagnosis
    assert diagnosis.cause == "malformed_message"
    assert "ClientHello of 1 B" in diagnosis.explanation


def test_peer_reset(server_config, client_config):
    result = s2npy.handshake(server_config(), client_config(), server_name="localhost",
                             client=Behaviour(abort_at="CLIENT_FINISHED", reset=True), trace=True)
    diagnosis = failed(result, "server").diagnosis
    assert diagnosis.cause == "peer_reset" and "client reset" in diagnosis.headline


def test_peer_silent_in_memory(server_config):
    result = s2npy.handshake(server_config(), None, client=Behaviour(raw=b"\x16\x03\x01\x00\x10", then="silent"),
                             trace=True)
    error = failed(result, "server")
    assert error.name == "S2NPY_STALLED"
    assert error.diagnosis.cause == "peer_silent" and error.trace is result.server.trace
    assert "waited at CLIENT_HELLO" in error.diagnosis.headline


def test_peer_silent_socket_timeout(client_config):
    with socket.create_server(("127.0.0.1", 0)) as listener:
        sock = socket.create_connection(listener.getsockname(), timeout=0.2)
        with sock, pytest.raises(s2npy.S2NIOError) as caught:
            s2npy.Connection(client_config(), "client", io=sock, server_name="localhost").negotiate()
    diagnosis = caught.value.diagnosis
    assert diagnosis.cause == "peer_silent"
    assert diagnosis.headline == "the server went silent (timeout) while the handshake waited at SERVER_HELLO"


def test_diagnose_is_callable_on_its_own(server_config, client_config):
    result = s2npy.handshake(server_config(cert_auth="optional"), client_config(), server_name="localhost",
                             client=Behaviour(abort_at="CLIENT_CERT"), trace=True)
    error = failed(result, "server")
    again = diagnose(error, result.server.trace)
    assert again == error.diagnosis
    assert again.to_dict()["cause"] == "closed_after_certificate_request"
