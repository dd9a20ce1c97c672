"""Write a traced connection as a pcap file, so Wireshark can show what s2n saw.

s2n talks to its peer through callbacks, not always over a socket a packet capture
could watch (memory pairs, custom I/O, loopback without root).  The trace already has
every byte in each direction; this module wraps them in a synthetic but valid TCP
conversation (three-way handshake, data segments with correct sequence and
acknowledgement numbers and checksums, pure ACKs, FIN or RST teardown) in a classic
libpcap file.  Together with ``write_keylog`` Wireshark then decrypts it too.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import BinaryIO

Endpoint = tuple[str, int]
Chunk = tuple[float, str, bytes]

#: Packets are raw IP (v4 or v6, told apart by the version nibble): no fake MACs.
LINKTYPE_RAW = 101
#: Payload bytes per TCP segment, below a loopback or Ethernet MTU.
MAX_SEGMENT_PAYLOAD = 1400
SNAPLEN = 262144
#: Arbitrary but fixed initial sequence numbers keep the output reproducible.
CLIENT_ISN = 0x1000_0000
SERVER_ISN = 0x2000_0000

_FIN, _SYN, _RST, _PSH, _ACK = 0x01, 0x02, 0x04, 0x08, 0x10
_TCP_PROTOCOL = 6
_TTL = 64
_WINDOW = 65535
_OTHER = {"c2s": "s2c", "s2c": "c2s"}
_CLOSER = {"client": "c2s", "server": "s2c"}


def internet_checksum(data: bytes) -> int:
    """RFC 1071 one's-complement checksum, as IPv4 and TCP headers carry it."""
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


@dataclass
class _Peer:
    """One end of the synthetic connection and the next sequence number it sends."""

    address: IPAddress
    port: int
    seq: int


def _ip_packet(source: IPAddress, destination: IPAddress, segment: bytes, ident: int) -> bytes:
    """Wrap a TCP segment in an IPv4 (with header checksum) or IPv6 header."""
    addresses = source.packed + destination.packed
    if source.version == 6:
        return struct.pack("!IHBB", 6 << 28, len(segment), _TCP_PROTOCOL, _TTL) + addresses + segment
    dont_fragment = 0x4000
    fields = (0x45, 0, 20 + len(segment), ident & 0xFFFF, dont_fragment, _TTL, _TCP_PROTOCOL)
    header = struct.pack("!BBHHHBB", *fields)
    checksum = internet_checksum(header + b"\x00\x00" + addresses)
    return header + struct.pack("!H", checksum) + addresses + segment


def _pseudo_header(source: IPAddress, destination: IPAddress, length: int) -> bytes:
    """The header the TCP checksum covers besides the segment (RFC 793, RFC 8200 8.1)."""
    if source.version == 6:
        return source.packed + destination.packed + struct.pack("!I3xB", length, _TCP_PROTOCOL)
    return source.packed + destination.packed + struct.pack("!xBH", _TCP_PROTOCOL, length)


class _TcpConversation:
    """Builds the packets of one TCP connection, keeping sequence numbers straight."""

    def __init__(self, client: Endpoint, server: Endpoint) -> None:
        client_peer = _Peer(ipaddress.ip_address(client[0]), client[1], CLIENT_ISN)
        server_peer = _Peer(ipaddress.ip_address(server[0]), server[1], SERVER_ISN)
        if client_peer.address.version != server_peer.address.version:
            raise ValueError(f"client {client[0]} and server {server[0]} are not of one IP version")
        self._peers = {"c2s": (client_peer, server_peer), "s2c": (server_peer, client_peer)}
        self.packets: list[tuple[float, bytes]] = []

    def send(self, direction: str, t: float, flags: int, payload: bytes = b"") -> None:
        """Add one segment from ``direction``'s sender, acknowledging all it received."""
        source, destination = self._peers[direction]
        ack = destination.seq if flags & _ACK else 0
        header = struct.pack(
            "!HHIIBBHHH", source.port, destination.port, source.seq, ack, 5 << 4, flags, _WINDOW, 0, 0
        )
        pseudo = _pseudo_header(source.address, destination.address, len(header) + len(payload))
        checksum = internet_checksum(pseudo + header + payload)
        segment = header[:16] + struct.pack("!H", checksum) + header[18:] + payload
        source.seq = (source.seq + len(payload) + (1 if flags & (_SYN | _FIN) else 0)) & 0xFFFFFFFF
        self.packets.append((t, _ip_packet(source.address, destination.address, segment, len(self.packets))))

    def open(self, t: float) -> None:
        """The three-way handshake."""
        self.send("c2s", t, _SYN)
        self.send("s2c", t, _SYN | _ACK)
        self.send("c2s", t, _ACK)

    def data(self, direction: str, t: float, data: bytes) -> None:
        """Send ``data`` as segments of at most ``MAX_SEGMENT_PAYLOAD`` bytes."""
        for start in range(0, len(data), MAX_SEGMENT_PAYLOAD):
            self.send(direction, t, _PSH | _ACK, data[start : start + MAX_SEGMENT_PAYLOAD])

    def close(self, closer: str, t: float, reset: bool) -> None:
        """End the connection: the closer's RST, or a FIN from each side and a last ACK."""
        if reset:
            self.send(closer, t, _RST | _ACK)
            return
        self.send(closer, t, _FIN | _ACK)
        self.send(_OTHER[closer], t, _FIN | _ACK)
        self.send(closer, t, _ACK)


