"""memory_pipe(): C-backed in-memory pipe ends, as a Python transport and as s2n's own I/O."""

from __future__ import annotations

import hashlib
import os
import threading

import pytest

import s2npy
from s2npy.io import NativeTap, TransportBinding
from s2npy.memory import MemoryPipeEnd


def test_bytes_flow_both_ways_in_order():
    left, right = s2npy.memory_pipe()
    assert left.send(b"hello ") == 6 and left.send(memoryview(b"world")) == 5
    assert right.send(bytearray(b"back")) == 4
    assert (right.buffered, left.buffered) == (11, 4)
    buffer = bytearray(8)
    assert right.recv_into(buffer) == 8 and buffer == b"hello wo"
    assert right.read_buffered() == b"rld"
    assert left.read_buffered() == b"back"
    assert (left.sent, right.sent) == (11, 4)


def test_empty_pipe_would_block_and_read_buffered_is_empty():
    left, right = s2npy.memory_pipe()
    with pytest.raises(BlockingIOError, match="no data buffered"):
        left.recv_into(bytearray(10))
    assert left.read_buffered() == b""


def test_close_delivers_buffered_bytes_then_end_of_stream():
    left, right = s2npy.memory_pipe()
    left.send(b"last words")
    left.close()
    assert left.closed and not right.closed
    assert right.read_buffered() == b"last words"
    assert right.recv_into(bytearray(10)) == 0  # end of stream, like a socket after FIN
    with pytest.raises(BrokenPipeError):
        right.send(b"to a closed peer")
    with pytest.raises(BrokenPipeError):
        left.send(b"after my own close")
    with pytest.raises(OSError, match="this end of the pipe was closed"):
        left.recv_into(bytearray(1))


def test_reset_loses_unread_bytes():
    left, right = s2npy.memory_pipe()
    left.send(b"never read")
    left.reset()
    with pytest.raises(ConnectionResetError):
        right.recv_into(bytearray(100))
    assert isinstance(right.transport_error, ConnectionResetError)
    right.transport_error = None
    assert right.transport_error is None


def test_large_and_interleaved_writes_keep_every_byte():
    """Growth past the first buffer and compaction after partial reads lose nothing."""
    left, right = s2npy.memory_pipe()
    data = os.urandom(3 << 20)
    received = bytearray()
    buffer = bytearray(70000)
    for offset in range(0, len(data), 50000):
        left.send(data[offset:offset + 50000])
        count = right.recv_into(buffer)
        received += buffer[:count]
    received += right.read_buffered()
    assert hashlib.sha256(received).digest() == hashlib.sha256(data).digest()


def test_bad_buffers_are_refused():
    left, _ = s2npy.memory_pipe()
    with pytest.raises(BufferError, match="not writable"):
        left.recv_into(b"read-only")
    with pytest.raises(TypeError):
        left.send("text")


def test_ends_outlive_each_other():
    """Either end keeps the C pipe alive; dropping one first is fine."""
    left, right = s2npy.memory_pipe()
    left.send(b"kept")
    del left
    assert right.read_buffered() == b"kept"


def negotiate_in_turns(client: s2npy.Connection, server: s2npy.Connection) -> None:
    """Both ends in this thread, in turns, until both finished (a few rounds)."""
    done = s2npy.Blocked.NOT_BLOCKED
    for _ in range(10):
        if (client.try_negotiate(), server.try_negotiate()) == (done, done):
            return
    raise AssertionError("the handshake did not finish in 10 rounds")


def test_connection_uses_the_pipe_in_c(server_config, client_config):
    """No Python callback binding for a plain end, the C tap when traced; the trace still sees it all."""
    server_end, client_end = s2npy.memory_pipe()
    server = s2npy.Connection(server_config(), "server", io=server_end)
    client = s2npy.Connection(client_config(), "client", io=client_end, server_name="localhost", trace=True)
    assert server._io_binding is server_end
    assert isinstance(client._io_binding, NativeTap)

    negotiate_in_turns(client, server)
    names = [event.name for event in client.trace.wire_events() if event.kind == "handshake"]
    assert names[:2] == ["client_hello", "server_hello"]
    client.sendall(b"ping")
    assert server.recv(10) == b"ping"
    client.close(), server.close()


def test_subclass_overriding_send_sees_every_write(server_config, client_config):
    """A subclass that overrides send() is called by s2n for each write (the Python path)."""
    server_end, client_end = s2npy.memory_pipe()
    writes: list[int] = []

    class Watching(MemoryPipeEnd):
        def send(self, data) -> int:
            writes.append(len(data))
            return super().send(data)

    watched = Watching(client_end._pipe, client_end.index)
    server = s2npy.Connection(server_config(), "server", io=server_end)
    client = s2npy.Connection(client_config(), "client", io=watched, server_name="localhost")
    negotiate_in_turns(client, server)
    assert watched.native_end() is None and isinstance(client._io_binding, TransportBinding)
    assert writes and sum(writes) == watched.sent


def test_two_threads_drive_the_two_ends(server_config, client_config):
    """Each end in its own thread (s2n runs with the GIL released): every byte arrives intact."""
    server_end, client_end = s2npy.memory_pipe()
    server = s2npy.Connection(server_config(), "server", io=server_end)
    client = s2npy.Connection(client_config(), "client", io=client_end, server_name="localhost")
    payload = os.urandom(1 << 20)
    received = bytearray()

    def drive(connection, work) -> None:
        while connection.try_negotiate() is not s2npy.Blocked.NOT_BLOCKED:
            pass
        work(connection)

    def send(connection) -> None:
        sent = 0
        while sent < len(payload):
            sent += connection.send(payload[sent:sent + 65536])

    def receive(connection) -> None:
        buffer = bytearray(65536)
        while len(received) < len(payload):
            try:
                count = connection.recv_into(buffer)
            except s2npy.WantReadError:
                continue
            received.extend(buffer[:count])

    thread = threading.Thread(target=drive, args=(server, receive))
    thread.start()
    drive(client, send)
    thread.join(timeout=60)
    assert not thread.is_alive()
    assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
    client.close(), server.close()
