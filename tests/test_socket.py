"""s2npy.socket against real stdlib ``ssl`` peers over loopback (peers run in threads)."""

from __future__ import annotations

import http.client
import http.server
import socket
import ssl
import threading
import time
from collections.abc import Callable

import pytest

import s2npy
from s2npy.socket import TLSSocket, wrap_socket


class PeerThread:
    """One accepted connection handled by ``handler(sock)`` in a thread; errors re-raised by ``join``."""

    def __init__(self, handler: Callable[[socket.socket], object]) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.result: object = None
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, args=(handler,), daemon=True)
        self.thread.start()

    def _run(self, handler) -> None:
        try:
            conn, _ = self.listener.accept()
            with conn:
                self.result = handler(conn)
        except BaseException as exc:  # noqa: BLE001 - re-raised in the test thread by join()
            self.error = exc

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def join(self) -> object:
        self.thread.join(10)
        self.listener.close()
        assert not self.thread.is_alive(), "peer thread hung"
        if self.error is not None:
            raise self.error
        return self.result


@pytest.fixture
def ssl_server_context(pki_files) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(pki_files["server"], pki_files["server_key"])
    context.load_verify_locations(pki_files["ca"])
    context.verify_mode = ssl.CERT_OPTIONAL
    context.set_alpn_protocols(["h2", "http/1.1"])
    return context


@pytest.fixture
def ssl_client_context(pki_files) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=str(pki_files["ca"]))
    context.load_cert_chain(pki_files["client"], pki_files["client_key"])
    context.set_alpn_protocols(["http/1.1"])
    return context


def echo_until_eof(tls) -> bytes:
    received = bytearray()
    while data := tls.recv(65536):
        received += data
        tls.sendall(data)
    return bytes(received)


def ssl_echo(context: ssl.SSLContext) -> Callable[[socket.socket], dict]:
    """A stdlib ssl server handler: echo until close_notify; report what it negotiated."""
    def handler(conn: socket.socket) -> dict:
        with context.wrap_socket(conn, server_side=True, suppress_ragged_eofs=False) as tls:
            received = echo_until_eof(tls)  # a TCP close without close_notify raises SSLEOFError
            return {"received": received, "cipher": tls.cipher(), "version": tls.version(),
                    "peercert": tls.getpeercert(), "alpn": tls.selected_alpn_protocol()}
    return handler


def test_stdlib_client_against_s2npy_server(server_config, ssl_client_context, pki_files):
    config = server_config(cert_auth="optional", alpn=["http/1.1"])
    peer = PeerThread(lambda conn: _s2npy_echo_server(config, conn))
    payload = bytes(range(256)) * 1000
    with ssl_client_context.wrap_socket(peer.connect(), server_hostname="localhost") as tls:
        tls.sendall(payload)
        echoed = bytearray()
        while len(echoed) < len(payload):
            echoed += tls.recv(65536)
        client_view = {"cipher": tls.cipher(), "version": tls.version(), "alpn": tls.selected_alpn_protocol()}
        tls.unwrap().close()
    server_view = peer.join()
    assert echoed == payload
    assert server_view["received"] == payload
    assert server_view["cipher"] == client_view["cipher"]
    assert server_view["version"] == client_view["version"] == "TLSv1.3"
    assert server_view["alpn"] == client_view["alpn"] == "http/1.1"
    assert server_view["peercert"] == ssl._ssl._test_decode_cert(str(pki_files["client"]))


def _s2npy_echo_server(config: s2npy.Config, conn: socket.socket) -> dict:
    with config.wrap_socket(conn, server_side=True) as tls:
        received = echo_until_eof(tls)
        return {"received": received, "cipher": tls.cipher(), "version": tls.version(),
                "peercert": tls.getpeercert(), "alpn": tls.selected_alpn_protocol()}


def test_s2npy_client_against_stdlib_server(client_config, ssl_server_context, pki_files):
    peer = PeerThread(ssl_echo(ssl_server_context))
    config = client_config(with_cert=True, alpn=["http/1.1"])
    with wrap_socket(config, peer.connect(), server_hostname="localhost") as tls:
        assert isinstance(tls, TLSSocket)
        for size in (1, 100, 70000):
            message = bytes([size % 251]) * size
            tls.sendall(message)
            echoed = b""
            while len(echoed) < size:
                echoed += tls.recv(size)
            assert echoed == message
        view = {"cipher": tls.cipher(), "version": tls.version(), "alpn": tls.selected_alpn_protocol(),
                "peercert": tls.getpeercert(), "der": tls.getpeercert(binary_form=True)}
        tls.shutdown(socket.SHUT_WR)  # sends close_notify: the ssl server's recv returns b"", not an EOF error
        assert tls.recv(100) == b""
    server_view = peer.join()
    assert server_view["cipher"] == view["cipher"]
    assert server_view["version"] == view["version"]
    assert server_view["alpn"] == view["alpn"] == "http/1.1"
    assert view["peercert"] == ssl._ssl._test_decode_cert(str(pki_files["server"]))
    assert view["der"] == ssl.PEM_cert_to_DER_cert(pki_files["server"].read_text())
    assert server_view["peercert"]["subject"] == ((("organizationName", "s2npy test PKI"),),
                                                  (("commonName", "s2npy test client"),))


