"""send/recv_into through the C data path (s2npy/_datapath.c) of untraced connections.

Each call is one C method there, and everything unusual goes back to the Python
path: these tests check that nothing is lost on the way. Both paths are run
where it matters (``traced`` never takes the C path), and the same outcome is
asserted for both.
"""

from __future__ import annotations

import array
import errno
import hashlib
import os
import socket
import struct
import threading
import time

import pytest

import s2npy

WAIT = 10


class Boom(Exception):
    pass


def _negotiated_pair(server_config, client_config, server_io, client_io, trace=False):
    """Server and client connections on the two ends, handshake done (the server in a thread)."""
    server = s2npy.Connection(server_config(), "server", io=server_io, trace=trace, prefer="throughput")
    client = s2npy.Connection(client_config(), "client", io=client_io, server_name="localhost", trace=trace,
                              prefer="throughput")
    thread = threading.Thread(target=server.negotiate)
    thread.start()
    client.negotiate()
    thread.join(WAIT)
    assert server.handshake_complete
    return server, client


@pytest.fixture(params=[False, True], ids=["c-path", "traced"])
def pair(request, server_config, client_config):
    """(server, client) over a socketpair; untraced ones use the C data path."""
    server_sock, client_sock = socket.socketpair()
    server, client = _negotiated_pair(server_config, client_config, server_sock, client_sock, request.param)
    yield server, client
    server.close(), client.close()
    server_sock.close(), client_sock.close()


def _path_of(connection) -> str:
    return "c-path" if connection._channel is not None else "python"


def test_untraced_data_calls_take_the_c_path_and_traced_ones_do_not(pair):
    server, client = pair
    client.sendall(b"ping")
    assert server.recv(4) == b"ping"
    expected = "python" if client.trace is not None else "c-path"
    assert _path_of(client) == _path_of(server) == expected


