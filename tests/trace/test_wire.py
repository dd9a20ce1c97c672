"""The wire parser on real TLS traffic (Python's ssl in memory) and on broken streams."""

from __future__ import annotations

import json
import random
import ssl

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from s2npy.trace import tls_names
from s2npy.trace.wire import (
    MAX_RECORD_LENGTH,
    Alert,
    HandshakeMessage,
    Malformed,
    NonTLS,
    Record,
    WireEvent,
    WireSession,
    parse_handshake_body,
)

TLS12, TLS13 = ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3


def parse(chunks, one_byte_at_a_time: bool = False) -> list[WireEvent]:
    """Feed captured chunks to a fresh session and return its transcript."""
    session = WireSession()
    for t, direction, data in chunks:
        for piece in pieces(data, one_byte_at_a_time):
            session.feed(direction, piece, t)
    return session.transcript()


def pieces(data: bytes, one_byte: bool) -> list[bytes]:
    """Split ``data`` into single bytes, or leave it whole."""
    return [data[i : i + 1] for i in range(len(data))] if one_byte else [data]


def plaintext(events: list[WireEvent]) -> list[str]:
    """Name the decoded (non-record) events as 'direction name', in order."""
    return [f"{e.direction} {label(e)}" for e in events if not isinstance(e, Record)]


def label(event: WireEvent) -> str:
    """Name an event: a handshake message by its name, an alert by its description, else its kind."""
    if isinstance(event, HandshakeMessage):
        return event.name
    return f"alert {event.description_name}" if isinstance(event, Alert) else event.kind


def messages(events: list[WireEvent], name: str) -> list[HandshakeMessage]:
    """Return the handshake messages called ``name``."""
    return [e for e in events if isinstance(e, HandshakeMessage) and e.name == name]


def messages_of(events: list[WireEvent], direction: str) -> list[tuple[str, dict]]:
    """Return ``(name, details)`` of one direction's handshake messages."""
    handshake = [e for e in events if isinstance(e, HandshakeMessage)]
    return [(e.name, e.details) for e in handshake if e.direction == direction]


def record(content_type: int, fragment: bytes, version: int = 0x0303) -> bytes:
    """Build one TLS record."""
    return bytes([content_type]) + version.to_bytes(2, "big") + len(fragment).to_bytes(2, "big") + fragment


# ------------------------------------------------------------- real handshakes


def test_tls13_handshake_hides_everything_after_server_hello(connect):
    capture = connect(TLS13, alpn=(["h2"], ["h2", "http/1.1"]))
    events = parse(capture.chunks)

    assert plaintext(events) == [
        "c2s client_hello",
        "s2c server_hello",
        "s2c change_cipher_spec",
        "c2s change_cipher_spec",
    ]
    (hello,) = messages(events, "client_hello")
    assert hello.details["server_name"] == "localhost"
    assert hello.details["alpn"] == ["h2", "http/1.1"]
    assert hello.details["supported_versions"][0] == "TLSv1.3"
    assert hello.details["key_share"] == ["x25519"]
    assert "TLS_AES_128_GCM_SHA256" in hello.details["cipher_suites"]
    assert "rsa_pss_rsae_sha256" in hello.details["signature_algorithms"]
    assert "secp256r1" in hello.details["groups"]
    (server_hello,) = messages(events, "server_hello")
    assert server_hello.details["version"] == "TLSv1.3"
    assert server_hello.details["cipher_suite"] == "TLS_AES_256_GCM_SHA384"
    assert server_hello.details["key_share"] == "x25519"
    after_hello = events[events.index(server_hello) + 1 :]
    records = [e for e in after_hello if isinstance(e, Record) and e.content_type != 20]
    assert len(records) >= 6
    assert all(r.content_type_name == "application_data" and r.encrypted for r in records)


def test_tls12_optional_client_auth_shows_request_and_empty_certificate(connect):
    """The motivating case: CERT_OPTIONAL makes a CertificateRequest, the client answers empty."""
    capture = connect(TLS12, request_client_cert=ssl.CERT_OPTIONAL, alpn=(["h2"], ["h2", "http/1.1"]))
    events = parse(capture.chunks)

    assert plaintext(events) == [
        "c2s client_hello",
        "s2c server_hello",
        "s2c certificate",
        "s2c server_key_exchange",
        "s2c certificate_request",
        "s2c server_hello_done",
        "c2s certificate",
        "c2s client_key_exchange",
        "c2s change_cipher_spec",
        "s2c new_session_ticket",
        "s2c change_cipher_spec",
    ]
    details = {e.direction + " " + e.name: e.details for e in events if isinstance(e, HandshakeMessage)}
    assert details["s2c server_hello"]["version"] == "TLSv1.2"
    assert details["s2c server_hello"]["alpn"] == "h2"
    assert details["s2c certificate"]["subject"] == "CN=localhost,O=s2npy test PKI"
    assert details["s2c server_key_exchange"] == {"group": "x25519"}
    request = details["s2c certificate_request"]
    assert "ecdsa_sign" in request["certificate_types"]
    assert "ecdsa_secp256r1_sha256" in request["signature_algorithms"]
    assert details["c2s certificate"] == {"certificate_count": 0, "empty": True}
    finished = [e for e in events if isinstance(e, Record) and e.content_type == 22 and e.encrypted]
    assert [r.direction for r in finished] == ["c2s", "s2c"]
    data = [e for e in events if isinstance(e, Record) and e.content_type in (21, 23)]
    assert data and all(r.encrypted for r in data)