def test_tls12_cipher_names_match_ssl(client_config, ssl_server_context):
    ssl_server_context.maximum_version = ssl.TLSVersion.TLSv1_2
    peer = PeerThread(ssl_echo(ssl_server_context))
    with wrap_socket(client_config(), peer.connect(), server_hostname="localhost") as tls:
        view = tls.cipher()
        tls.shutdown(socket.SHUT_RDWR)
    assert peer.join()["cipher"] == view
    assert view[1] == "TLSv1.2" and view[2] in (128, 256)


def test_close_sends_close_notify(client_config, ssl_server_context):
    peer = PeerThread(ssl_echo(ssl_server_context))
    tls = wrap_socket(client_config(), peer.connect(), server_hostname="localhost")
    tls.sendall(b"bye")
    assert tls.recv(10) == b"bye"
    tls.close()
    assert peer.join()["received"] == b"bye"  # no SSLEOFError: close_notify arrived before the FIN


def test_http_client_reads_through_makefile(client_config, ssl_server_context):
    body = b"hello from http.server over stdlib ssl\n" * 300

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    def serve(conn: socket.socket) -> None:
        tls = ssl_server_context.wrap_socket(conn, server_side=True)
        Handler(tls, ("127.0.0.1", 0), None)
        tls.close()

    peer = PeerThread(serve)
    http_connection = http.client.HTTPConnection("localhost", peer.port)
    http_connection.sock = wrap_socket(client_config(), peer.connect(), server_hostname="localhost")
    http_connection.request("GET", "/")
    response = http_connection.getresponse()
    assert response.status == 200
    assert response.read() == body
    http_connection.close()
    peer.join()


def test_silent_peer_handshake_times_out(client_config):
    listener = socket.create_server(("127.0.0.1", 0))
    sock = socket.create_connection(listener.getsockname())
    sock.settimeout(0.3)
    started = time.monotonic()
    with pytest.raises(TimeoutError, match="handshake timed out"):
        wrap_socket(client_config(), sock, server_hostname="localhost")
    assert 0.25 < time.monotonic() - started < 2
    sock.close()
    listener.close()


def test_recv_timeout_and_nonblocking_want_read(server_config, client_config):
    release = threading.Event()

    def quiet_server(conn: socket.socket) -> None:
        with wrap_socket(server_config(), conn, server_side=True):
            release.wait(10)

    peer = PeerThread(quiet_server)
    with wrap_socket(client_config(), peer.connect(), server_hostname="localhost") as tls:
        tls.settimeout(0.2)
        with pytest.raises(TimeoutError, match="recv timed out"):
            tls.recv(10)
        tls.setblocking(False)
        with pytest.raises(s2npy.WantReadError):
            tls.recv(10)
        release.set()
    peer.join()


def test_connect_after_wrap_and_unwrap_to_plaintext(server_config, client_config):
    def server(conn: socket.socket) -> bytes:
        tls = wrap_socket(server_config(), conn, server_side=True)
        assert tls.recv(100) == b"tls part"
        plain = tls.unwrap()
        return plain.recv(100)

    peer = PeerThread(server)
    tls = client_config().wrap_socket(socket.socket(), server_hostname="localhost")
    assert tls.version() is None and tls.cipher() is None
    tls.connect(("127.0.0.1", peer.port))
    assert tls.version() == "TLSv1.3"
    tls.sendall(b"tls part")
    plain = tls.unwrap()
    plain.sendall(b"plain part")
    plain.close()
    assert peer.join() == b"plain part"


def test_untrusted_server_raises_s2n_error(pki, client_config):
    stranger = s2npy.Config(certificates=[(pki.untrusted_client.cert, pki.untrusted_client.key)],
                            system_trust=False)

    def server(conn: socket.socket) -> None:
        with pytest.raises(s2npy.S2NError):
            wrap_socket(stranger, conn, server_side=True)

    peer = PeerThread(server)
    with pytest.raises(s2npy.ProtocolError) as caught:
        wrap_socket(client_config(), peer.connect(), server_hostname="localhost")
    assert caught.value.mode == "client"
    peer.join()


def test_getpeercert_before_handshake_and_flags(client_config):
    tls = wrap_socket(client_config(), socket.socket(), server_hostname="localhost")
    with pytest.raises(ValueError, match="handshake not done"):
        tls.getpeercert()
    with pytest.raises(ValueError, match="flags"):
        tls.recv(10, socket.MSG_PEEK)
    assert tls.family == socket.AF_INET
    tls.close()
