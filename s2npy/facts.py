"""``NegotiatedFacts``: everything s2n can say about a connection, as one snapshot."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any

from ._native import ffi, lib
from .enums import PROTOCOL_NAMES
from .errors import clear_error

if TYPE_CHECKING:
    from cryptography import x509


@dataclass(frozen=True)
class NegotiatedFacts:
    """A snapshot of a connection's negotiated parameters and handshake state.

    ``protocol`` uses the names of ``ssl.SSLSocket.version()`` ("TLSv1.3").
    ``cipher`` is s2n's name (OpenSSL style, e.g. "TLS_AES_128_GCM_SHA256"),
    ``cipher_iana`` its two-byte IANA value. ``group`` is the key exchange group
    (a hybrid KEM group such as "X25519MLKEM768" when one was negotiated).
    ``client_cert_sent`` says whether the client sent a non-empty Certificate;
    ``peer_cert_chain`` is the peer's chain (leaf first) as
    ``cryptography.x509.Certificate`` objects (from a connection: a
    :class:`PeerCertChain`, read when first used). ``alert`` is the alert code
    received from the peer, if any. Wire byte counts include TLS framing.
    """

    mode: str
    handshake_complete: bool
    protocol: str | None
    protocol_version: int
    client_protocol: str | None
    server_protocol: str | None
    cipher: str | None
    cipher_iana: int | None
    group: str | None
    signature_scheme: str | None
    alpn: str | None
    server_name: str | None
    handshake_type: str | None
    last_message: str | None
    client_cert_sent: bool
    # No defaults: a class-level default would hide a lazy field from __getattr__ (see below).
    peer_cert_chain: Sequence[x509.Certificate] = field(repr=False)
    session_resumed: bool
    alert: int | None
    wire_bytes_in: int
    wire_bytes_out: int

    def __getattr__(self, name: str) -> Any:
        """Facts from :func:`facts_from_struct` decode their C snapshot when a field is first read."""
        state = self.__dict__
        raw = state.get("_raw")
        if raw is None or name.startswith("__"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        state.update(_decode(raw, state["_chain"]))
        state.pop("_raw", None)
        state.pop("_chain", None)
        return getattr(self, name)

    def __getstate__(self) -> dict[str, Any]:
        """Decoded fields only (for pickle and copy): the C snapshot does not travel."""
        self.mode  # noqa: B018 - decodes a lazy snapshot
        return dict(self.__dict__)

    @property
    def client_cert_chain(self) -> Sequence[x509.Certificate]:
        """The client's certificate chain as seen by a server (empty if none was sent)."""
        return self.peer_cert_chain if self.mode == "server" and self.client_cert_sent else []

    @property
    def alert_name(self) -> str | None:
        if self.alert is None:
            return None
        from .trace.tls_names import alert_name

        return alert_name(self.alert)

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form: certificates become their subjects."""
        data = asdict(replace(self, peer_cert_chain=[]))
        data["peer_cert_chain"] = [cert.subject.rfc4514_string() for cert in self.peer_cert_chain]
        data["alert_name"] = self.alert_name
        return data


class PeerCertChain(Sequence):
    """The peer's certificate chain, read from s2n and parsed when first used.

    Copying a chain out of s2n costs more than all the other facts together
    (s2n re-encodes every certificate), and most handshakes never look at it,
    so ``Connection.facts()`` hands out this view. ``load`` returns the DER
    certificates; the connection calls :meth:`capture` before it frees the
    ``s2n_connection``, so a view that outlives its connection still has them.
    Parsing them (``cryptography``) waits until they are used. A trace keeps
    its facts, so a traced ``negotiate()`` captures the chain as it returns.
    """

    # Until read: no DER certificates, none parsed (class defaults, replaced when read, never
    # mutated). So a view is only its ``_load``: ConnectionCore (s2npy._datapath) makes the
    # connections' views as object.__new__ and that one attribute, without this __init__.
    _ders: list[bytes] = []
    _certs: list[x509.Certificate] | None = None

    def __init__(self, load: Callable[[], list[bytes]]) -> None:
        self._load: Callable[[], list[bytes]] | None = load

    @property
    def loaded(self) -> bool:
        """True once the chain was read (it no longer follows the connection)."""
        return self._load is None

    def capture(self) -> None:
        """Copy the DER certificates out of s2n now (once), without parsing them."""
        if self._load is not None:
            load, self._load = self._load, None
            self._ders = load()

    def materialise(self) -> list[x509.Certificate]:
        """Read (once) and parse the chain; the certificates, leaf first."""
        if self._certs is None:
            self.capture()
            self._certs = _parse_ders(self._ders)
        return self._certs

    def __getitem__(self, index):
        return self.materialise()[index]

    def __len__(self) -> int:
        return len(self.materialise())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and self.materialise() == list(other)

    def __repr__(self) -> str:
        return f"PeerCertChain({self.materialise()!r})"


def _parse_ders(ders: list[bytes]) -> list[x509.Certificate]:
    if not ders:
        return []
    from cryptography import x509

    return [x509.load_der_x509_certificate(der) for der in ders]


def peer_cert_ders(conn_ptr) -> list[bytes]:
    """The peer's chain of a live ``s2n_connection *`` as DER certificates, leaf first.

    A server whose client sent no certificate (the common case) answers at once:
    the chain copy allocates an ``s2n_cert_chain_and_key`` (~26 us) only to fail.
    """
    if lib.s2n_connection_get_mode(conn_ptr) == lib.S2N_SERVER and lib.s2n_connection_client_cert_used(conn_ptr) != 1:
        clear_error()
        return []
    buffer = bytearray(_CHAIN_BUFFER)
    needed = lib.s2npy_peer_chain_der(conn_ptr, ffi.from_buffer(buffer), len(buffer))
    if needed > len(buffer):  # a chain larger than usual: once more with the room it needs
        buffer = bytearray(needed)
        needed = lib.s2npy_peer_chain_der(conn_ptr, ffi.from_buffer(buffer), len(buffer))
    if needed < 0:
        return _raw_client_chain(conn_ptr)
    return _split_tls_chain(bytes(buffer[:needed]))


#: Room for a peer chain in one call (typical chains: 2-6 KiB).
_CHAIN_BUFFER = 16384


def _raw_client_chain(conn_ptr) -> list[bytes]:
    """A server's view of the client chain when it was not validated (verification off)."""
    clear_error()
    data, length = ffi.new("uint8_t **"), ffi.new("uint32_t *")
    if lib.s2n_connection_get_client_cert_chain(conn_ptr, data, length) != lib.S2N_SUCCESS or not length[0]:
        clear_error()
        return []
    return _split_tls_chain(ffi.unpack(ffi.cast("char *", data[0]), length[0]))


