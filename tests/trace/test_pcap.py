"""The pcap writer, checked by dissecting its files with tshark.

tshark is required: CI installs it (Debian package ``tshark``), and these tests fail
rather than skip without it, so a missing install step cannot pass unnoticed.
"""

from __future__ import annotations

import io
import os
import shutil
import ssl
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from xml.etree import ElementTree

import pytest

from s2npy.trace.pcap import CLIENT_ISN, SERVER_ISN, write_keylog, write_pcap
from s2npy.trace.wire import HandshakeMessage, Record, WireSession

TLS12, TLS13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3
SYN, SYN_ACK, ACK, PSH_ACK, FIN_ACK, RST_ACK = 0x02, 0x12, 0x10, 0x18, 0x11, 0x14
SERVER_PORT = 443  # write_pcap's default server port


def run_tshark(pcap: Path, *arguments: str) -> str:
    """Run tshark on ``pcap`` and return what it prints; fail loudly if it is missing."""
    binary = shutil.which("tshark")
    if binary is None:
        pytest.fail("tshark is not installed (apt-get install -y tshark); the pcap tests need it")
    command = [binary, "-n", "-r", str(pcap), *arguments]
    return subprocess.run(command, capture_output=True, text=True, check=True).stdout


def tshark(pcap: Path, *fields: str, options: tuple[str, ...] = ()) -> list[list[str]]:
    """Dissect ``pcap`` and return one row of ``fields`` values per frame."""
    selection = [arg for name in fields for arg in ("-e", name)]
    output = run_tshark(pcap, *options, "-T", "fields", "-E", "occurrence=a", *selection)
    return [line.split("\t") for line in output.splitlines()]


@dataclass(frozen=True)
class DissectedRecord:
    """One TLS record as tshark shows it."""

    direction: str
    content_type: int  # on the wire (tshark's opaque_type for TLS 1.3 ciphertext)
    inner_type: int | None  # the decrypted TLS 1.3 content type, with a key log
    handshake_types: tuple[int, ...]


def tls_records(pcap: Path, keylog: Path | None = None) -> list[DissectedRecord]:
    """Return the TLS records of ``pcap`` in order, from tshark's PDML output."""
    options = ("-o", f"tls.keylog_file:{keylog}") if keylog else ()
    packets = ElementTree.fromstring(run_tshark(pcap, *options, "-T", "pdml")).iter("packet")
    return [record for packet in packets for record in _packet_records(packet)]


def _packet_records(packet: ElementTree.Element) -> list[DissectedRecord]:
    """Return the TLS records tshark found in one packet."""
    direction = direction_of(packet.find(".//field[@name='tcp.srcport']").get("show"))
    records = []
    for record in (f for f in packet.iter("field") if f.get("name") == "tls.record"):
        content_type = _number(record, "tls.record.content_type")
        opaque_type = _number(record, "tls.record.opaque_type")
        fields = record.iter("field")
        handshakes = tuple(int(f.get("show")) for f in fields if f.get("name") == "tls.handshake.type")
        if opaque_type is None:
            records.append(DissectedRecord(direction, content_type, None, handshakes))
        else:
            records.append(DissectedRecord(direction, opaque_type, content_type, handshakes))
    return records


def _number(record: ElementTree.Element, name: str) -> int | None:
    """Return the value of the record's field ``name``, or None if it has none."""
    field = record.find(f"field[@name='{name}']")
    return None if field is None else int(field.get("show"))


def direction_of(source_port: str, server_port: int = SERVER_PORT) -> str:
    """Tell a frame's direction from its TCP source port."""
    return "s2c" if int(source_port) == server_port else "c2s"


def follow(pcap: Path) -> dict[str, bytes]:
    """Return each direction's TCP payload as tshark reassembles it."""
    payload = {"c2s": b"", "s2c": b""}
    for line in run_tshark(pcap, "-q", "-z", "follow,tcp,raw,0").splitlines():
        text = line.strip()
        if text and all(c in "0123456789abcdef" for c in text):
            payload["s2c" if line.startswith("\t") else "c2s"] += bytes.fromhex(text)
    return payload


