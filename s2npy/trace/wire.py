"""Sans-IO parser of the two byte streams of a TLS connection.

The connection code taps the bytes s2n reads and writes and hands them here; this
module turns them into events a person can read (records, handshake messages,
alerts), so a failed handshake can be explained without a packet capture.  It does
no I/O and keeps no clock: callers pass bytes as they come (in any split, down to
one byte at a time) together with a timestamp, and get back the events those bytes
completed.  Malformed input never raises; it becomes a ``Malformed`` event and the
parser stops reading that direction.

Only plaintext is decoded here.  The parser tracks when each direction starts
encrypting (TLS 1.2: after its ChangeCipherSpec; TLS 1.3: every ``application_data``
record) and reports those records as ``Record(encrypted=True)``.  Given a
``RecordDecryptor`` (``s2npy.trace.decrypt``, which alone knows TLS 1.3 record
protection), the records it can open are followed by the handshake messages and
alerts inside them, flagged ``decrypted=True``.
"""

from __future__ import annotations

import dataclasses
import enum
import struct
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar, Protocol

from cryptography import x509
from cryptography.x509.oid import ObjectIdentifier

from s2npy.trace import tls_names as names

C2S = "c2s"
S2C = "s2c"
DIRECTIONS = (C2S, S2C)

RECORD_HEADER_LENGTH = 5
#: RFC 5246 6.2.3: the largest TLSCiphertext fragment; anything longer means the
#: stream is not (or no longer) TLS.
MAX_RECORD_LENGTH = 2**14 + 2048
#: RFC 8446 4.1.3: a ServerHello with this random is a HelloRetryRequest.
HELLO_RETRY_REQUEST_RANDOM = bytes.fromhex(
    "CF21AD74E59A6111BE1D8C021E65B891C2A211167ABB8C5E079E09E2C8A8339C"
)
#: Longest preview kept of a stream that is not TLS (its first line, at most).
PREVIEW_LENGTH = 64
#: How plaintext HTTP starts, request or response: what a TLS port sees when a
#: client forgets ``https://``, and what a TLS client sees from a plain HTTP server.
HTTP_PREFIXES = (
    b"GET ",
    b"POST ",
    b"HEAD ",
    b"PUT ",
    b"DELETE ",
    b"OPTIONS ",
    b"CONNECT ",
    b"PATCH ",
    b"TRACE ",
    b"PRI * HTTP/2",
    b"HTTP/1.",
)

