"""Real TLS traffic for the trace tests, made in memory with Python's ``ssl`` module.

A client and a server ``SSLObject`` talk through ``MemoryBIO`` pairs in one thread;
every byte each side writes is captured as ``(t, direction, data)`` chunks, exactly
the shape the wire parser and the pcap writer take.  Certificates come from the
shared test PKI (``pki_files`` in tests/conftest.py).
"""

from __future__ import annotations

import itertools
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

Chunk = tuple[float, str, bytes]


@dataclass
class Capture:
    """What one in-memory connection put on the wire, and how it ended."""

    keylog: Path  # the client's NSS key log
    chunks: list[Chunk] = field(default_factory=list)
    client_error: ssl.SSLError | None = None
    server_error: ssl.SSLError | None = None

    def stream(self, direction: str) -> bytes:
        """Return all bytes sent in ``direction``."""
        return b"".join(data for _, d, data in self.chunks if d == direction)

    def records(self, direction: str) -> list[tuple[bytes, bytes]]:
        """Return ``direction``'s TLS records as ``(header, fragment)`` pairs."""
        stream, records = self.stream(direction), []
        while stream:
            end = 5 + int.from_bytes(stream[3:5], "big")
            records.append((stream[:5], stream[5:end]))
            stream = stream[end:]
        return records


@dataclass
class _Pair:
    """A client and a server SSLObject wired together through memory BIOs."""

    client: ssl.SSLObject
    server: ssl.SSLObject
    to_server: ssl.MemoryBIO
    to_client: ssl.MemoryBIO
    from_client: ssl.MemoryBIO
    from_server: ssl.MemoryBIO
    capture: Capture

    def flush(self) -> None:
        """Carry what each side wrote to the other, recording it as chunks."""
        for source, sink, direction in (
            (self.from_client, self.to_server, "c2s"),
            (self.from_server, self.to_client, "s2c"),
        ):
            data = source.read()
            if data:
                self.capture.chunks.append((time.monotonic(), direction, data))
                sink.write(data)

    def step(self, side: str, action: Callable[[ssl.SSLObject], object]) -> bool:
        """Run ``action`` on one side; True if it completed, False if it wants more input.

        A TLS failure is recorded on the capture (the alert it wrote still gets flushed).
        """
        try:
            action(getattr(self, side))
            return True
        except ssl.SSLWantReadError:
            return False
        except ssl.SSLError as error:
            setattr(self.capture, f"{side}_error", error)
            return True
        finally:
            self.flush()

    def handshake(self) -> bool:
        """Drive both handshakes to completion; True if both succeeded."""
        done = {"client": False, "server": False}
        for _ in range(10):
            for side in done:
                if not done[side]:
                    done[side] = self.step(side, ssl.SSLObject.do_handshake)
            if self.capture.client_error or self.capture.server_error:
                return False
            if all(done.values()):
                return True
        raise AssertionError("handshake did not finish")

    def exchange(self, request: bytes, response: bytes) -> None:
        """Send a request and a response, and read both."""
        self.client.write(request)
        self.flush()
        assert self.server.read(len(request)) == request
        self.server.write(response)
        self.flush()
        assert self.client.read(len(response)) == response

    def close(self) -> None:
        """Exchange close_notify alerts, client first."""
        self.step("client", ssl.SSLObject.unwrap)
        self.step("server", ssl.SSLObject.unwrap)
        self.step("client", ssl.SSLObject.unwrap)


def _contexts(
    pki: dict[str, Path],
    version: ssl.TLSVersion,
    *,
    request_client_cert: ssl.VerifyMode = ssl.CERT_NONE,
    client_cert: bool = False,
    alpn: tuple[list[str], list[str]] | None = None,
    trust_server: bool = True,
    client_min_version: ssl.TLSVersion | None = None,
    server_curve: str | None = None,
) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """Return ``(server, client)`` contexts.

    ``version`` caps the server's maximum, and the client's unless
    ``client_min_version`` is given (the client then keeps its default maximum).
    """
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    if server_curve:
        server.set_ecdh_curve(server_curve)
    server.load_cert_chain(pki["server"], pki["server_key"])
    server.maximum_version = version
    server.verify_mode = request_client_cert
    if request_client_cert != ssl.CERT_NONE:
        server.load_verify_locations(pki["ca"])
    client = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if client_min_version:
        client.minimum_version = client_min_version
    else:
        client.maximum_version = version
    if trust_server:
        client.load_verify_locations(pki["ca"])
    if client_cert:
        client.load_cert_chain(pki["client"], pki["client_key"])
    if alpn:
        server.set_alpn_protocols(alpn[0])
        client.set_alpn_protocols(alpn[1])
    return server, client


Connect = Callable[..., Capture]


@pytest.fixture
def connect(pki_files: dict[str, Path], tmp_path: Path) -> Connect:
    """Return ``connect(version, *, exchange=True, **options)``.

    It runs one connection in memory (handshake; if that succeeds and ``exchange``,
    a request, a response and close_notify both ways) and returns its ``Capture``,
    with the client's key log.  ``options`` shape the contexts: ``request_client_cert``
    (server verify mode), ``client_cert``, ``alpn=(server_list, client_list)``,
    ``trust_server``, ``client_min_version``, ``server_curve`` (the
    server's only group: ``'prime256v1'`` makes it answer a HelloRetryRequest).
    """
    counter = itertools.count()

    def run(version: ssl.TLSVersion, *, exchange: bool = True, **options: object) -> Capture:
        server_context, client_context = _contexts(pki_files, version, **options)
        capture = Capture(keylog=tmp_path / f"keylog-{next(counter)}.txt")
        client_context.keylog_filename = str(capture.keylog)
        to_server, to_client, from_client, from_server = (ssl.MemoryBIO() for _ in range(4))
        pair = _Pair(
            client_context.wrap_bio(to_client, from_client, server_hostname="localhost"),
            server_context.wrap_bio(to_server, from_server, server_side=True),
            to_server,
            to_client,
            from_client,
            from_server,
            capture,
        )
        if pair.handshake() and exchange:
            pair.exchange(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", b"HTTP/1.1 204 No Content\r\n\r\n")
            pair.close()
        return capture

    return run