def wire_events(chunks) -> list:
    """Parse chunks with WireSession."""
    session = WireSession()
    for t, direction, data in chunks:
        session.feed(direction, data, t)
    return session.transcript()


@pytest.mark.parametrize(
    ("version", "options"),
    [
        (TLS13, {"request_client_cert": ssl.CERT_OPTIONAL, "alpn": (["h2"], ["h2"])}),
        (TLS12, {"request_client_cert": ssl.CERT_OPTIONAL}),
        (TLS13, {"server_curve": "prime256v1"}),
        (TLS12, {"trust_server": False}),
    ],
    ids=["tls13-cert-optional", "tls12-cert-optional", "tls13-hello-retry", "tls12-unknown-ca"],
)
def test_tshark_sees_the_records_and_messages_the_wire_parser_sees(connect, tmp_path, version, options):
    capture = connect(version, **options)
    pcap = tmp_path / "conversation.pcap"
    write_pcap(pcap, capture.chunks)
    events = wire_events(capture.chunks)

    dissected = tls_records(pcap)
    assert [(r.direction, r.content_type) for r in dissected] == [
        (e.direction, e.content_type) for e in events if isinstance(e, Record)
    ]
    assert [(r.direction, t) for r in dissected for t in r.handshake_types] == [
        (e.direction, e.msg_type) for e in events if isinstance(e, HandshakeMessage)
    ]


@pytest.mark.parametrize(
    ("version", "server_flight", "client_flight"),
    [(TLS13, [2, 8, 13, 11, 15, 20], [1, 11, 20]), (TLS12, [2, 11, 12, 13, 14, 4, 20], [1, 11, 16, 20])],
)
def test_key_log_lets_tshark_decrypt_the_handshake(connect, tmp_path, version, server_flight, client_flight):
    """With the key log, tshark shows what the wire parser could only call encrypted."""
    capture = connect(version, request_client_cert=ssl.CERT_OPTIONAL)
    pcap, keys = tmp_path / "conversation.pcap", tmp_path / "keys.log"
    write_pcap(pcap, capture.chunks)
    write_keylog(keys, capture.keylog.read_text().splitlines())

    dissected = tls_records(pcap, keys)
    for direction, flight in (("s2c", server_flight), ("c2s", client_flight)):
        types = [t for r in dissected if r.direction == direction for t in r.handshake_types]
        assert types[: len(flight)] == flight
    if version == TLS13:
        hidden = [r.inner_type for r in dissected if r.content_type == 23]
        assert set(hidden) == {21, 22, 23}, "every encrypted record decrypts: handshake, data, close_notify"


def test_tcp_conversation_is_well_formed(connect, tmp_path):
    capture = connect(TLS12, request_client_cert=ssl.CERT_OPTIONAL)
    pcap = tmp_path / "conversation.pcap"
    count = write_pcap(pcap, capture.chunks)

    fields = ("tcp.flags", "ip.checksum.status", "tcp.checksum.status", "tcp.analysis.flags")
    checks = ("-o", "ip.check_checksum:TRUE", "-o", "tcp.check_checksum:TRUE")
    rows = tshark(pcap, *fields, "frame.time_epoch", options=checks)
    assert len(rows) == count
    flags = [int(row[0], 16) for row in rows]
    assert flags[:3] == [SYN, SYN_ACK, ACK]
    assert flags[-3:] == [FIN_ACK, FIN_ACK, ACK]
    assert flags.count(PSH_ACK) == len(capture.chunks)
    assert {(row[1], row[2]) for row in rows} == {("1", "1")}, "a checksum is wrong"
    assert not any(row[3] for row in rows), "tshark found TCP sequence trouble"
    data_times = [float(row[4]) for row, flag in zip(rows, flags) if flag == PSH_ACK]
    assert data_times == pytest.approx([t for t, _, _ in capture.chunks], abs=1e-6)
    assert follow(pcap) == {"c2s": capture.stream("c2s"), "s2c": capture.stream("s2c")}