_CHANGE_CIPHER_SPEC = 20
_ALERT = 21
_HANDSHAKE = 22
_APPLICATION_DATA = 23
_SERVER_HELLO = 2


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class WireEvent:
    """Something the byte streams showed: which direction, and when it completed.

    ``t`` is the timestamp of the ``feed`` call whose bytes completed the event.
    """

    direction: str
    t: float
    kind: ClassVar[str] = "event"

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-able dict of the event, ``kind`` first."""
        fields = dataclasses.asdict(self)
        return {"kind": self.kind, **{k: _jsonable(v) for k, v in fields.items()}}

    def summary(self) -> str:
        """Return one line for a human: direction, kind, and what matters about it."""
        return f"{self.direction} {self.kind} {self._describe()}".rstrip()

    def _describe(self) -> str:
        """Return the event-specific part of ``summary()``."""
        raise NotImplementedError


@dataclass(frozen=True)
class Record(WireEvent):
    """One TLS record header (and, for plaintext, the events decoded from its body follow)."""

    content_type: int
    content_type_name: str
    version: int
    length: int
    encrypted: bool
    #: Why an encrypted record that a key log should have opened was not decrypted.
    note: str | None = None
    kind: ClassVar[str] = "record"

    def _describe(self) -> str:
        state = " encrypted" if self.encrypted else ""
        version = names.version_name(self.version)
        return f"{self.content_type_name} {version} len={self.length}{state}"


@dataclass(frozen=True)
class HandshakeMessage(WireEvent):
    """A complete handshake message, reassembled across records if needed.

    ``details`` holds what was decoded from the body (JSON-able values only);
    ``decrypted`` is True for a message read from inside an encrypted record.
    """

    msg_type: int
    name: str
    length: int
    details: dict[str, Any] = field(hash=False)
    decrypted: bool = False
    kind: ClassVar[str] = "handshake"

    def _describe(self) -> str:
        parts = [self.name, f"len={self.length}"]
        parts += [f"{key}={_short(value)}" for key, value in self.details.items()]
        return " ".join(parts)


@dataclass(frozen=True)
class Alert(WireEvent):
    """An alert; ``decrypted`` is True for one read from inside an encrypted record."""

    level: int
    level_name: str
    description: int
    description_name: str
    decrypted: bool = False
    kind: ClassVar[str] = "alert"

    def _describe(self) -> str:
        return f"{self.level_name} {self.description_name} ({self.description})"


@dataclass(frozen=True)
class ChangeCipherSpec(WireEvent):
    """A ChangeCipherSpec record: TLS 1.2 starts encrypting after it; TLS 1.3 sends it for show."""

    kind: ClassVar[str] = "change_cipher_spec"

    def _describe(self) -> str:
        return ""


@dataclass(frozen=True)
class NonTLS(WireEvent):
    """The direction does not start like TLS: ``what`` is 'http', 'sslv2' or 'garbage'.

    ``preview`` is the stream's first line or SSLv2 record (at most ``PREVIEW_LENGTH`` bytes).
    Nothing after it in that direction is parsed.
    """

    what: str
    preview: bytes
    kind: ClassVar[str] = "non_tls"

    def _describe(self) -> str:
        return f"{self.what} {self.preview!r}"


@dataclass(frozen=True)
class Malformed(WireEvent):
    """The direction stopped making sense at stream ``offset``; nothing after it is parsed."""

    reason: str
    offset: int
    kind: ClassVar[str] = "malformed"

    def _describe(self) -> str:
        return f"at offset {self.offset}: {self.reason}"


def _jsonable(value: Any) -> Any:
    """Make bytes readable in JSON (as escaped ASCII); leave other values alone."""
    if isinstance(value, bytes):
        return value.decode("ascii", "backslashreplace")
    return value


def _short(value: Any, most: int = 4) -> str:
    """Render a detail value compactly for a one-line summary."""
    if not isinstance(value, list):
        return str(value)
    shown = ",".join(str(item) for item in value[:most])
    return shown + (f",+{len(value) - most}" if len(value) > most else "")


# ----------------------------------------------------------------- body decoding


class _Truncated(ValueError):
    """A structure claimed more bytes than it has."""


class _Reader:
    """A bounds-checked cursor over a TLS (or DER) structure.

    Every read past the end raises ``_Truncated``, so decoders can be written as
    straight-line code and one ``except ValueError`` covers all malformed input.
    """

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def __bool__(self) -> bool:
        return self._pos < len(self._data)

    def take(self, size: int) -> bytes:
        """Return the next ``size`` bytes."""
        end = self._pos + size
        if end > len(self._data):
            raise _Truncated(f"needs {size} bytes at {self._pos}, has {len(self._data) - self._pos}")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def uint(self, size: int) -> int:
        """Return the next big-endian unsigned integer of ``size`` bytes."""
        return int.from_bytes(self.take(size), "big")

    def vector(self, length_size: int) -> _Reader:
        """Return a reader over the next TLS vector whose length prefix has ``length_size`` bytes."""
        return _Reader(self.take(self.uint(length_size)))

    def rest(self) -> bytes:
        """Return all bytes not read yet."""
        return self.take(len(self._data) - self._pos)

    def uints(self, size: int) -> list[int]:
        """Return the rest as a list of ``size``-byte integers."""
        values = []
        while self:
            values.append(self.uint(size))
        return values

    def vectors(self, length_size: int) -> list[bytes]:
        """Return the rest as a list of vectors with ``length_size``-byte prefixes."""
        items = []
        while self:
            items.append(self.vector(length_size).rest())
        return items


@dataclass(frozen=True)
class _Negotiated:
    """What the ServerHello settled so far, which changes how later messages read."""

    version: str | None = None
    cipher_suite: str | None = None

    @property
    def tls13(self) -> bool:
        """True once a ServerHello or HelloRetryRequest chose TLS 1.3."""
        return self.version == names.version_name(names.TLS1_3)

    @property
    def before_tls12(self) -> bool:
        """True if a version older than TLS 1.2 was chosen (no signature_algorithms yet)."""
        return self.version in {names.version_name(code) for code in (0x0300, 0x0301, 0x0302)}


_Decoder = Callable[[_Reader], dict[str, Any]]


def _store(key: str, decode: Callable[[_Reader], Any]) -> _Decoder:
    """Make an extension decoder that stores ``decode(reader)`` under ``key``."""
    return lambda reader: {key: decode(reader)}


def _code_list(length_size: int, name: Callable[[int], str]) -> Callable[[_Reader], list[str]]:
    """Decode a vector of 16-bit code points into their names."""
    return lambda reader: [name(code) for code in reader.vector(length_size).uints(2)]


def _first_code(name: Callable[[int], str]) -> Callable[[_Reader], str]:
    """Decode the leading 16-bit code point of a structure into its name."""
    return lambda reader: name(reader.uint(2))


def _server_name(reader: _Reader) -> str:
    """Return the host name of a server_name extension (RFC 6066 3)."""
    names_list = reader.vector(2)
    while names_list:
        name_type, host = names_list.uint(1), names_list.vector(2).rest()
        if name_type == 0:
            return host.decode("ascii", "backslashreplace")
    raise ValueError("server_name has no host_name entry")


def _alpn_protocols(reader: _Reader) -> list[str]:
    """Return the protocol names of an ALPN extension (RFC 7301)."""
    return [p.decode("ascii", "backslashreplace") for p in reader.vector(2).vectors(1)]


def _selected_alpn(reader: _Reader) -> str:
    """Return the one protocol a server's ALPN extension selects."""
    protocols = _alpn_protocols(reader)
    if len(protocols) != 1:
        raise ValueError(f"server ALPN lists {len(protocols)} protocols, not 1")
    return protocols[0]


