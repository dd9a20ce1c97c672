"""Connection over real sockets and real peers: Python ssl, openssl s_server / s_client.

Also callbacks (client hello, verify host, key log, transport) raising: the
original exception must reach the caller, chained, and the handshake must fail.
"""

from __future__ import annotations

import gc
import socket
import ssl
import subprocess
import threading
import weakref

import pytest

import s2npy
from loopback import free_port
from s2npy import Behaviour, Blocked


def _python_ssl_server(pki_files, request_cert: bool = False) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki_files["server"], pki_files["server_key"])
    if request_cert:
        context.verify_mode = ssl.CERT_OPTIONAL
        context.load_verify_locations(pki_files["ca"])
    return context


def _run_in_thread(target, *args):
    outcome = {}

    def runner():
        try:
            outcome["value"] = target(*args)
        except BaseException as exc:  # noqa: BLE001 - reported to the test
            outcome["error"] = exc

    thread = threading.Thread(target=runner, daemon=True)
    thread.start()
    return thread, outcome


def test_s2npy_client_against_python_ssl_server(pki_files, client_config):
    server_sock, client_sock = socket.socketpair()
    context = _python_ssl_server(pki_files)

    def serve():
        with context.wrap_socket(server_sock, server_side=True) as tls:
            tls.sendall(tls.recv(100).upper())
            return tls.version()

    thread, outcome = _run_in_thread(serve)
    with s2npy.Connection(client_config(), "client", io=client_sock, server_name="localhost") as conn:
        facts = conn.negotiate()
        conn.sendall(b"hello s2n")
        assert conn.recv(100) == b"HELLO S2N"
    thread.join(10)
    assert outcome.get("value") == facts.protocol == "TLSv1.3"
    client_sock.close()


def test_s2npy_server_against_python_ssl_client_with_cert(pki_files, server_config, pki):
    server_sock, client_sock = socket.socketpair()
    context = ssl.create_default_context(cafile=str(pki_files["ca"]))
    context.load_cert_chain(pki_files["client"], pki_files["client_key"])

    def client():
        with context.wrap_socket(client_sock, server_hostname="localhost") as tls:
            tls.sendall(b"ping")
            return tls.recv(100)

    thread, outcome = _run_in_thread(client)
    with s2npy.Connection(server_config(cert_auth="required"), "server", io=server_sock) as conn:
        facts = conn.negotiate()
        assert conn.recv(100) == b"ping"
        conn.sendall(b"pong")
        assert facts.client_cert_chain[0] == pki.client.certificate()
    thread.join(10)
    assert outcome.get("value") == b"pong", outcome
    server_sock.close()


def test_constructor_overrides_apply_to_their_connection_only(pki_files, server_config):
    """cert_auth, policy, alpn and prefer given to Connection() (set in its one create call) govern
    that handshake with Python's ssl; the config's next connection, a reused wiped one, has none."""
    context = ssl.create_default_context(cafile=str(pki_files["ca"]))
    context.load_cert_chain(pki_files["client"], pki_files["client_key"])
    context.set_alpn_protocols(["h2", "http/1.1"])
    config = server_config()

    def ssl_client(sock):
        with context.wrap_socket(sock, server_hostname="localhost") as tls:
            tls.sendall(b"ping")
            return tls.version(), tls.selected_alpn_protocol()

    for overrides, expected, cert_sent in [
        ({"cert_auth": "required", "policy": "20240501", "alpn": ["h2"], "prefer": "throughput"}, ("TLSv1.2", "h2"), True),
        ({}, ("TLSv1.3", None), False),
    ]:
        server_sock, client_sock = socket.socketpair()
        thread, outcome = _run_in_thread(ssl_client, client_sock)
        with s2npy.Connection(config, "server", io=server_sock, **overrides) as conn:
            facts = conn.negotiate()
            assert conn.recv(100) == b"ping"
        thread.join(10)
        assert outcome.get("value") == expected, outcome
        assert facts.client_cert_sent is cert_sent
        server_sock.close()
    config.close()