def test_large_chunks_are_split_into_segments(tmp_path):
    pcap = tmp_path / "big.pcap"
    payload = bytes(range(256)) * 20
    write_pcap(pcap, [(10.0, "c2s", payload), (10.5, "s2c", b"ok")])

    rows = tshark(pcap, "tcp.srcport", "tcp.len", "tcp.seq_raw", "tcp.ack_raw")
    data = [row for row in rows if row[1] != "0"]
    assert [(direction_of(r[0]), int(r[1])) for r in data] == [("c2s", 1400)] * 3 + [("c2s", 920), ("s2c", 2)]
    assert [int(r[2]) - CLIENT_ISN for r in data[:4]] == [1, 1401, 2801, 4201]
    assert (int(data[4][2]) - SERVER_ISN, int(data[4][3]) - CLIENT_ISN) == (1, 1 + len(payload))
    assert follow(pcap) == {"c2s": payload, "s2c": b"ok"}


@pytest.mark.parametrize(
    ("options", "ending"),
    [
        ({"closed_by": "server"}, [("s2c", FIN_ACK), ("c2s", FIN_ACK), ("s2c", ACK)]),
        ({"closed_by": "client", "reset": True}, [("c2s", RST_ACK)]),
        ({"closed_by": None}, []),
    ],
)
def test_connection_endings(tmp_path, options, ending):
    pcap = tmp_path / "end.pcap"
    write_pcap(pcap, [(1.0, "c2s", b"hello"), (2.0, "s2c", b"bye")], **options)

    rows = tshark(pcap, "tcp.srcport", "tcp.flags", "tcp.analysis.flags")
    packets = [(direction_of(port), int(flags, 16)) for port, flags, _ in rows]
    assert packets[:5] == [("c2s", SYN), ("s2c", SYN_ACK), ("c2s", ACK), ("c2s", PSH_ACK), ("s2c", PSH_ACK)]
    assert packets[5:] == [("c2s", ACK), *ending]
    assert not any(row[2] for row in rows)


def test_ipv6_endpoints(connect, tmp_path):
    capture = connect(TLS13)
    pcap = tmp_path / "v6.pcap"
    write_pcap(pcap, capture.chunks, client=("::1", 40000), server=("::1", 8443))

    fields = ("tcp.srcport", "tls.handshake.type", "tcp.checksum.status", "ipv6.src")
    rows = tshark(pcap, *fields, options=("-o", "tcp.check_checksum:TRUE"))
    assert [(direction_of(r[0], 8443), r[1]) for r in rows if r[1]] == [("c2s", "1"), ("s2c", "2")]
    assert {(r[2], r[3]) for r in rows} == {("1", "::1")}


def test_file_object_and_path_get_the_same_bytes(tmp_path):
    chunks = [(1.25, "c2s", b"\x16\x03\x01\x00\x00"), (1.5, "s2c", b"\x15\x03\x03\x00\x02\x02\x28")]
    buffer = io.BytesIO()
    write_pcap(buffer, chunks)
    write_pcap(tmp_path / "same.pcap", chunks)

    assert buffer.getvalue() == (tmp_path / "same.pcap").read_bytes()
    assert buffer.getvalue()[:4] == bytes.fromhex("d4c3b2a1")


def test_mismatched_address_families_and_bad_closer_are_refused(tmp_path):
    with pytest.raises(ValueError):
        write_pcap(tmp_path / "x.pcap", [], client=("::1", 1), server=("127.0.0.1", 2))
    with pytest.raises(ValueError):
        write_pcap(tmp_path / "x.pcap", [], closed_by="nobody")


def test_key_log_is_private(tmp_path):
    path = tmp_path / "keys.log"
    path.write_text("old\n")
    os.chmod(path, 0o644)
    write_keylog(path, ["CLIENT_RANDOM aa bb\n", b"SERVER_HANDSHAKE_TRAFFIC_SECRET cc dd"])

    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == "CLIENT_RANDOM aa bb\nSERVER_HANDSHAKE_TRAFFIC_SECRET cc dd\n"