def _key_share_groups(reader: _Reader) -> list[str]:
    """Return the groups of a ClientHello key_share extension's entries."""
    shares = reader.vector(2)
    groups = []
    while shares:
        groups.append(names.group_name(shares.uint(2)))
        shares.vector(2)
    return groups


def _certificate_authorities(reader: _Reader) -> dict[str, Any]:
    """Decode a DistinguishedName list (TLS 1.2 CertificateRequest, TLS 1.3 extension)."""
    authorities = reader.vector(2).vectors(2)
    return {
        "ca_count": len(authorities),
        "certificate_authorities": [_distinguished_name(der) for der in authorities],
    }


_CLIENT_HELLO_EXTENSIONS: Mapping[int, _Decoder] = {
    0: _store("server_name", _server_name),
    43: _store("supported_versions", _code_list(1, names.version_name)),
    10: _store("groups", _code_list(2, names.group_name)),
    51: _store("key_share", _key_share_groups),
    13: _store("signature_algorithms", _code_list(2, names.signature_scheme_name)),
    16: _store("alpn", _alpn_protocols),
}

# The key_share of a ServerHello starts with the chosen group, and a
# HelloRetryRequest's holds only that group: one decoder reads both.
_SERVER_HELLO_EXTENSIONS: Mapping[int, _Decoder] = {
    43: _store("version", _first_code(names.version_name)),
    51: _store("key_share", _first_code(names.group_name)),
    16: _store("alpn", _selected_alpn),
}

_ENCRYPTED_EXTENSIONS: Mapping[int, _Decoder] = {16: _store("alpn", _selected_alpn)}

_CERTIFICATE_REQUEST_EXTENSIONS: Mapping[int, _Decoder] = {
    13: _store("signature_algorithms", _code_list(2, names.signature_scheme_name)),
    47: _certificate_authorities,
}