def test_tls12_client_certificate_is_decoded(connect):
    capture = connect(TLS12, request_client_cert=ssl.CERT_OPTIONAL, client_cert=True)
    events = parse(capture.chunks)

    client_certificate = next(e for e in messages(events, "certificate") if e.direction == "c2s")
    assert client_certificate.details["empty"] is False
    assert client_certificate.details["subject"] == "CN=s2npy test client,O=s2npy test PKI"
    assert "c2s certificate_verify" in plaintext(events)


def test_hello_retry_request_and_second_client_hello(connect):
    """After a HelloRetryRequest the client's decoy ChangeCipherSpec must not hide its second hello."""
    capture = connect(TLS13, server_curve="prime256v1")
    events = parse(capture.chunks)

    assert plaintext(events) == [
        "c2s client_hello",
        "s2c hello_retry_request",
        "s2c change_cipher_spec",
        "c2s change_cipher_spec",
        "c2s client_hello",
        "s2c server_hello",
    ]
    (retry,) = messages(events, "hello_retry_request")
    assert retry.msg_type == 2
    assert retry.details["key_share"] == "secp256r1"
    first, second = messages(events, "client_hello")
    assert (first.details["key_share"], second.details["key_share"]) == (["x25519"], ["secp256r1"])


@pytest.mark.parametrize(
    ("options", "alert"),
    [
        ({"trust_server": False}, "c2s alert unknown_ca"),
        ({"request_client_cert": ssl.CERT_REQUIRED}, "s2c alert handshake_failure"),
        ({"client_min_version": TLS13}, "s2c alert protocol_version"),
    ],
)
def test_failed_handshakes_end_with_a_plaintext_alert(connect, options, alert):
    capture = connect(TLS12, **options)
    events = parse(capture.chunks)

    assert capture.client_error or capture.server_error
    assert plaintext(events)[-1] == alert
    assert events[-1].level_name == "fatal"
    assert events[-1].summary().startswith(alert.replace("alert", "alert fatal"))


@pytest.mark.parametrize(
    ("version", "options"),
    [
        (TLS13, {"request_client_cert": ssl.CERT_OPTIONAL, "alpn": (["h2"], ["h2"])}),
        (TLS12, {"request_client_cert": ssl.CERT_OPTIONAL, "client_cert": True}),
        (TLS13, {"server_curve": "prime256v1"}),
        (TLS12, {"trust_server": False}),
    ],
)
def test_feeding_one_byte_at_a_time_gives_identical_events(connect, version, options):
    capture = connect(version, **options)
    assert parse(capture.chunks, one_byte_at_a_time=True) == parse(capture.chunks)


def test_handshake_messages_split_across_records_or_sharing_one(connect):
    capture = connect(TLS12, request_client_cert=ssl.CERT_OPTIONAL)
    flight = [fragment for header, fragment in capture.records("s2c") if header[0] == 22][:5]
    together = b"".join(flight)
    split = [together[i : i + 50] for i in range(0, len(together), 50)]
    original = messages_of(parse(capture.chunks), "s2c")

    for fragments in ([together], split):
        stream = b"".join(record(22, fragment) for fragment in fragments)
        events = WireSession().feed("s2c", stream, 2.0)
        assert messages_of(events, "s2c") == original[:5]
        assert sum(isinstance(e, Record) for e in events) == len(fragments)


# ----------------------------------------------------------- not TLS at all


