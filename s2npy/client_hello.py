"""``ClientHello``: what a client offered, as a server's client hello callback sees it."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from ._native import HAS_FINGERPRINT, ffi, lib
from .errors import check, clear_error

if TYPE_CHECKING:
    from .connection import Connection

CLIENT_HELLO_TYPE = 1


class ClientHello:
    """A parsed ClientHello (from ``s2n_connection_get_client_hello``).

    ``raw`` is the message body s2n received; ``server_name``, ``alpn``,
    ``cipher_suites``, ``groups``, ``signature_algorithms``,
    ``supported_versions`` and ``extensions`` are decoded from it; ``ja3``/``ja4``
    are s2n's fingerprints (unstable fingerprint API, when the build has it).
    The message is copied out at once, so the object stays valid after the
    callback returns (and after the connection is freed).
    """

    def __init__(self, raw: bytes, server_name: str | None) -> None:
        self.raw = raw
        self.server_name = server_name

    # JA3/JA4 are computed from ``raw`` when first read: each costs ~10-20 us and a
    # traced server records every ClientHello, while most traces never show them.
    @cached_property
    def ja3(self) -> str | None:
        """JA3 (MD5 hex); None without the fingerprint API or for an SSLv2 ClientHello."""
        return _fingerprint(self.raw, "JA3")

    @cached_property
    def ja4(self) -> str | None:
        """JA4 fingerprint string; None without the fingerprint API or for an SSLv2 ClientHello."""
        return _fingerprint(self.raw, "JA4")

    @classmethod
    def from_connection(cls, connection: "Connection") -> "ClientHello":
        hello = lib.s2n_connection_get_client_hello(connection.ptr)
        check(-1 if hello == ffi.NULL else 0, "reading the ClientHello", state_of=connection.ptr)
        length = check(lib.s2n_client_hello_get_raw_message_length(hello), "reading the ClientHello")
        buffer = ffi.new("uint8_t[]", length)
        copied = check(lib.s2n_client_hello_get_raw_message(hello, buffer, length), "reading the ClientHello")
        raw = ffi.unpack(ffi.cast("char *", buffer), copied)
        return cls(raw, _server_name(hello))

    @cached_property
    def details(self) -> dict[str, Any]:
        """Every decoded field (the trace package's ClientHello decoder)."""
        from .trace.wire import parse_handshake_body

        return parse_handshake_body(CLIENT_HELLO_TYPE, self.raw)[1]

    @property
    def alpn(self) -> list[str]:
        return list(self.details.get("alpn", []))

    @property
    def cipher_suites(self) -> list[str]:
        return list(self.details.get("cipher_suites", []))

    @property
    def groups(self) -> list[str]:
        return list(self.details.get("groups", []))

    @property
    def signature_algorithms(self) -> list[str]:
        return list(self.details.get("signature_algorithms", []))

    @property
    def supported_versions(self) -> list[str]:
        return list(self.details.get("supported_versions", []))

    @property
    def extensions(self) -> list[str]:
        return list(self.details.get("extensions", []))

    def to_dict(self) -> dict[str, Any]:
        return {"server_name": self.server_name, "ja3": self.ja3, "ja4": self.ja4, **self.details}

    def __repr__(self) -> str:
        return f"<ClientHello sni={self.server_name!r} alpn={self.alpn} ja4={self.ja4}>"


def _server_name(hello) -> str | None:
    length = ffi.new("uint16_t *")
    if lib.s2n_client_hello_get_server_name_length(hello, length) != lib.S2N_SUCCESS or not length[0]:
        clear_error()
        return None
    buffer = ffi.new("uint8_t[]", length[0])
    out = ffi.new("uint16_t *")
    check(lib.s2n_client_hello_get_server_name(hello, buffer, length[0], out), "reading the ClientHello SNI")
    return ffi.unpack(ffi.cast("char *", buffer), out[0]).decode("ascii", "replace")


def _fingerprint(raw: bytes, kind: str) -> str | None:
    """JA3 (MD5 hex) or JA4 of a ClientHello body, via s2n's parser and fingerprint API.

    None when the build lacks the fingerprint API, or for a message s2n cannot
    parse on its own (an SSLv2 ClientHello).
    """
    if not HAS_FINGERPRINT:
        return None
    message = bytes([CLIENT_HELLO_TYPE]) + len(raw).to_bytes(3, "big") + raw
    hello = ffi.new("struct s2n_client_hello **", lib.s2n_client_hello_parse_message(message, len(message)))
    if hello[0] == ffi.NULL:
        clear_error()
        return None
    fingerprint_type = lib.S2N_FINGERPRINT_JA3 if kind == "JA3" else lib.S2N_FINGERPRINT_JA4
    holder = ffi.new("struct s2n_fingerprint **", lib.s2n_fingerprint_new(fingerprint_type))
    try:
        check(-1 if holder[0] == ffi.NULL else 0, f"computing {kind}")
        check(lib.s2n_fingerprint_set_client_hello(holder[0], hello[0]), f"computing {kind}")
        size = ffi.new("uint32_t *")
        check(lib.s2n_fingerprint_get_hash_size(holder[0], size), f"computing {kind}")
        buffer = ffi.new("uint8_t[]", size[0])
        check(lib.s2n_fingerprint_get_hash(holder[0], size[0], buffer, size), f"computing {kind}")
        return ffi.unpack(ffi.cast("char *", buffer), size[0]).decode("ascii", "replace")
    finally:
        lib.s2n_fingerprint_free(holder)
        lib.s2n_client_hello_free(hello)