def _extensions(reader: _Reader, decoders: Mapping[int, _Decoder]) -> dict[str, Any]:
    """Read an extensions block: list their names and decode the ones in ``decoders``.

    A garbled extension is noted as ``decode_error`` without hiding the others.
    """
    block = reader.vector(2) if reader else _Reader(b"")
    found = []
    while block:
        found.append((block.uint(2), block.vector(2)))
    details: dict[str, Any] = {"extensions": [names.extension_name(code) for code, _ in found]}
    for code, body in found:
        decode = decoders.get(code)
        try:
            details.update(decode(body) if decode else {})
        except ValueError as error:
            details.setdefault("decode_error", f"{names.extension_name(code)}: {error}")
    return details


def _client_hello(reader: _Reader, _negotiated: _Negotiated) -> dict[str, Any]:
    """Decode a ClientHello: what the client offers."""
    legacy_version = reader.uint(2)
    reader.take(32)
    session_id = reader.vector(1).rest()
    suites = reader.vector(2).uints(2)
    reader.vector(1)
    return {
        "legacy_version": names.version_name(legacy_version),
        "session_id_length": len(session_id),
        "cipher_suites": [names.cipher_suite_name(code) for code in suites],
        **_extensions(reader, _CLIENT_HELLO_EXTENSIONS),
    }


def _server_hello(reader: _Reader, _negotiated: _Negotiated) -> dict[str, Any]:
    """Decode a ServerHello or HelloRetryRequest: what the server chose."""
    legacy_version = reader.uint(2)
    random = reader.take(32)
    session_id = reader.vector(1).rest()
    suite = reader.uint(2)
    reader.uint(1)
    details = {
        "hello_retry_request": random == HELLO_RETRY_REQUEST_RANDOM,
        "version": names.version_name(legacy_version),
        "cipher_suite": names.cipher_suite_name(suite),
        "session_id_length": len(session_id),
    }
    details.update(_extensions(reader, _SERVER_HELLO_EXTENSIONS))
    return details


def _certificate(reader: _Reader, negotiated: _Negotiated) -> dict[str, Any]:
    """Decode a Certificate: how many certificates, whether empty, the first subject.

    An empty Certificate is how a client without a certificate answers a
    CertificateRequest, the crux of optional client authentication.
    """
    if negotiated.tls13:
        reader.vector(1)
    entries = reader.vector(3)
    certificates = []
    while entries:
        certificates.append(entries.vector(3).rest())
        if negotiated.tls13:
            entries.vector(2)
    details: dict[str, Any] = {"certificate_count": len(certificates), "empty": not certificates}
    if certificates:
        details["subject"] = _certificate_subject(certificates[0])
    return details


def _certificate_request(reader: _Reader, negotiated: _Negotiated) -> dict[str, Any]:
    """Decode a CertificateRequest: which certificates the server would accept."""
    if negotiated.tls13:
        context = reader.vector(1).rest()
        return {"context_length": len(context), **_extensions(reader, _CERTIFICATE_REQUEST_EXTENSIONS)}
    types = reader.vector(1).uints(1)
    details: dict[str, Any] = {"certificate_types": [names.certificate_type_name(c) for c in types]}
    if not negotiated.before_tls12:
        details["signature_algorithms"] = _code_list(2, names.signature_scheme_name)(reader)
    details.update(_certificate_authorities(reader))
    return details


def _certificate_verify(reader: _Reader, negotiated: _Negotiated) -> dict[str, Any]:
    """Decode a CertificateVerify: the signature scheme the sender proved its key with."""
    scheme = {} if negotiated.before_tls12 else {"signature_scheme": names.signature_scheme_name(reader.uint(2))}
    return {**scheme, "signature_length": len(reader.vector(2).rest())}


def _encrypted_extensions(reader: _Reader, _negotiated: _Negotiated) -> dict[str, Any]:
    """Decode a TLS 1.3 EncryptedExtensions: the server's extensions, the selected ALPN."""
    return _extensions(reader, _ENCRYPTED_EXTENSIONS)


def _server_key_exchange(reader: _Reader, negotiated: _Negotiated) -> dict[str, Any]:
    """Decode the start of a ServerKeyExchange: the ECDHE group or the DHE prime size."""
    suite = negotiated.cipher_suite or ""
    if "_ECDHE_" in suite:
        curve_type = reader.uint(1)
        if curve_type != 3:
            return {"curve_type": curve_type}
        return {"group": names.group_name(reader.uint(2))}
    if "_DHE_" in suite:
        return {"dh_prime_bits": len(reader.vector(2).rest()) * 8}
    return {}