def test_recv_into_and_bulk_transfer_over_socketpair(server_config, client_config):
    server_sock, client_sock = socket.socketpair()
    payload = bytes(range(256)) * 4096  # 1 MiB

    def serve():
        with s2npy.Connection(server_config(), "server", io=server_sock, prefer="throughput") as conn:
            conn.negotiate()
            conn.sendall(payload)
            conn.shutdown()

    thread, outcome = _run_in_thread(serve)
    received = bytearray()
    buffer = bytearray(65536)
    with s2npy.Connection(client_config(), "client", io=client_sock, server_name="localhost") as conn:
        conn.negotiate()
        while True:
            count = conn.recv_into(buffer)
            if count == 0:
                break
            received += buffer[:count]
        conn.shutdown()
    thread.join(10)
    assert "error" not in outcome, outcome
    assert bytes(received) == payload


@pytest.mark.parametrize("policy", ["default_tls13", "20240501"])  # record data at 5 / 13 mod 16
def test_large_transfers_from_and_to_every_buffer_alignment(server_config, client_config, policy):
    """Large send/recv at every caller alignment (the ones glibc copies slowly go through
    the extension's piecewise memmove, see test_native_copy): every offset carries the exact bytes."""
    server_sock, client_sock = socket.socketpair()
    payload = bytes(range(256)) * 160  # 40 KiB: pieces of 16 KiB and a rest
    offsets = range(0, 64, 3)

    def serve():
        with s2npy.Connection(server_config(policy=policy), "server", io=server_sock, prefer="throughput") as conn:
            conn.negotiate()
            source = bytearray(len(payload) + 64)
            for offset in offsets:
                source[offset:offset + len(payload)] = payload
                conn.sendall(memoryview(source)[offset:offset + len(payload)])

    thread, outcome = _run_in_thread(serve)
    with s2npy.Connection(client_config(policy=policy), "client", io=client_sock, server_name="localhost") as conn:
        conn.negotiate()
        target = bytearray(len(payload) + 64)
        for offset in offsets:
            view = memoryview(target)[offset:offset + len(payload)]
            received = 0
            while received < len(payload):
                received += conn.recv_into(view[received:])
            assert bytes(view) == payload, offset
    thread.join(10)
    assert "error" not in outcome, outcome


def test_non_blocking_socket_raises_want_read(server_config, client_config):
    server_sock, client_sock = socket.socketpair()
    client_sock.setblocking(False)
    conn = s2npy.Connection(client_config(), "client", io=client_sock, server_name="localhost")
    with pytest.raises(s2npy.WantReadError) as info:
        conn.negotiate()
    assert isinstance(info.value, s2npy.BlockedError) and isinstance(info.value, OSError)
    assert conn.try_negotiate() is Blocked.ON_READ
    conn.close()
    server_sock.close()
    client_sock.close()


def test_use_after_close_and_double_close(client_config):
    conn = s2npy.Connection(client_config(), "client")
    conn.close()
    conn.close()
    with pytest.raises(s2npy.UsageError, match="closed"):
        conn.send(b"x")


@pytest.mark.parametrize("trace", [False, True])
def test_a_closed_connection_goes_when_dropped_without_the_garbage_collector(server_config, client_config, trace):
    """close() lets go of the handle s2n called back with (it refers to the connection: a cycle)."""
    server_end, client_end = s2npy.memory_pipe()
    server = s2npy.Connection(server_config(), "server", io=server_end, trace=trace)
    client = s2npy.Connection(client_config(), "client", io=client_end, server_name="localhost", trace=trace)
    while Blocked.NOT_BLOCKED not in (client.try_negotiate(), server.try_negotiate()):
        pass
    assert client.negotiate().protocol == server.negotiate().protocol == "TLSv1.3"
    gc.disable()
    try:
        gone = [weakref.ref(server), weakref.ref(client)]
        server.close()
        client.close()
        del server, client
        assert [ref() for ref in gone] == [None, None]
    finally:
        gc.enable()


