"""Hostile peers: whatever bytes arrive, s2npy fails cleanly, quickly, with a diagnosis.

Every case checks: an s2npy exception of a class a peer can cause
(ProtocolError, ClosedError, AlertError, S2NIOError - never InternalError,
UsageError or a blocked status), a diagnosis, and a bounded run time.
"""

from __future__ import annotations

import errno
import os
import random
import socket
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from reliability_tools import (HANGUP, FaultyTransport, assert_clean_failure, feed_server, make_pair,
                               negotiate_pair, records, s2npy_client_hello, ssl_client_hello)

from s2npy import Behaviour, ClosedError, Connection, ProtocolError, S2NIOError, handshake

SSL2_CIPHERS = bytes.fromhex("0000040000050000390000380000350000330000320000090000150000120000030000080000060007c0")


def sslv2_client_hello(version: bytes = b"\x03\x01") -> bytes:
    """An SSLv2-format ClientHello (what very old clients and scanners send)."""
    challenge = os.urandom(16)
    body = (b"\x01" + version + len(SSL2_CIPHERS).to_bytes(2, "big") + b"\x00\x00"
            + len(challenge).to_bytes(2, "big") + SSL2_CIPHERS + challenge)
    return bytes([0x80 | len(body) >> 8, len(body) & 0xFF]) + body


@pytest.fixture(scope="module")
def hellos(pki):
    """Real ClientHellos: one from Python's ssl (OpenSSL), one from an s2npy client."""
    import s2npy

    client = s2npy.Config(trust=pki.ca.cert, system_trust=False)
    return {"ssl": ssl_client_hello(), "s2npy": s2npy_client_hello(client)}


def hello_fields(record: bytes) -> list[tuple[str, int, int]]:
    """The ClientHello's fields as (name, start, end) offsets into the record, extension by extension."""
    fields = [("record type", 0, 1), ("record version", 1, 3), ("record length", 3, 5),
              ("handshake type", 5, 6), ("handshake length", 6, 9), ("client version", 9, 11),
              ("random", 11, 43)]
    offset = 43
    for name, length_size in (("session id", 1), ("cipher suites", 2), ("compression methods", 1)):
        length = int.from_bytes(record[offset:offset + length_size], "big")
        fields += [(f"{name} length", offset, offset + length_size),
                   (name, offset + length_size, offset + length_size + length)]
        offset += length_size + length
    fields.append(("extensions length", offset, offset + 2))
    offset += 2
    while offset + 4 <= len(record):
        kind = int.from_bytes(record[offset:offset + 2], "big")
        length = int.from_bytes(record[offset + 2:offset + 4], "big")
        fields += [(f"extension {kind} type", offset, offset + 2),
                   (f"extension {kind} length", offset + 2, offset + 4),
                   (f"extension {kind} data", offset + 4, offset + 4 + length)]
        offset += 4 + length
    assert offset == len(record), "the captured ClientHello did not parse"
    return fields


