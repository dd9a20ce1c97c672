"""recv_into on a socket: one call returns every record that has already arrived, and never
waits for more (the burst reads on with MSG_DONTWAIT, see s2npy_recv in build_s2n.py).

The peer is Python's ssl (OpenSSL) on memory BIOs, so the test decides exactly which bytes
of which record reach the socket, and when.
"""

from __future__ import annotations

import select
import socket
import ssl
import threading

import pytest

import s2npy

WAIT = 10  # seconds before a call that should return at once counts as hung


class MemoryPeer:
    """A TLS 1.3 server (ssl.SSLObject) whose records the test writes to the socket itself."""

    def __init__(self, pki_files, sock: socket.socket) -> None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(pki_files["server"], pki_files["server_key"])
        self.incoming, self.outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self.sock = sock

    def handshake(self) -> None:
        while True:
            try:
                self.tls.do_handshake()
                break
            except ssl.SSLWantReadError:
                self.flush()
                self.incoming.write(self.sock.recv(65536))
        self.flush()

    def records(self, *messages: bytes) -> bytes:
        """The wire bytes of one record per message (plus anything pending, e.g. session tickets)."""
        for message in messages:
            self.tls.write(message)
        return self.outgoing.read()

    def flush(self) -> None:
        self.sock.sendall(self.outgoing.read())


def call_in_thread(function):
    """Run ``function()`` with a deadline: its result, or a failure instead of a hang."""
    box: list = []
    thread = threading.Thread(target=lambda: box.append(function()), daemon=True)
    thread.start()
    thread.join(WAIT)
    assert not thread.is_alive(), "the call blocked although data had arrived"
    assert box, "the call raised (see the thread's traceback above)"
    return box[0]


@pytest.fixture(params=[False, True], ids=["untraced", "traced"])
def connected(request, pki_files, client_config):
    """An s2npy client on a socketpair with a MemoryPeer server, handshake done."""
    client_sock, peer_sock = socket.socketpair()
    peer = MemoryPeer(pki_files, peer_sock)
    client = s2npy.Connection(client_config(), "client", io=client_sock, server_name="localhost",
                              trace=request.param)
    outcome = []
    thread = threading.Thread(target=lambda: outcome.append(client.negotiate()))
    thread.start()
    peer.handshake()
    thread.join(WAIT)
    assert outcome, "the handshake did not complete"
    yield client, peer
    client.close()
    client_sock.close()
    peer_sock.close()


def test_one_call_returns_every_record_that_has_arrived(connected):
    client, peer = connected
    messages = [bytes([65 + i]) * 10_000 for i in range(3)]
    peer.sock.sendall(peer.records(*messages))  # three records, all in the socket before the call
    buffer = bytearray(65536)
    count = call_in_thread(lambda: client.recv_into(buffer))
    assert bytes(buffer[:count]) == b"".join(messages)


def test_a_full_buffer_ends_the_burst_and_the_rest_stays_for_the_next_call(connected):
    client, peer = connected
    messages = [bytes([97 + i]) * 5_000 for i in range(4)]
    peer.sock.sendall(peer.records(*messages))
    buffer = bytearray(12_000)  # two records and part of the third
    first = call_in_thread(lambda: client.recv_into(buffer))
    received = bytes(buffer[:first])
    assert first == 12_000
    while len(received) < 20_000:
        received += bytes(buffer[:call_in_thread(lambda: client.recv_into(buffer))])
    assert received == b"".join(messages)


@pytest.mark.parametrize("record_size, buffer_size, count", [(1_000, 32_768, 12), (4_096, 32_768, 20),
                                                             (8_192, 49_152, 13), (8_192, 65_536, 12),
                                                             (16_384, 16_384, 12)])
def test_an_event_loop_waiting_on_the_socket_never_misses_a_record(connected, record_size, buffer_size, count):
    """Large buffers read ahead several records per syscall. Whatever a call leaves behind must
    show: as pending() (decrypted in s2n) or as a readable socket. Bytes read ahead of s2n but
    invisible to select() would hang an event loop."""
    client, peer = connected
    messages = [bytes([i % 256]) * record_size for i in range(count)]
    peer.sock.sendall(peer.records(*messages))  # all in the socket first: the last read-ahead empties it
    sock = socket.socket(fileno=client._fd)  # the same socket object's fd, for select()
    try:
        buffer, received = bytearray(buffer_size), b""
        while len(received) < len(messages) * record_size:
            if not client.pending():
                assert select.select([sock], [], [], 2)[0], f"data left unseen after {len(received)} bytes"
            received += bytes(buffer[:call_in_thread(lambda: client.recv_into(buffer))])
    finally:
        sock.detach()
    assert received == b"".join(messages)
    assert client._reader.large_records == (record_size >= 4096)  # read-ahead only for large records