@pytest.mark.parametrize("name, error", [("", s2npy.UsageError), (b"localhost", s2npy.UsageError),
                                         ("a" * 64, s2npy.UsageError), (".".join(["a" * 63] * 5), s2npy.S2NError)])
def test_bad_server_name_at_creation_names_the_step(client_config, name, error):
    """Checked in Python (type, empty, IDNA) or by s2n (over 255 bytes): the message says what failed."""
    with pytest.raises(error, match="server name") as failure:
        s2npy.Connection(client_config(), "client", server_name=name)
    assert "setting server name" in str(failure.value)


def test_set_server_name_none_is_a_usage_error(client_config):
    with s2npy.Connection(client_config(), "client") as conn:
        with pytest.raises(s2npy.UsageError, match="non-empty str, not None"):
            conn.set_server_name(None)


def test_closed_socket_or_negative_fd_is_refused(client_config):
    closed, other = socket.socketpair()
    closed.close()
    with pytest.raises(s2npy.UsageError, match="the socket is closed"):
        s2npy.Connection(client_config(), "client", io=closed, server_name="localhost")
    config = client_config()
    with pytest.raises(s2npy.UsageError, match="-1 is not a file descriptor"):
        s2npy.Connection(config, "client", io=-1)
    with pytest.raises(s2npy.UsageError, match=f"{2**31} is not a file descriptor"):  # not a C int
        s2npy.Connection(config, "client", io=2**31)
    with pytest.raises(s2npy.UsageError, match="server name"):
        s2npy.Connection(config, "client", server_name="")
    with pytest.raises(s2npy.UsageError, match="security policy 'no-such-policy' failed") as caught:
        s2npy.Connection(config, "client", policy="no-such-policy")
    assert caught.value.hint == "check the policy name (see Config.set_policy)"
    with pytest.raises(s2npy.UsageError, match="unknown preference 'fast'"):
        s2npy.Connection(config, "client", prefer="fast")
    config.close()  # the failed connections do not hold the config: it closes at once
    other.close()


@pytest.mark.parametrize("trace", [False, True])
def test_a_refused_set_io_keeps_the_connection_on_its_io(server_config, client_config, trace):
    """Bad I/O is refused before anything changes: s2n keeps its working I/O (and the trace its tap)."""
    server_sock, client_sock = socket.socketpair()
    closed, _ = socket.socketpair()
    closed.close()
    server = s2npy.Connection(server_config(), "server", io=server_sock)
    client = s2npy.Connection(client_config(), "client", io=client_sock, server_name="localhost", trace=trace)
    with pytest.raises(s2npy.UsageError, match="the socket is closed"):
        client.set_io(closed)
    with pytest.raises(s2npy.UsageError, match="object has no recv_into/send methods"):
        client.set_io(object())
    thread = threading.Thread(target=server.negotiate)
    thread.start()
    assert client.negotiate().protocol == "TLSv1.3"
    thread.join()
    if trace:
        assert client.trace.chunks[0][1] == "c2s" and {d for _, d, _ in client.trace.chunks} == {"c2s", "s2c"}
    client.close()
    server.close()
    server_sock.close()
    client_sock.close()


def test_send_before_negotiate_is_an_error(client_config):
    server_sock, client_sock = socket.socketpair()
    with s2npy.Connection(client_config(), "client", io=client_sock, server_name="localhost") as conn:
        with pytest.raises(s2npy.S2NError):
            conn.send(b"too early")
    server_sock.close()
    client_sock.close()