@pytest.mark.parametrize(
    ("direction", "stream", "what", "preview"),
    [
        ("c2s", b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n", "http", b"GET / HTTP/1.1"),
        ("s2c", b"HTTP/1.1 400 Bad Request\r\nServer: x\r\n\r\n", "http", b"HTTP/1.1 400 Bad Request"),
        ("c2s", b"SSH-2.0-OpenSSH_9.2p1\r\n", "garbage", b"SSH-2.0-OpenSSH_9.2p1"),
        ("c2s", b"\x16\x01\x00\x00\x00\x00", "garbage", b"\x16\x01\x00\x00\x00\x00"),
    ],
)
def test_non_tls_streams_are_named_and_not_parsed(direction, stream, what, preview):
    for one_byte in (False, True):
        session = WireSession()
        events = [e for piece in pieces(stream, one_byte) for e in session.feed(direction, piece, 1.0)]
        if b"\n" not in stream:
            events += session.feed(direction, b"", 2.0)
        assert [(e.kind, e.what, e.preview) for e in events] == [("non_tls", what, preview)]
        assert session.feed(direction, b"\x16\x03\x01\x00\x00", 3.0) == []
        assert session.unparsed_bytes(direction) == len(stream) + 5


def test_sslv2_client_hello_is_recognised():
    ciphers, challenge = bytes.fromhex("0000ff010080"), bytes(16)
    body = b"\x01\x00\x02" + len(ciphers).to_bytes(2, "big") + b"\x00\x00\x00\x10" + ciphers + challenge
    hello = (0x8000 | len(body)).to_bytes(2, "big") + body

    (event,) = WireSession().feed("c2s", hello, 1.0)
    assert (event.kind, event.what, event.preview) == ("non_tls", "sslv2", hello)


def test_tls_client_meeting_a_plain_http_server(connect):
    capture = connect(TLS13, exchange=False)
    session = WireSession()
    session.feed("c2s", b"".join(capture.records("c2s")[0]), 1.0)
    (event,) = session.feed("s2c", b"HTTP/1.1 400 Bad Request\r\n\r\n", 2.0)

    assert isinstance(event, NonTLS) and event.what == "http"
    assert event.summary() == "s2c non_tls http b'HTTP/1.1 400 Bad Request'"


def test_preview_waits_for_the_line_or_the_end_of_the_stream():
    session = WireSession()
    assert session.feed("c2s", b"GET /", 1.0) == []
    (event,) = session.feed("c2s", b"", 2.0)
    assert (event.what, event.preview, event.t) == ("http", b"GET /", 2.0)


# --------------------------------------------------------------- broken TLS


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (b"\x17\x03\x03" + (MAX_RECORD_LENGTH + 1).to_bytes(2, "big"), "record length 18433 exceeds 18432"),
        (b"\x17\x03\x07\x00\x10", "bad record version 0x0307"),
        (b"\x63\x03\x03\x00\x10", "unknown record content type 99"),
    ],
)
def test_malformed_record_header_stops_the_direction(connect, header, reason):
    capture = connect(TLS13, exchange=False)
    hello = b"".join(capture.records("c2s")[0])
    session = WireSession()

    events = session.feed("c2s", hello + header + b"x" * 20, 1.0)
    assert [e.kind for e in events] == ["record", "handshake", "malformed"]
    assert (events[-1].reason, events[-1].offset) == (reason, len(hello))
    assert session.feed("c2s", hello, 2.0) == []
    assert session.unparsed_bytes("c2s") == len(header) + 20 + len(hello)


def test_stream_ending_inside_a_record_is_reported():
    session = WireSession()
    assert session.feed("s2c", record(21, b"\x02\x28")[:4], 1.0) == []
    (event,) = session.feed("s2c", b"", 2.0)

    assert isinstance(event, Malformed)
    assert "stream ended" in event.reason and event.offset == 0


def test_mangled_handshake_bodies_never_raise(connect):
    capture = connect(TLS12, request_client_cert=ssl.CERT_OPTIONAL, exchange=False)
    server_flight = b"".join(h + f for h, f in capture.records("s2c") if h[0] == 22)
    rng = random.Random(8446)

    for _ in range(300):
        mangled = bytearray(server_flight)
        for _ in range(rng.randint(1, 8)):
            position = rng.randrange(5, len(mangled))
            mangled[position] = rng.randrange(256)
        for event in parse([(1.0, "s2c", bytes(mangled))]):
            json.dumps(event.to_dict())
            event.summary()


def test_truncated_body_becomes_a_decode_error():
    (_, message) = WireSession().feed("c2s", record(22, b"\x01\x00\x00\x04\x03\x03\x00\x00", 0x0301), 1.0)
    assert message.name == "client_hello"
    assert message.details["decode_error"].startswith("needs 32 bytes")


def test_garbled_extension_does_not_hide_the_others():
    """A bad server_name (its host claims 5 bytes, has 2) still leaves ALPN readable."""

    def extension(code: int, data: bytes) -> bytes:
        return code.to_bytes(2, "big") + len(data).to_bytes(2, "big") + data

    extensions = extension(0, b"\x00\x09\x00\x00\x05ab") + extension(16, b"\x00\x03\x02h2")
    body = b"\x03\x03" + bytes(32) + b"\x00" + b"\x00\x02\x13\x01" + b"\x01\x00"
    body += len(extensions).to_bytes(2, "big") + extensions

    name, details = parse_handshake_body(1, body)
    assert name == "client_hello"
    assert details["extensions"] == ["server_name", "application_layer_protocol_negotiation"]
    assert details["alpn"] == ["h2"]
    assert details["decode_error"].startswith("server_name: needs")
    assert "server_name" not in details