_BODY_DECODERS: Mapping[int, Callable[[_Reader, _Negotiated], dict[str, Any]]] = {
    1: _client_hello,
    2: _server_hello,
    8: _encrypted_extensions,
    11: _certificate,
    12: _server_key_exchange,
    13: _certificate_request,
    15: _certificate_verify,
}


def parse_handshake_body(
    msg_type: int, body: bytes, version: str | None = None, cipher_suite: str | None = None
) -> tuple[str, dict[str, Any]]:
    """Return ``(name, details)`` of one handshake message body.

    ``version`` and ``cipher_suite`` are what the ServerHello chose (names as in
    ``tls_names``); they decide between the TLS 1.2 and TLS 1.3 forms of Certificate
    and CertificateRequest and how a ServerKeyExchange reads.  Public so that
    handshake messages obtained another way (for example decrypted TLS 1.3 ones) are
    described the same way.  A body that does not decode yields
    ``{'decode_error': reason}`` instead of raising.
    """
    decode = _BODY_DECODERS.get(msg_type)
    try:
        details = decode(_Reader(body), _Negotiated(version, cipher_suite)) if decode else {}
    except ValueError as error:
        details = {"decode_error": str(error)}
    if details.pop("hello_retry_request", False):
        return names.HELLO_RETRY_REQUEST, details
    return names.handshake_type_name(msg_type), details


# -------------------------------------------------------------- X.509 names


#: DER string tags used in X.509 names and the codecs that decode them.
_DER_STRING_CODECS: Mapping[int, str] = {
    12: "utf-8",  # UTF8String
    19: "ascii",  # PrintableString
    20: "latin-1",  # TeletexString (in practice)
    22: "ascii",  # IA5String
    26: "ascii",  # VisibleString
    28: "utf-32-be",  # UniversalString
    30: "utf-16-be",  # BMPString
}


def _der_items(data: bytes) -> Iterator[tuple[int, bytes]]:
    """Split DER into ``(tag, content)`` pairs (single-byte tags, definite lengths)."""
    reader = _Reader(data)
    while reader:
        tag, length = reader.uint(1), reader.uint(1)
        if length & 0x80:
            length = reader.uint(length & 0x7F)
        yield tag, reader.take(length)