def mutate(record: bytes, start: int, end: int, how: str, noise: bytes) -> bytes:
    """Replace one field's bytes according to ``how``."""
    size = end - start
    value = int.from_bytes(record[start:end], "big") if size else 0
    replacement = {
        "noise": (noise * (size // max(len(noise), 1) + 1))[:size],
        "zero": bytes(size),
        "ones": b"\xff" * size,
        "plus one": ((value + 1) % (1 << 8 * size)).to_bytes(size, "big") if size else b"",
        "minus one": ((value - 1) % (1 << 8 * size)).to_bytes(size, "big") if size else b"",
        "drop": b"",
        "extend": record[start:end] + noise,
        "truncate": record[start:start + size // 2],
    }[how]
    return record[:start] + replacement + record[end:]


def test_random_bytes(configs):
    """Random byte strings of many sizes, then a close."""
    server_config, _ = configs
    rng = random.Random(7)
    for size in [1, 2, 4, 5, 6, 10, 100, 1000, 20000] + [rng.randrange(1, 4000) for _ in range(60)]:
        feed_server(server_config, rng.randbytes(size))


def test_plaintext_http_is_refused(configs):
    """An HTTP request on the TLS port never completes a handshake and never hangs."""
    server_config, _ = configs
    request = b"GET / HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/8\r\n\r\n"
    assert isinstance(feed_server(server_config, request), ClosedError)
    assert isinstance(feed_server(server_config, request * 400), ProtocolError)


@pytest.mark.parametrize("version", [b"\x00\x02", b"\x03\x00", b"\x03\x01", b"\x03\x03"])
def test_sslv2_hello_is_refused(configs, version):
    """An SSLv2-format hello (any advertised version) is refused by the default policy."""
    server_config, _ = configs
    feed_server(server_config, sslv2_client_hello(version))


@pytest.mark.parametrize("length", [0x4000 + 2048 + 1, 0xFFFF])
@pytest.mark.parametrize("content_type", [20, 21, 22, 23, 99])
def test_oversized_record_length(configs, content_type, length):
    """A record longer than TLS allows: refused once it arrives, a clean close before that.

    s2n deliberately accepts record lengths up to 2^16 (some old servers send
    oversized fragments), so the bound is 64 KiB of buffering, not an early alert.
    """
    server_config, _ = configs
    header = bytes([content_type, 3, 1]) + length.to_bytes(2, "big")
    assert isinstance(feed_server(server_config, header + os.urandom(64)), ClosedError)
    feed_server(server_config, header + os.urandom(length))


def test_silent_peer_is_bounded(configs, hellos):
    """A peer that sends half a hello and then nothing: the in-memory driver reports a stall."""
    server_config, _ = configs
    result = handshake(server_config, None, client=Behaviour(raw=hellos["ssl"][:100], then="silent"))
    assert isinstance(result.server.error, S2NIOError) and result.server.error.errno == errno.ETIMEDOUT


def test_oversized_handshake_length(configs, hellos):
    """A ClientHello announcing a 16 MiB handshake message fails without allocating or hanging."""
    server_config, _ = configs
    hello = hellos["s2npy"]
    lying = hello[:6] + b"\xff\xff\xff" + hello[9:]
    feed_server(server_config, lying)


@pytest.mark.parametrize("source", ["ssl", "s2npy"])
def test_truncated_client_hello(configs, hellos, source):
    """The ClientHello cut at every byte offset, then a close."""
    server_config, _ = configs
    hello = hellos[source]
    for cut in range(len(hello)):
        assert isinstance(feed_server(server_config, hello[:cut]), ClosedError)


def _check_mutated_hello(server_config, hellos, source, field_index, how, noise):
    hello = hellos[source]
    fields = hello_fields(hello)
    _, start, end = fields[field_index % len(fields)]
    feed_server(server_config, mutate(hello, start, end, how, noise))


KINDS = ["noise", "zero", "ones", "plus one", "minus one", "drop", "extend", "truncate"]
HOW = st.sampled_from(KINDS)


def _hypothesis_case(max_examples: int):
    """A hypothesis test mutating one ClientHello field per example."""
    @settings(max_examples=max_examples, deadline=None, suppress_health_check=list(HealthCheck))
    @given(source=st.sampled_from(["ssl", "s2npy"]), field_index=st.integers(0, 200), how=HOW,
           noise=st.binary(min_size=1, max_size=40))
    def case(configs, hellos, source, field_index, how, noise):
        _check_mutated_hello(configs[0], hellos, source, field_index, how, noise)
    return case


test_mutated_client_hello = _hypothesis_case(1500)
test_mutated_client_hello_long = pytest.mark.slow(_hypothesis_case(5000))


def test_mutated_client_hello_every_field(configs, hellos):
    """Deterministic sweep: every field of both hellos, every mutation kind."""
    for source, hello in hellos.items():
        for index in range(len(hello_fields(hello))):
            for how in KINDS:
                _check_mutated_hello(configs[0], hellos, source, index, how, b"\x5a\xa5\x00\xff")


def _cut_plan(budget: int):
    """A transport plan: send ``budget`` bytes in total, then hang up."""
    def plan(transport: FaultyTransport, op: str):
        if op != "send":
            return None
        left = budget - len(transport.sent)
        return HANGUP if left <= 0 else left
    return plan


def _stop_every(server_config, client_config, side: str, step: int) -> int:
    clean = negotiate_pair(make_pair(server_config, client_config))
    total = len(getattr(clean, f"{side}_io").sent)
    clean.close()
    for budget in range(0, total - 8, step):  # ECDSA signatures vary by a few bytes
        pair = negotiate_pair(make_pair(server_config, client_config, **{f"{side}_plan": _cut_plan(budget)}))
        other = "client" if side == "server" else "server"
        assert not pair.ok, f"handshake succeeded with {side} cut at {budget}"
        if other in pair.errors:
            assert_clean_failure(pair.errors[other])
        else:  # the client finished first (TLS 1.3: before the server read its Finished)
            assert other == "client" and budget >= total - 100
        pair.close()
    return total


@pytest.mark.parametrize("side", ["server", "client"])
def test_peer_stops_after_each_byte(configs, side):
    """A peer that stops after byte n of a real handshake, for every n (the other side's view)."""
    assert _stop_every(*configs, side, step=1) > 300


@pytest.mark.parametrize("side", ["server", "client"])
@pytest.mark.parametrize("reset", [False, True])
def test_peer_hangs_up_at_each_message(configs, side, reset):
    """The peer closes or resets (no alert) when its state machine reaches each message."""
    server_config, client_config = configs
    messages = ["CLIENT_HELLO", "SERVER_HELLO", "SERVER_CHANGE_CIPHER_SPEC", "ENCRYPTED_EXTENSIONS",
                "SERVER_CERT", "SERVER_CERT_VERIFY", "SERVER_FINISHED", "CLIENT_CHANGE_CIPHER_SPEC",
                "CLIENT_FINISHED"]
    failures = 0
    for message in messages:
        behaviour = Behaviour(abort_at=message, reset=reset)
        result = handshake(server_config, client_config, server_name="localhost", **{side: behaviour})
        victim = result.client if side == "server" else result.server
        if victim.error is None:
            continue  # the peer hung up after this side had finished
        failures += 1
        error = assert_clean_failure(victim.error)
        if reset and isinstance(error, S2NIOError):
            assert error.errno in (errno.ECONNRESET, errno.EPIPE), error
            assert isinstance(error.__cause__, (ConnectionResetError, BrokenPipeError))
    assert failures >= 3


def test_peer_resets_after_raw_bytes(configs, hellos):
    """A reset right after the ClientHello: an I/O error naming ECONNRESET."""
    server_config, _ = configs
    error = feed_server(server_config, hellos["ssl"], then="reset")
    assert isinstance(error, S2NIOError) and error.errno == errno.ECONNRESET
    assert isinstance(error.__cause__, ConnectionResetError)


def _flip_sweep(server_config, client_config, side: str, bits) -> set[int]:
    """Flip bit(s) of every byte a side sends; return offsets whose flip the handshake survived."""
    clean = negotiate_pair(make_pair(server_config, client_config))
    stream = bytes(getattr(clean, f"{side}_io").sent)
    clean.close()
    survived, stalled = set(), set()
    for offset in range(len(stream)):
        for bit in bits(offset):
            pair = negotiate_pair(make_pair(server_config, client_config, **{f"{side}_flip": (offset, bit)}))
            if pair.ok:
                survived.add(offset)
            if pair.stalled:
                stalled.add(offset)
            for error in pair.errors.values():
                assert_clean_failure(error)
            pair.close()
    # Only a plaintext record's legacy version field may be ignored (RFC 8446, 5.1).
    ignorable = {start + i for start, kind, _ in records(stream) if kind != 23 for i in (1, 2)}
    assert survived <= ignorable, f"undetected bit flips at {sorted(survived - ignorable)}"
    # A longer record or handshake message length, or a content type with the top bit set (read
    # as an SSLv2 header), makes the receiver wait for bytes that never come (a TCP timeout ends that).
    framing = {start + i for start, kind, _ in records(stream) for i in (0, 3, 4, 6, 7, 8) if i < 6 or kind == 22}
    assert stalled <= framing, f"stalls at {sorted(stalled - framing)}"
    return survived


@pytest.mark.parametrize("side", ["server", "client"])
def test_bit_flipped_records(rsa_configs, side):
    """One bit flipped in each byte of a real handshake: detected, unless TLS says to ignore it."""
    _flip_sweep(*rsa_configs, side, lambda offset: [offset % 8] if offset % 3 == 0 else [])


@pytest.mark.slow
@pytest.mark.parametrize("side", ["server", "client"])
def test_bit_flipped_records_every_bit(rsa_configs, side):
    """Every bit of every byte of a real handshake flipped, one at a time."""
    _flip_sweep(*rsa_configs, side, lambda offset: range(8))


def _tcp_pair():
    """A connected TCP pair on loopback (RST needs TCP; a socketpair cannot reset)."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        client = socket.create_connection(listener.getsockname())
        server, _ = listener.accept()
    return server, client


@pytest.mark.parametrize("ending", ["close", "reset"])
@pytest.mark.parametrize("payload", ["garbage", "half hello", "http"])
def test_hostile_peer_over_tcp_fd(configs, hellos, payload, ending):
    """The file-descriptor fast path (no Python in the I/O loop) against a hostile TCP peer."""
    data = {"garbage": os.urandom(3000), "half hello": hellos["ssl"][:200],
            "http": b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"}[payload]
    server_sock, peer = _tcp_pair()
    peer.sendall(data)
    if ending == "reset":
        peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    peer.close()
    # Linux may hand over bytes that arrived before the RST: random garbage can then be rejected
    # (a bad record) before s2n reads far enough to see the reset. The other payloads need more
    # bytes than were sent, so they always run into it.
    expected = {"close": (ClosedError, ProtocolError),
                "reset": (S2NIOError, ProtocolError) if payload == "garbage" else S2NIOError}[ending]
    with server_sock, Connection(configs[0], "server", io=server_sock, trace=False) as connection:
        with pytest.raises(expected) as caught:
            connection.negotiate()
    assert caught.value.diagnosis is not None
    if isinstance(caught.value, S2NIOError):
        assert ending == "reset" and caught.value.errno == errno.ECONNRESET, caught.value