def _conversation(
    chunks: list[Chunk], client: Endpoint, server: Endpoint, closed_by: str | None, reset: bool
) -> _TcpConversation:
    """Lay the chunks out as one TCP connection.

    A receiver acknowledges a chunk with a pure ACK unless its own next chunk
    follows at once and carries the acknowledgement.
    """
    conversation = _TcpConversation(client, server)
    conversation.open(chunks[0][0] if chunks else 0.0)
    for index, (t, direction, data) in enumerate(chunks):
        conversation.data(direction, t, data)
        following = chunks[index + 1][1] if index + 1 < len(chunks) else None
        if following != _OTHER[direction]:
            conversation.send(_OTHER[direction], t, _ACK)
    if closed_by is not None:
        conversation.close(_CLOSER[closed_by], chunks[-1][0] if chunks else 0.0, reset)
    return conversation


@contextlib.contextmanager
def _binary_output(path_or_file: str | os.PathLike[str] | BinaryIO) -> Iterator[BinaryIO]:
    """Yield a writable binary file: the one given, or ``path_or_file`` opened (and closed)."""
    if hasattr(path_or_file, "write"):
        yield path_or_file
    else:
        with open(path_or_file, "wb") as file:
            yield file


def write_pcap(
    path_or_file: str | os.PathLike[str] | BinaryIO,
    chunks: Iterable[Chunk],
    client: Endpoint = ("127.0.0.1", 50000),
    server: Endpoint = ("127.0.0.1", 443),
    *,
    closed_by: str | None = "client",
    reset: bool = False,
) -> int:
    """Write ``(t, direction, data)`` chunks as a TCP connection in a libpcap file.

    ``direction`` is 'c2s' or 's2c'; each chunk keeps its timestamp ``t`` (seconds).
    ``closed_by`` ('client', 'server' or None for a connection left open) picks who
    ends it, with a FIN exchange or, if ``reset``, a RST.  Addresses may be IPv4 or
    IPv6.  Returns the number of packets written.
    """
    if closed_by is not None and closed_by not in _CLOSER:
        raise ValueError(f"closed_by must be 'client', 'server' or None, not {closed_by!r}")
    chunk_list = [(t, direction, bytes(data)) for t, direction, data in chunks if data]
    packets = _conversation(chunk_list, client, server, closed_by, reset).packets
    with _binary_output(path_or_file) as out:
        out.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_RAW))
        for t, packet in packets:
            seconds, micros = divmod(round(t * 1_000_000), 1_000_000)
            out.write(struct.pack("<IIII", seconds, micros, len(packet), len(packet)) + packet)
    return len(packets)


def write_keylog(path: str | os.PathLike[str], lines: Iterable[str | bytes]) -> None:
    """Write NSS key log lines (``CLIENT_RANDOM ...``, ``SERVER_HANDSHAKE_TRAFFIC_SECRET ...``).

    The file holds session secrets, so it is created, or reset, with mode 0600.
    """
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with open(fd, "w", encoding="ascii") as file:
        for line in lines:
            text = line.decode("ascii") if isinstance(line, bytes) else line
            file.write(text.rstrip("\n") + "\n")
