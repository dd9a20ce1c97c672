"""A traced connection on a socket or fd: the I/O stays in C (``io.NativeTap``), the trace is the same."""

from __future__ import annotations

import errno
import socket
import struct
import threading
import time

import pytest

import s2npy
from s2npy.io import NativeTap


class Wrapped:
    """A transport object around a socket: forces the Python tap."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    def recv_into(self, buffer) -> int:
        return self.sock.recv_into(buffer)

    def send(self, data) -> int:
        return self.sock.send(data)


def exchange(server_config, client_config, wrap: bool):
    """Handshake, a message, close_notify from the server, then the client's EOF; return both traces."""
    left, right = socket.socketpair()
    with left, right:
        server = s2npy.Connection(server_config(), "server", io=Wrapped(left) if wrap else left, trace=True)
        client = s2npy.Connection(client_config(), "client", io=Wrapped(right) if wrap else right,
                                  server_name="localhost", trace=True)
        assert isinstance(server._io_binding, NativeTap) is (not wrap)

        def serve() -> None:
            server.negotiate()
            server.sendall(b"hello")
            server.shutdown_send()

        thread = threading.Thread(target=serve)
        thread.start()
        client.negotiate()
        assert client.recv(100) == b"hello" and client.recv(100) == b""
        thread.join()
        right.shutdown(socket.SHUT_WR)
        with pytest.raises(s2npy.ClosedError):
            server.recv(100)
        client.close(), server.close()
        assert server._tap is None and client._tap is None  # C buffers freed on close
        return server.trace, client.trace


def test_fd_tap_records_what_the_python_tap_records(server_config, client_config):
    start = time.perf_counter()
    python_traces = exchange(server_config, client_config, wrap=True)
    c_traces = exchange(server_config, client_config, wrap=False)
    for python_trace, c_trace in zip(python_traces, c_traces):
        # Same chunks (header and body reads, each write, the EOF); lengths differ with the signatures.
        assert [(d, bool(data)) for _, d, data in c_trace.chunks] == \
            [(d, bool(data)) for _, d, data in python_trace.chunks]
        assert [e.kind for e in c_trace.events()] == [e.kind for e in python_trace.events()]
        times = [t for t, _, _ in c_trace.chunks]
        assert start <= c_trace.origin and times == sorted(times) and 0 <= times[0] and times[-1] <= c_trace.now()
        assert all(isinstance(data, bytes) for _, _, data in c_trace.chunks)
    server, client = c_traces
    for direction in ("c2s", "s2c"):  # both sides saw the same byte streams
        assert b"".join(d for _, way, d in server.chunks if way == direction) == \
            b"".join(d for _, way, d in client.chunks if way == direction)
    assert server.chunks[-1][1:] == ("c2s", b"")  # the client's EOF
    assert [e.kind for e in server.events()][-1] == "eof"


def test_fd_tap_non_blocking(server_config, client_config):
    """EAGAIN is 'blocked' as on the plain fd path; an int fd is tapped in C too."""
    left, right = socket.socketpair()
    with left, right:
        left.setblocking(False), right.setblocking(False)
        server = s2npy.Connection(server_config(), "server", io=left.fileno(), trace=True)
        client = s2npy.Connection(client_config(), "client", io=right, server_name="localhost", trace=True)
        assert isinstance(server._io_binding, NativeTap) and isinstance(client._io_binding, NativeTap)
        blocked = set()
        for _ in range(20):
            states = [conn.try_negotiate() for conn in (client, server)]
            blocked.update(states)
            if all(state is s2npy.Blocked.NOT_BLOCKED for state in states):
                break
        assert s2npy.Blocked.ON_READ in blocked
        assert client.handshake_complete and server.handshake_complete
        assert len(client.trace.calls) > 1 and all(data for _, _, data in client.trace.chunks)
        client.close(), server.close()


def test_fd_tap_reset_is_io_error_with_cause(server_config, client_config):
    """ECONNRESET reaches the exception (errno and __cause__) as with the Python tap."""
    listener = socket.create_server(("127.0.0.1", 0))
    with listener:
        client_sock = socket.create_connection(listener.getsockname())
        server_sock, _ = listener.accept()
    with server_sock:
        client_sock.sendall(b"\x16\x03\x01\x00\x10")  # a record header, then a reset
        client_sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        client_sock.close()
        time.sleep(0.05)
        server = s2npy.Connection(server_config(), "server", io=server_sock, trace=True)
        with pytest.raises(s2npy.S2NIOError) as caught:
            server.negotiate()
        assert caught.value.errno == errno.ECONNRESET
        assert isinstance(caught.value.__cause__, ConnectionResetError)
        assert server.trace.chunks[0][1:] == ("c2s", b"\x16\x03\x01\x00\x10")
        server.close()


def test_chunks_read_at_any_time_are_complete_in_order_and_outlive_the_tap(server_config, client_config):
    """A C tap's chunks are read on demand: mid-handshake, after a switch of I/O, and after close."""
    server_end, client_end = s2npy.memory_pipe()
    server = s2npy.Connection(server_config(), "server", io=server_end, trace=True)
    client = s2npy.Connection(client_config(), "client", io=client_end, server_name="localhost", trace=True)
    seen = []  # the client's chunks as read after each step: each read extends the last one
    while not (client.handshake_complete and server.handshake_complete):
        if not client.handshake_complete:
            client.try_negotiate()
        if not server.handshake_complete:
            server.try_negotiate()
        seen.append(list(client.trace.chunks))
    assert all(later[:len(earlier)] == earlier for earlier, later in zip(seen, seen[1:]))
    hello = seen[0][0]
    assert hello[1] == "c2s" and hello[2][:1] == b"\x16" and len(seen[-1]) > len(seen[0])
    client.set_io(client_end)  # a new tap: the first one's chunks stay, before the new one's
    server.sendall(b"ping")
    assert client.recv(4) == b"ping"
    client.close()
    server.close()
    assert client._tap is None and client.trace._tap is None  # C buffers freed, chunks kept
    chunks = client.trace.chunks
    assert chunks[:len(seen[-1])] == seen[-1]
    assert chunks[-1][1] == "s2c" and [t for t, _, _ in chunks] == sorted(t for t, _, _ in chunks)
    for direction in ("c2s", "s2c"):  # nothing lost or doubled: both ends recorded the same streams
        assert b"".join(d for _, way, d in chunks if way == direction) == \
            b"".join(d for _, way, d in server.trace.chunks if way == direction)


def test_chunks_read_while_another_thread_records_lose_nothing(server_config, client_config):
    """Reading a trace while its connection's I/O runs in another thread: no chunk lost or doubled."""
    left, right = socket.socketpair()
    with left, right:
        server = s2npy.Connection(server_config(), "server", io=left, trace=True)
        client = s2npy.Connection(client_config(), "client", io=right, server_name="localhost", trace=True)
        thread = threading.Thread(target=server.negotiate)
        thread.start()
        client.negotiate()
        thread.join()
        received = bytearray()

        def receive() -> None:
            while len(received) < 300 * 100:
                received.extend(client.recv(100))

        reader = threading.Thread(target=receive)
        reader.start()
        lengths = []
        for _ in range(300):
            server.sendall(b"x" * 100)
            lengths.append(len(client.trace.chunks))
        reader.join()
        assert lengths == sorted(lengths) and received == b"x" * 30000
        client_in = b"".join(data for _, way, data in client.trace.chunks if way == "s2c")
        assert client_in == b"".join(data for _, way, data in server.trace.chunks if way == "s2c")
        assert len(client.trace.calls) == len(server.trace.calls) == 1
        client.close(), server.close()