def _der_oid(content: bytes) -> str:
    """Decode the content of a DER OBJECT IDENTIFIER into dotted form."""
    arcs, value = [], 0
    for byte in content:
        value = value << 7 | byte & 0x7F
        if not byte & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        raise ValueError("empty OID")
    first = min(arcs[0] // 40, 2)
    return ".".join(map(str, [first, arcs[0] - 40 * first, *arcs[1:]]))


def _der_attribute(der: bytes) -> x509.NameAttribute:
    """Decode one AttributeTypeAndValue of a Name."""
    (oid_tag, oid), (value_tag, value) = _der_items(der)
    if oid_tag != 0x06 or value_tag not in _DER_STRING_CODECS:
        raise ValueError(f"unsupported name attribute (tags {oid_tag}, {value_tag})")
    text = value.decode(_DER_STRING_CODECS[value_tag])
    return x509.NameAttribute(ObjectIdentifier(_der_oid(oid)), text)


def _distinguished_name(der: bytes) -> str:
    """Return a DER X.509 Name as an RFC 4514 string, or ``'undecodable(N bytes)'``.

    ``cryptography`` has no public Name-from-DER loader, so the (simple, regular)
    Name structure is walked here and rebuilt as ``x509.Name`` for its formatting.
    """
    try:
        ((_, sequence),) = _der_items(der)
        rdns = [
            x509.RelativeDistinguishedName([_der_attribute(atv) for _, atv in _der_items(rdn)])
            for _, rdn in _der_items(sequence)
        ]
        return x509.Name(rdns).rfc4514_string()
    except ValueError:
        return f"undecodable({len(der)} bytes)"


def _certificate_subject(der: bytes) -> str:
    """Return the subject of a DER certificate, or ``'undecodable(N bytes)'``.

    ``cryptography`` parses lazily and a damaged certificate can make it raise more
    than ``ValueError`` (``KeyError`` was seen); a trace must not die of it.
    """
    try:
        return x509.load_der_x509_certificate(der).subject.rfc4514_string()
    except Exception:  # noqa: BLE001 - any failure of the third-party parser means "undecodable"
        return f"undecodable({len(der)} bytes)"


# ------------------------------------------------------------------- streams


def classify_start(prefix: bytes) -> str | None:
    """Tell what a stream starting with ``prefix`` speaks, or None while undecided.

    Returns 'tls' (a record header: known content type, major version 3), 'sslv2'
    (the two-byte SSLv2 header with its high bit set, then CLIENT-HELLO), 'http', or
    'garbage'.  The answer depends only on the prefix, so it does not change with
    how the stream was split.
    """
    if not prefix:
        return None
    first = prefix[0]
    if first in names.CONTENT_TYPES:
        return None if len(prefix) < 2 else ("tls" if prefix[1] == 3 else "garbage")
    if first & 0x80:
        return None if len(prefix) < 3 else ("sslv2" if prefix[2] == 1 else "garbage")
    if any(prefix.startswith(start) for start in HTTP_PREFIXES):
        return "http"
    if any(start.startswith(prefix) for start in HTTP_PREFIXES):
        return None
    return "garbage"


def _preview(buffer: bytes, what: str, at_eof: bool) -> bytes | None:
    """Return the preview of a non-TLS stream, or None while it may still grow.

    The preview is the SSLv2 record (its header tells its length), or else the first
    line without its end; at most ``PREVIEW_LENGTH`` bytes, or what came before the
    stream ended.  It depends on the stream only, not on how it was split.
    """
    newline = buffer.find(b"\n")
    if what == "sslv2":
        end = 2 + (int.from_bytes(buffer[:2], "big") & 0x7FFF)
    else:
        end = newline if newline >= 0 else PREVIEW_LENGTH
    end = min(end, PREVIEW_LENGTH)
    if len(buffer) < end and not at_eof:
        return None
    return buffer[:end].rstrip(b"\r") if end == newline else buffer[:end]


def _header_problem(content_type: int, version: int, length: int) -> str | None:
    """Say what is wrong with a record header, or None if it is plausible."""
    if content_type not in names.CONTENT_TYPES:
        return f"unknown record content type {content_type}"
    if version >> 8 != 3 or version & 0xFF > 4:
        return f"bad record version 0x{version:04x}"
    if length > MAX_RECORD_LENGTH:
        return f"record length {length} exceeds {MAX_RECORD_LENGTH}"
    return None


class _Mode(enum.Enum):
    """Where a direction's parser is."""

    DETECT = "detect"  # too few bytes to tell whether this is TLS
    PREVIEW = "preview"  # not TLS; collecting the first line for the NonTLS event
    TLS = "tls"  # reading records
    STOPPED = "stopped"  # gave up (non-TLS, malformed, or ended): only counting bytes


@dataclass
class _Stream:
    """Reassembly state of one direction."""

    direction: str
    mode: _Mode = _Mode.DETECT
    buffer: bytearray = field(default_factory=bytearray)
    offset: int = 0  # stream offset of buffer[0]
    non_tls: str = ""  # what classify_start() said, in PREVIEW mode
    changed_cipher_spec: bool = False
    handshake: bytearray = field(default_factory=bytearray)  # partial handshake messages
    unparsed: int = 0  # bytes received after the parser gave up


class RecordDecryptor(Protocol):
    """Opens protected records for a ``WireSession`` (implemented in ``s2npy.trace.decrypt``)."""

    def observe(self, message: HandshakeMessage, body: bytes) -> None:
        """Learn from every handshake message (randoms, chosen cipher, Finished)."""

    def decrypt(self, direction: str, header: bytes, fragment: bytes) -> tuple[int, bytes] | str | None:
        """Return ``(inner content type, plaintext)`` of a handshake or alert record, a note
        saying why it could not be opened, or None if it is not meant to be opened."""


class WireSession:
    """Parse both directions of one TLS connection into ``WireEvent`` objects.

    Feed it what each side sent, in the order it happened across directions (the
    record layer of one direction depends on the other's ServerHello)::

        session = WireSession()
        for event in session.feed("c2s", client_bytes, time.monotonic()):
            print(event.summary())

    Feeding ``b""`` tells that the direction ended (its sender closed); a partial
    record left then is reported as ``Malformed``.  With a ``decryptor``, each
    encrypted record it opens is followed by the events decoded from its plaintext.
    """

    def __init__(self, decryptor: RecordDecryptor | None = None) -> None:
        self._streams = {direction: _Stream(direction) for direction in DIRECTIONS}
        self._events: list[WireEvent] = []
        self._negotiated = _Negotiated()
        self._decryptor = decryptor

    def feed(self, direction: str, data: bytes, t: float) -> list[WireEvent]:
        """Take the next bytes sent in ``direction`` ('c2s' or 's2c') at time ``t``.

        Returns the events these bytes completed, in order; never raises on bad
        data (``ValueError`` only for an unknown direction).
        """
        if direction not in self._streams:
            raise ValueError(f"direction must be one of {DIRECTIONS}, not {direction!r}")
        stream = self._streams[direction]
        data = bytes(data)
        if stream.mode is _Mode.STOPPED:
            stream.unparsed += len(data)
            return []
        stream.buffer += data
        events = list(self._advance(stream, t, at_eof=not data))
        if not data:
            stream.mode = _Mode.STOPPED
        self._events.extend(events)
        return events

    def transcript(self) -> list[WireEvent]:
        """Return every event so far, in the order they were produced."""
        return list(self._events)

    def unparsed_bytes(self, direction: str) -> int:
        """Return how many bytes of ``direction`` were not parsed (after NonTLS or Malformed)."""
        return self._streams[direction].unparsed

    def _advance(self, stream: _Stream, t: float, at_eof: bool) -> Iterator[WireEvent]:
        """Run the stream's state machine as far as its buffered bytes allow."""
        if stream.mode is _Mode.DETECT:
            yield from self._detect(stream, t, at_eof)
        if stream.mode is _Mode.PREVIEW:
            yield from self._non_tls(stream, t, at_eof)
        if stream.mode is _Mode.TLS:
            yield from self._records(stream, t, at_eof)

    def _stop(self, stream: _Stream, event: WireEvent) -> WireEvent:
        """Stop parsing ``stream`` (its buffered bytes count as unparsed) and pass ``event`` on."""
        stream.mode = _Mode.STOPPED
        stream.unparsed += len(stream.buffer)
        stream.buffer.clear()
        return event

    def _detect(self, stream: _Stream, t: float, at_eof: bool) -> Iterator[WireEvent]:
        """Decide whether the stream speaks TLS."""
        what = classify_start(bytes(stream.buffer))
        if what == "tls":
            stream.mode = _Mode.TLS
        elif what is not None:
            stream.mode, stream.non_tls = _Mode.PREVIEW, what
        elif at_eof and stream.buffer:
            reason = f"stream ended after {len(stream.buffer)} bytes, too few to tell what it is"
            yield self._stop(stream, Malformed(stream.direction, t, reason, stream.offset))

    def _non_tls(self, stream: _Stream, t: float, at_eof: bool) -> Iterator[WireEvent]:
        """Report a non-TLS stream once its preview line is complete."""
        preview = _preview(bytes(stream.buffer), stream.non_tls, at_eof)
        if preview is not None:
            yield self._stop(stream, NonTLS(stream.direction, t, stream.non_tls, preview))

    def _records(self, stream: _Stream, t: float, at_eof: bool) -> Iterator[WireEvent]:
        """Cut complete records off the buffer and decode them."""
        buffer = stream.buffer
        while len(buffer) >= RECORD_HEADER_LENGTH:
            content_type, version, length = struct.unpack_from("!BHH", buffer)
            problem = _header_problem(content_type, version, length)
            if problem:
                yield self._stop(stream, Malformed(stream.direction, t, problem, stream.offset))
                return
            end = RECORD_HEADER_LENGTH + length
            if len(buffer) < end:
                break
            fragment = bytes(buffer[RECORD_HEADER_LENGTH:end])
            del buffer[:end]
            stream.offset += end
            yield from self._record(stream, t, content_type, version, fragment)
        if at_eof and buffer:
            reason = f"stream ended inside a record ({len(buffer)} bytes of it received)"
            yield self._stop(stream, Malformed(stream.direction, t, reason, stream.offset))

    def _is_encrypted(self, stream: _Stream, content_type: int) -> bool:
        """Tell whether a record of ``content_type`` in ``stream`` is ciphertext.

        application_data is always ciphertext (and in TLS 1.3 hides the encrypted
        handshake and alerts).  Otherwise a direction encrypts after its
        ChangeCipherSpec, except in TLS 1.3 where that record is only a
        middlebox-compatibility decoy (it may even precede a second ClientHello).
        """
        if content_type == _APPLICATION_DATA:
            return True
        return stream.changed_cipher_spec and not self._negotiated.tls13

    def _record(
        self, stream: _Stream, t: float, content_type: int, version: int, fragment: bytes
    ) -> Iterator[WireEvent]:
        """Report one record, then what its plaintext (or decrypted) body holds."""
        encrypted = self._is_encrypted(stream, content_type)
        opened = None
        if encrypted and self._decryptor is not None:
            header = struct.pack("!BHH", content_type, version, len(fragment))
            opened = self._decryptor.decrypt(stream.direction, header, fragment)
        yield Record(
            stream.direction,
            t,
            content_type,
            names.content_type_name(content_type),
            version,
            len(fragment),
            encrypted,
            opened if isinstance(opened, str) else None,
        )
        if isinstance(opened, tuple):
            content_type, fragment = opened
        elif encrypted:
            return
        decrypted = opened is not None
        if content_type == _HANDSHAKE:
            yield from self._handshake(stream, t, fragment, decrypted)
        elif content_type == _ALERT:
            yield from self._alerts(stream, t, fragment, decrypted)
        elif content_type == _CHANGE_CIPHER_SPEC:
            stream.changed_cipher_spec = True
            yield ChangeCipherSpec(stream.direction, t)

    def _handshake(self, stream: _Stream, t: float, fragment: bytes, decrypted: bool) -> Iterator[WireEvent]:
        """Reassemble handshake messages, which may span records or share one."""
        pending = stream.handshake
        pending += fragment
        while len(pending) >= 4:
            msg_type, length = pending[0], int.from_bytes(pending[1:4], "big")
            if len(pending) < 4 + length:
                break
            body = bytes(pending[4 : 4 + length])
            del pending[: 4 + length]
            yield self._message(stream, t, msg_type, body, decrypted)

    def _message(self, stream: _Stream, t: float, msg_type: int, body: bytes, decrypted: bool) -> HandshakeMessage:
        """Describe one handshake message, note what a ServerHello negotiated, tell the decryptor."""
        negotiated = self._negotiated
        name, details = parse_handshake_body(msg_type, body, negotiated.version, negotiated.cipher_suite)
        if msg_type == _SERVER_HELLO and "cipher_suite" in details:
            self._negotiated = _Negotiated(details["version"], details["cipher_suite"])
        message = HandshakeMessage(stream.direction, t, msg_type, name, len(body), details, decrypted)
        if self._decryptor is not None:
            self._decryptor.observe(message, body)
        return message

    def _alerts(self, stream: _Stream, t: float, fragment: bytes, decrypted: bool) -> Iterator[WireEvent]:
        """Decode the (level, description) pairs of an alert record."""
        if not fragment or len(fragment) % 2:
            reason = f"alert record of {len(fragment)} bytes (alerts are 2 bytes each)"
            record_start = stream.offset - RECORD_HEADER_LENGTH - len(fragment)
            yield self._stop(stream, Malformed(stream.direction, t, reason, record_start))
            return
        for level, description in zip(fragment[::2], fragment[1::2]):
            yield Alert(
                stream.direction,
                t,
                level,
                names.alert_level_name(level),
                description,
                names.alert_name(description),
                decrypted,
            )