def test_recv_with_its_default_size_keeps_no_read_ahead_buffer(pki_files, client_config):
    """recv()'s 16 KiB cannot take two full-size records, so reading ahead would gain nothing
    there, and every connection that calls recv() would carry the 64 KiB buffer."""
    client_sock, peer_sock = socket.socketpair()
    peer = MemoryPeer(pki_files, peer_sock)
    with s2npy.Connection(client_config(), "client", io=client_sock, server_name="localhost") as client:
        thread = threading.Thread(target=client.negotiate)
        thread.start()
        peer.handshake()
        thread.join(WAIT)
        peer.sock.sendall(peer.records(b"z" * 16_384, b"z" * 16_384))
        assert client.recv() == b"z" * 16_384
        assert client._read_ahead is None and client._reader.ahead == s2npy.ffi.NULL
        assert len(client.recv(65_536)) == 16_384  # a bulk-sized buffer gets one
        assert client._reader.capacity == 65_536
    client_sock.close()
    peer_sock.close()


def test_a_record_cut_short_does_not_hold_back_the_records_before_it(connected):
    """The burst reads into the next record and finds the rest missing: it returns what it
    has at once, and the next call waits for the rest and returns that record whole."""
    client, peer = connected
    wire = peer.records(b"x" * 1000, b"y" * 1000)
    peer.sock.sendall(wire[:-10])  # the second record lacks its last 10 bytes
    buffer = bytearray(65536)
    count = call_in_thread(lambda: client.recv_into(buffer))
    assert bytes(buffer[:count]) == b"x" * 1000
    threading.Timer(0.2, lambda: peer.sock.sendall(wire[-10:])).start()
    count = call_in_thread(lambda: client.recv_into(buffer))  # blocks until the rest arrives
    assert bytes(buffer[:count]) == b"y" * 1000


def test_a_call_waits_for_data_that_has_not_arrived(connected):
    client, peer = connected
    wire = peer.records(b"late")
    threading.Timer(0.2, lambda: peer.sock.sendall(wire)).start()
    buffer = bytearray(100)
    assert call_in_thread(lambda: client.recv_into(buffer)) == 4
    assert bytes(buffer[:4]) == b"late"


def test_close_notify_right_after_the_data_ends_the_stream_after_it(connected):
    client, peer = connected
    wire = peer.records(b"last words")
    with pytest.raises(ssl.SSLWantReadError):
        peer.tls.unwrap()  # queues close_notify, then wants ours
    peer.sock.sendall(wire + peer.outgoing.read())  # the data and the alert arrive together
    buffer = bytearray(100)
    assert call_in_thread(lambda: client.recv_into(buffer)) == 10
    assert bytes(buffer[:10]) == b"last words"
    assert call_in_thread(lambda: client.recv_into(buffer)) == 0


def test_a_file_descriptor_that_is_not_a_socket_still_reads_every_byte(server_config, client_config):
    """A pty carries TLS like a socket, but recv(MSG_DONTWAIT) fails there (ENOTSOCK): the
    reader then stops bursting (one record per call) and loses nothing."""
    import os
    import tty

    master, slave = os.openpty()
    tty.setraw(slave)  # no echo, no line editing: the bytes pass as they are
    messages = [bytes([48 + i]) * 3_000 for i in range(3)]
    server = s2npy.Connection(server_config(), "server", io=master)
    client = s2npy.Connection(client_config(), "client", io=slave, server_name="localhost")

    def serve():
        server.negotiate()
        for message in messages:
            server.sendall(message)

    thread = threading.Thread(target=serve)
    thread.start()
    client.negotiate()
    thread.join(WAIT)
    buffer, received = bytearray(65536), b""
    while len(received) < 9_000:
        received += bytes(buffer[:call_in_thread(lambda: client.recv_into(buffer))])
    assert received == b"".join(messages)
    assert client._reader.not_socket == 1
    for connection in (server, client):
        connection.close()
    os.close(master)
    os.close(slave)