def test_every_byte_arrives_both_ways_at_once(pair):
    """Full duplex: one thread sends while another receives on each connection (per-direction
    outcomes in the channel), 4 MiB each way in writes of odd sizes."""
    server, client = pair
    payloads = {name: os.urandom(4 << 20) for name in ("up", "down")}
    received = {"up": bytearray(), "down": bytearray()}

    def send(connection, data):
        view = memoryview(data)
        for offset in range(0, len(data), 70001):
            connection.sendall(view[offset:offset + 70001])

    def receive(connection, into, size):
        buffer = bytearray(65536)
        while len(into) < size:
            into += buffer[:connection.recv_into(buffer)]

    threads = [threading.Thread(target=send, args=(client, payloads["up"])),
               threading.Thread(target=send, args=(server, payloads["down"])),
               threading.Thread(target=receive, args=(server, received["up"], len(payloads["up"]))),
               threading.Thread(target=receive, args=(client, received["down"], len(payloads["down"])))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    for name, data in payloads.items():
        assert hashlib.sha256(received[name]).digest() == hashlib.sha256(data).digest(), name


def test_buffers_of_every_kind(pair):
    """bytes, bytearray, memoryview slices, a multi-byte format, nbytes: as on the Python path."""
    server, client = pair
    numbers = array.array("i", range(1000))
    client.sendall(bytearray(b"abc"))
    client.sendall(memoryview(b"xxdefxx")[2:5])
    assert client.send(numbers) == 4000  # bytes, not items
    target = bytearray(4100)
    received = 0
    while received < 4006:
        received += server.recv_into(memoryview(target)[received:], 4006 - received)
    assert target[:6] == b"abcdef" and target[6:4006] == numbers.tobytes()


def test_bad_buffers_and_sizes_raise_as_on_the_python_path(pair):
    server, client = pair
    client.sendall(b"kept")
    with pytest.raises(BufferError, match="not writable"):
        server.recv_into(b"read-only")
    with pytest.raises(s2npy.UsageError, match="exceeds the buffer size"):
        server.recv_into(bytearray(4), 5)
    with pytest.raises(s2npy.UsageError, match="exceeds the buffer size"):
        server.recv_into(bytearray(4), -1)
    with pytest.raises(TypeError):
        server.recv_into(bytearray(4), "4")
    with pytest.raises(TypeError):
        client.send("text")
    with pytest.raises((TypeError, ValueError, BufferError)):
        client.send(memoryview(bytearray(8))[::2])  # not contiguous
    assert server.recv(4) == b"kept"  # nothing above consumed or lost data


def test_recv_after_close_and_send_after_close_say_so(pair):
    server, client = pair
    client.sendall(b"x")
    assert server.recv(1) == b"x"
    server.close()
    with pytest.raises(s2npy.UsageError, match="closed"):
        server.recv(1)
    with pytest.raises(s2npy.UsageError, match="closed"):
        server.sendall(b"x")


def test_close_from_another_thread_while_recv_waits(pair):
    """The waiting call keeps the s2n connection alive; it is freed once, when the call returns."""
    server, client = pair
    outcome: list = []
    reader = threading.Thread(target=lambda: outcome.append(server.recv_into(bytearray(100))))
    reader.start()
    deadline = time.monotonic() + WAIT
    while not server._in_calls and time.monotonic() < deadline:
        time.sleep(0.001)
    assert server._in_calls, "the recv did not start waiting"
    server.close()
    assert server._unfreed, "freed under a waiting call"
    client.sendall(b"late")
    reader.join(WAIT)
    assert outcome == [4]
    assert not server._unfreed and not server._in_calls
    with pytest.raises(s2npy.UsageError, match="closed"):
        server.recv(1)


def test_the_peer_closing_ends_the_stream_with_no_bytes(pair):
    server, client = pair
    client.sendall(b"last")
    client.shutdown_send()
    assert server.recv(100) == b"last"
    assert server.recv(100) == b""


def test_garbage_after_the_handshake_is_a_protocol_error(server_config, client_config):
    server_sock, client_sock = socket.socketpair()
    server, client = _negotiated_pair(server_config, client_config, server_sock, client_sock)
    server_sock.sendall(b"\x17\x03\x03\x00\x20" + bytes(32))  # an application record that cannot decrypt
    with pytest.raises(s2npy.S2NError) as caught:
        client.recv(100)
    assert not isinstance(caught.value, s2npy.BlockedError)
    assert "recv" in str(caught.value)
    server.close(), client.close()
    server_sock.close(), client_sock.close()


def test_a_reset_reaches_the_exception_with_its_errno(server_config, client_config):
    """errno comes from the C call (ffi.errno is set from the channel's outcome)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client_sock = socket.create_connection(listener.getsockname())
        server_sock, _ = listener.accept()
    server, client = _negotiated_pair(server_config, client_config, server_sock, client_sock)
    client.sendall(b"x")
    assert server.recv(1) == b"x"
    assert _path_of(server) == "c-path"
    client_sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()
    client_sock.close()  # RST
    with pytest.raises(s2npy.S2NIOError) as caught:
        server.recv(100)
    assert caught.value.errno == errno.ECONNRESET
    server.close()
    server_sock.close()


def test_non_blocking_recv_raises_want_read_and_then_reads(server_config, client_config):
    server_sock, client_sock = socket.socketpair()
    server, client = _negotiated_pair(server_config, client_config, server_sock, client_sock)
    server_sock.setblocking(False)
    client.sendall(b"a")
    assert server.recv(10) == b"a"
    assert _path_of(server) == "c-path"
    with pytest.raises(s2npy.WantReadError):
        server.recv(10)
    client.sendall(b"b")
    assert server.recv(10) == b"b"
    server.close(), client.close()
    server_sock.close(), client_sock.close()


def test_a_transport_exception_after_the_handshake_reaches_the_caller(server_config, client_config):
    """Python transports take the C path too; their exceptions are raised from recv/send."""
    server_sock, client_sock = socket.socketpair()

    class Flaky:
        broken = False

        def recv_into(self, buffer):
            if self.broken:
                raise Boom("transport bug")
            return client_sock.recv_into(buffer)

        def send(self, data):
            if self.broken:
                raise Boom("transport bug")
            return client_sock.send(data)

    transport = Flaky()
    server, client = _negotiated_pair(server_config, client_config, server_sock, transport)
    client.sendall(b"ok")
    assert server.recv(2) == b"ok"
    server.sendall(b"ok")
    assert client.recv(2) == b"ok"
    assert _path_of(client) == "c-path"
    transport.broken = True
    server.sendall(b"more")
    with pytest.raises(Boom):
        client.recv(10)
    with pytest.raises(Boom):
        client.sendall(b"more")
    server.close(), client.close()
    server_sock.close(), client_sock.close()


def test_set_io_after_the_handshake_moves_the_data_path_to_the_new_io(server_config, client_config):
    """The channel knows the old reader: set_io drops it and the next call opens another."""
    server_sock, client_sock = socket.socketpair()
    server, client = _negotiated_pair(server_config, client_config, server_sock, client_sock)
    client.sendall(b"one")
    assert server.recv(3) == b"one"
    old_channel = server._channel
    server.set_io(os.dup(server_sock.fileno()))  # the same stream, another descriptor
    client.sendall(b"two")
    assert server.recv(3) == b"two"
    assert server._channel is not None and server._channel is not old_channel
    server.close(), client.close()
    server_sock.close(), client_sock.close()


def test_a_receiver_and_a_sender_in_two_threads_each_see_their_own_blocked_status(pair):
    """Non-blocking recv in one thread, send in another: recv always wants to read, send to write.

    Each direction has its own s2n_blocked_status: with one shared slot, a send that
    blocked on write (or went through) between a recv's failure and its error made
    that recv report WantWriteError (or no blocked status at all).
    """
    server, client = pair
    client._io_object.setblocking(False)
    outcomes = {"recv": set(), "send": set()}
    stop = time.monotonic() + 1.0

    def receive() -> None:
        while time.monotonic() < stop:
            try:
                client.recv(100)
            except s2npy.S2NError as error:
                outcomes["recv"].add(type(error).__name__)

    def send() -> None:
        while time.monotonic() < stop:
            try:
                client.send(b"x" * 4096)
                outcomes["send"].add("sent")
            except s2npy.S2NError as error:
                outcomes["send"].add(type(error).__name__)

    threads = [threading.Thread(target=receive), threading.Thread(target=send)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert outcomes["recv"] == {"WantReadError"}
    assert outcomes["send"] == {"sent", "WantWriteError"}