def _split_tls_chain(raw: bytes) -> list[bytes]:
    """DER certificates from their TLS encoding: each one after its 3-byte length."""
    ders, offset = [], 0
    while offset + 3 <= len(raw):
        size = int.from_bytes(raw[offset:offset + 3], "big")
        ders.append(raw[offset + 3:offset + 3 + size])
        offset += 3 + size
    return ders


def read_facts(conn_ptr, chain: Sequence[x509.Certificate]) -> NegotiatedFacts:
    """Read every fact from an ``s2n_connection *`` (safe at any point of its life).

    One C call (``s2npy_read_facts``) fills a struct with every getter's result:
    every handshake reads its facts, and ~20 separate crossings cost more than
    the struct. ``chain`` is the facts' peer chain (a lazy :class:`PeerCertChain`
    from a connection, or ``[]``).
    """
    raw = ffi.new("struct s2npy_facts *")
    lib.s2npy_read_facts(conn_ptr, raw)
    return facts_from_struct(raw, chain)


_FACTS_POINTER = ffi.typeof("struct s2npy_facts *")
#: The strings of ``struct s2npy_facts``, in the order C packs them into its ``text``.
_TEXT_FIELDS = ("cipher", "group", "signature_scheme", "alpn", "server_name", "handshake_type", "last_message")


def facts_from_struct(raw, chain: Sequence[x509.Certificate]) -> NegotiatedFacts:
    """A :class:`NegotiatedFacts` from a filled ``struct s2npy_facts`` (see build_s2n.FACTS_STRUCT),
    or a bytearray holding one.

    The struct is a complete snapshot (its strings are copies), so the fields
    are decoded from it when one is first read, not here: every ``negotiate()``
    makes facts on both ends of a connection, most callers never read them, and
    right after a handshake both threads of a client/server pair wait for the
    GIL, so Python spent there costs about twice its time. An untraced
    ``negotiate()`` makes its facts the same way in C (s2npy._datapath).
    """
    facts = object.__new__(NegotiatedFacts)
    facts.__dict__.update(_raw=raw, _chain=chain)
    return facts


def _decode(raw, chain: Sequence[x509.Certificate]) -> dict[str, Any]:
    """Every field of :class:`NegotiatedFacts` from a ``struct s2npy_facts``, or the bytearray
    holding one (what an untraced ``negotiate()`` fills: see ``s2npy._datapath``)."""
    if isinstance(raw, bytearray):
        raw = ffi.from_buffer(_FACTS_POINTER, raw)
    texts = ffi.unpack(raw.text, raw.text_length).decode("utf-8", "replace").split("\0")
    present = raw.present
    complete = bool(raw.handshake_complete)
    fields = {name: texts[index] if present >> index & 1 and index < len(texts) else None
              for index, name in enumerate(_TEXT_FIELDS)}
    fields.update(
        mode="server" if raw.mode == lib.S2N_SERVER else "client",
        handshake_complete=complete,
        protocol=PROTOCOL_NAMES.get(raw.protocol_version) if complete else None,
        protocol_version=raw.protocol_version,
        client_protocol=PROTOCOL_NAMES.get(raw.client_protocol_version),
        server_protocol=PROTOCOL_NAMES.get(raw.server_protocol_version),
        cipher_iana=raw.cipher_iana or None,
        client_cert_sent=bool(raw.client_cert_used),
        peer_cert_chain=chain,
        session_resumed=bool(raw.session_resumed),
        alert=raw.alert if raw.alert >= 0 else None,
        wire_bytes_in=raw.wire_bytes_in,
        wire_bytes_out=raw.wire_bytes_out,
    )
    return fields