def test_alert_record_of_odd_length_is_malformed():
    events = WireSession().feed("s2c", record(21, b"\x02\x28\x02"), 1.0)
    assert [e.kind for e in events] == ["record", "malformed"]
    assert events[-1].offset == 0


# ------------------------------------------------------------ events, names


def test_events_are_json_able_and_summarised(connect):
    capture = connect(TLS12, request_client_cert=ssl.CERT_OPTIONAL)
    events = parse(capture.chunks)

    dicts = [json.loads(json.dumps(e.to_dict())) for e in events]
    assert dicts[0] == {
        "kind": "record",
        "direction": "c2s",
        "t": capture.chunks[0][0],
        "content_type": 22,
        "content_type_name": "handshake",
        "version": 0x0301,
        "length": events[0].length,
        "encrypted": False,
        "note": None,
    }
    assert {d["kind"] for d in dicts} == {"record", "handshake", "change_cipher_spec"}
    assert events[0].summary() == f"c2s record handshake TLSv1.0 len={events[0].length}"
    request = messages(events, "certificate_request")[0].summary()
    assert request.startswith("s2c handshake certificate_request len=")
    assert "\n" not in "".join(e.summary() for e in events)
    assert NonTLS("c2s", 1.0, "http", b"GET \xff").to_dict()["preview"] == "GET \\xff"


def test_certificate_authorities_are_decoded_in_both_forms():
    country = x509.NameAttribute(NameOID.COUNTRY_NAME, "DE")
    authority = x509.Name([country, x509.NameAttribute(NameOID.COMMON_NAME, "Root é")])
    names = [authority.public_bytes(), b"\x30\x01\x00"]
    dn_list = b"".join(len(n).to_bytes(2, "big") + n for n in names)
    authorities = len(dn_list).to_bytes(2, "big") + dn_list
    expected = {"ca_count": 2, "certificate_authorities": ["CN=Root é,C=DE", "undecodable(3 bytes)"]}

    tls12 = b"\x01\x40" + b"\x00\x02\x04\x03" + authorities
    name, details = parse_handshake_body(13, tls12, "TLSv1.2")
    assert name == "certificate_request"
    assert details == {
        "certificate_types": ["ecdsa_sign"],
        "signature_algorithms": ["ecdsa_secp256r1_sha256"],
        **expected,
    }

    extension = b"\x00\x2f" + len(authorities).to_bytes(2, "big") + authorities
    tls13 = b"\x00" + len(extension).to_bytes(2, "big") + extension
    assert parse_handshake_body(13, tls13, "TLSv1.3") == (
        "certificate_request",
        {"context_length": 0, "extensions": ["certificate_authorities"], **expected},
    )


def test_unknown_direction_is_a_caller_error():
    with pytest.raises(ValueError):
        WireSession().feed("up", b"\x16", 1.0)


@pytest.mark.parametrize(
    ("lookup", "code", "name"),
    [
        (tls_names.alert_name, 116, "certificate_required"),
        (tls_names.alert_name, 40, "handshake_failure"),
        (tls_names.alert_name, 120, "no_application_protocol"),
        (tls_names.alert_name, 200, "unknown(0xc8)"),
        (tls_names.cipher_suite_name, 0x1301, "TLS_AES_128_GCM_SHA256"),
        (tls_names.cipher_suite_name, 0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
        (tls_names.cipher_suite_name, 0x1234, "unknown(0x1234)"),
        (tls_names.cipher_suite_name, 0x5A5A, "GREASE(0x5a5a)"),
        (tls_names.group_name, 0x11EC, "X25519MLKEM768"),
        (tls_names.group_name, 0x11EB, "SecP256r1MLKEM768"),
        (tls_names.group_name, 29, "x25519"),
        (tls_names.group_name, 0x0A0A, "GREASE(0x0a0a)"),
        (tls_names.signature_scheme_name, 0x0804, "rsa_pss_rsae_sha256"),
        (tls_names.extension_name, 51, "key_share"),
        (tls_names.extension_name, 0xFAFA, "GREASE(0xfafa)"),
        (tls_names.version_name, 0x0304, "TLSv1.3"),
        (tls_names.handshake_type_name, 13, "certificate_request"),
        (tls_names.content_type_name, 23, "application_data"),
        (tls_names.alert_level_name, 2, "fatal"),
        (tls_names.certificate_type_name, 64, "ecdsa_sign"),
    ],
)
def test_names(lookup, code, name):
    assert lookup(code) == name