def test_s2npy_server_against_openssl_s_client(server_config, pki_files):
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    client = subprocess.Popen(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-servername", "localhost",
         "-CAfile", str(pki_files["ca"]), "-verify_return_error", "-quiet"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    listener.settimeout(10)
    sock, _ = listener.accept()
    sock.settimeout(None)
    with s2npy.Connection(server_config(), "server", io=sock) as conn:
        facts = conn.negotiate()
        client.stdin.write(b"from openssl\n")
        client.stdin.flush()
        assert conn.recv(100) == b"from openssl\n"
        conn.sendall(b"from s2n\n")
        conn.shutdown_send()
    out, err = client.communicate(timeout=10)
    assert b"from s2n" in out, err
    assert facts.protocol == "TLSv1.3"
    sock.close()
    listener.close()


def test_s2npy_client_against_openssl_s_server(client_config, pki_files):
    port = free_port()
    server = subprocess.Popen(
        ["openssl", "s_server", "-accept", str(port), "-cert", str(pki_files["server"]),
         "-key", str(pki_files["server_key"]), "-tls1_2", "-naccept", "1", "-rev"],
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        sock = _connect_retrying(port)
        with s2npy.Connection(client_config(), "client", io=sock, server_name="localhost") as conn:
            facts = conn.negotiate()
            conn.sendall(b"hi openssl\n")
            reply = conn.recv(100)
        assert facts.protocol == "TLSv1.2"
        assert reply.startswith(b"lssnepo ih")  # s_server -rev answers each line reversed
        sock.close()
    finally:
        server.kill()
        server.communicate()


def _connect_retrying(port: int) -> socket.socket:
    import time

    deadline = time.monotonic() + 10
    while True:
        try:
            return socket.create_connection(("127.0.0.1", port), timeout=10)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Boom(Exception):
    """Raised by test callbacks."""


def test_client_hello_callback_exception_reaches_caller(pki, client_config):
    def callback(connection, hello):
        raise Boom("rejected by policy")

    server = s2npy.Config(certificates=[(pki.server.cert, pki.server.key)], client_hello_callback=callback)
    result = s2npy.handshake(server, client_config(), server_name="localhost")
    assert isinstance(result.server.error, Boom)
    assert isinstance(result.server.error.__cause__, s2npy.S2NError)
    assert "client hello callback" in str(result.server.error.__cause__)


def test_verify_host_callback_exception(server_config, client_config):
    def verify(name):
        raise Boom("verify exploded")

    result = s2npy.handshake(server_config(), client_config(verify_host=verify), server_name="localhost")
    assert isinstance(result.client.error, Boom)


def test_key_log_callback_exception(server_config, client_config):
    def log(connection, line):
        raise Boom("cannot log")

    result = s2npy.handshake(server_config(), client_config(key_log=log), server_name="localhost")
    assert isinstance(result.client.error, Boom)
    assert not result.ok


def test_callback_exception_while_the_handshake_blocks(server_config, client_config):
    """The server's key log fails, then its negotiate call blocks for the client's Finished:
    the callback's exception is what the caller gets, chained to the would-block it came with."""
    def log(connection, line):
        raise Boom("cannot log")

    result = s2npy.handshake(server_config(key_log=log), client_config(), server_name="localhost")
    assert isinstance(result.server.error, Boom)
    assert isinstance(result.server.error.__cause__, s2npy.WantReadError)
    assert "key log callback" in result.server.error.__cause__.operation


def test_transport_exception_reaches_caller(server_config):
    class BrokenTransport:
        def recv_into(self, buffer):
            raise Boom("transport bug")

        def send(self, data):
            raise Boom("transport bug")

    conn = s2npy.Connection(server_config(), "server", io=BrokenTransport())
    with pytest.raises(Boom):
        conn.negotiate()
    conn.close()


def test_client_hello_callback_changes_cert_auth_per_connection(pki, client_config):
    seen = []

    def ask_only_api_clients(connection, hello):
        seen.append(hello)
        if "h2" not in hello.alpn:
            connection.set_cert_auth("optional")

    server = s2npy.Config(certificates=[(pki.server.cert, pki.server.key)], trust=pki.ca.cert,
                          client_hello_callback=ask_only_api_clients)
    browser_like = s2npy.handshake(server, client_config(alpn=["h2", "http/1.1"]), server_name="localhost",
                                   client=Behaviour(abort_at="CLIENT_CERT"))
    api_client = s2npy.handshake(server, client_config(), server_name="localhost")
    assert browser_like.ok, browser_like.error
    assert "CLIENT_AUTH" not in browser_like.server.facts.handshake_type
    assert api_client.ok and "CLIENT_AUTH" in api_client.server.facts.handshake_type
    assert seen[0].server_name == "localhost" and seen[0].alpn == ["h2", "http/1.1"]
    assert seen[0].ja4 and len(seen[0].ja3) == 32
    assert "TLS_AES_128_GCM_SHA256" in seen[0].cipher_suites
    assert "x25519" in seen[0].groups and "TLSv1.3" in seen[0].supported_versions
    assert "ecdsa_secp256r1_sha256" in seen[0].signature_algorithms


def test_versions_reports_pin_and_libcrypto():
    info = s2npy.versions()
    assert info["s2n_source"].startswith("awscrt 0.38.0")
    assert "AWS-LC" in info["libcrypto"]


def test_non_blocking_client_hello_callback_pauses_until_done(pki, client_config):
    """A slow decision: negotiate() reports want-application-input until client_hello_done()."""
    paused = []
    server_config = s2npy.Config(certificates=[(pki.server.cert, pki.server.key)])
    server_config.set_client_hello_callback(lambda connection, hello: paused.append(connection), blocking=False)
    server_end, client_end = s2npy.memory_pipe()
    server = s2npy.Connection(server_config, "server", io=server_end)
    client = s2npy.Connection(client_config(), "client", io=client_end, server_name="localhost")
    assert client.try_negotiate() is Blocked.ON_READ
    with pytest.raises(s2npy.WantApplicationInputError):
        server.negotiate()
    assert paused == [server]
    assert server.try_negotiate() is Blocked.ON_APPLICATION_INPUT
    server.client_hello_done()
    assert server.try_negotiate() is Blocked.ON_READ
    assert client.try_negotiate() is Blocked.NOT_BLOCKED
    assert server.try_negotiate() is Blocked.NOT_BLOCKED
    client.close()
    server.close()


def test_set_config_switches_trust_and_verify_host_before_the_handshake(server_config, client_config, pki):
    """A client switched to another config verifies with that config's trust and host callback."""
    names = []
    server_end, client_end = s2npy.memory_pipe()
    server = s2npy.Connection(server_config(), "server", io=server_end)
    client = s2npy.Connection(s2npy.Config(trust=pki.other_ca.cert, system_trust=False), "client",
                              io=client_end, server_name="localhost")
    client.set_config(client_config(verify_host=lambda name: names.append(name) or name == "localhost"))
    for _ in range(10):
        done = [conn.try_negotiate() is s2npy.Blocked.NOT_BLOCKED for conn in (client, server)]
        if all(done):
            break
    assert all(done) and names == ["localhost"]
    with pytest.raises(s2npy.UsageError, match="this Config was closed"):
        closed = client_config()
        closed.close()
        client.set_config(closed)
    client.close(), server.close()


def test_set_config_on_a_server_keeps_accepting_client_certificates(server_config, client_config):
    """A server switched to a config requiring client certificates accepts the client's (no host check)."""
    server_end, client_end = s2npy.memory_pipe()
    server = s2npy.Connection(server_config(), "server", io=server_end)
    server.set_config(server_config(cert_auth="required"))
    client = s2npy.Connection(client_config(with_cert=True), "client", io=client_end, server_name="localhost")
    for _ in range(10):
        done = [conn.try_negotiate() is s2npy.Blocked.NOT_BLOCKED for conn in (client, server)]
        if all(done):
            break
    assert all(done) and server.facts().client_cert_sent
    client.close(), server.close()
