"""TLS 1.3 record protection, undone with a key log so a trace can show the encrypted handshake.

In TLS 1.3 everything after the ServerHello is encrypted: without this module a
trace shows the CertificateRequest that makes a browser hang up as "encrypted
record 54 B".  When the user asked for key logging (``Config(key_log=...)``), the
trace holds the NSS key log lines of the connection, and :class:`Tls13Decryptor`
uses them (RFC 8446 5.2 and 7.3) to open the handshake-phase records of both
directions for :class:`~s2npy.trace.wire.WireSession`, which decodes the messages
and alerts inside like plaintext ones.  This is the only module that knows TLS 1.3
record protection.

What is opened, and why:

- The handshake phase of each direction (from the ServerHello to that direction's
  Finished), with ``CLIENT_/SERVER_HANDSHAKE_TRAFFIC_SECRET`` of the ClientHello's
  random and the cipher of the ServerHello (after a HelloRetryRequest, the second
  ServerHello's).
- The first record after a direction's Finished, only if it has the size of an
  unpadded alert (2 bytes + content type + 16-byte tag), and it is shown only if it
  is an alert: a server sends ``certificate_required`` or ``bad_certificate`` with
  its application keys, after its own Finished.  Anything else in the application
  phase (application data, tickets) stays opaque and is never decoded.
- Nothing of TLS 1.2 (or of a cipher this module does not know): those records stay
  as they were.

A record that does not open (corrupted, early data under other keys, a secret
missing from the key log) stays a plain encrypted record with a note saying why;
decryption never raises.  It does not consume a sequence number, and the next
record is tried with that number and the one after, so one damaged record does
not hide the rest of the flight.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESCCM, AESGCM, ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDFExpand

from . import tls_names as names
from .wire import C2S, HandshakeMessage

_AEAD = type[AESGCM] | type[AESCCM] | type[ChaCha20Poly1305]

#: TLS 1.3 cipher suite name -> (AEAD, key length, hash of the key schedule).
CIPHER_SUITES: dict[str, tuple[_AEAD, int, type[hashes.HashAlgorithm]]] = {
    "TLS_AES_128_GCM_SHA256": (AESGCM, 16, hashes.SHA256),
    "TLS_AES_256_GCM_SHA384": (AESGCM, 32, hashes.SHA384),
    "TLS_CHACHA20_POLY1305_SHA256": (ChaCha20Poly1305, 32, hashes.SHA256),
    "TLS_AES_128_CCM_SHA256": (AESCCM, 16, hashes.SHA256),
}
#: Key log labels of each direction's secrets: (handshake phase, application phase).
SECRET_LABELS = {
    C2S: ("CLIENT_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0"),
    "s2c": ("SERVER_HANDSHAKE_TRAFFIC_SECRET", "SERVER_TRAFFIC_SECRET_0"),
}
_TAG_LENGTH = 16
_NONCE_LENGTH = 12
_APPLICATION_DATA = 23
_HANDSHAKE = 22
_ALERT = 21
#: Ciphertext length of an alert without padding: level, description, inner content type, tag.
_ALERT_RECORD_LENGTH = 2 + 1 + _TAG_LENGTH
_CLIENT_HELLO, _FINISHED = 1, 20


def parse_key_log(lines: Iterable[str]) -> dict[tuple[str, bytes], bytes]:
    """Read NSS key log lines into ``{(label, client random): secret}``; skip what does not parse."""
    secrets = {}
    for line in lines:
        parts = line.split()
        if len(parts) != 3 or parts[0].startswith("#"):
            continue
        try:
            secrets[parts[0], bytes.fromhex(parts[1])] = bytes.fromhex(parts[2])
        except ValueError:
            continue
    return secrets


def expand_label(secret: bytes, label: str, length: int, algorithm: hashes.HashAlgorithm) -> bytes:
    """RFC 8446 7.1 HKDF-Expand-Label with an empty context."""
    full = b"tls13 " + label.encode()
    info = length.to_bytes(2, "big") + bytes([len(full)]) + full + b"\x00"
    return HKDFExpand(algorithm, length, info).derive(secret)


@dataclass
class _Keys:
    """One direction's traffic keys (RFC 8446 7.3) and its next sequence number."""

    aead: AESGCM | AESCCM | ChaCha20Poly1305
    iv: int
    sequence: int = 0

    def open(self, header: bytes, fragment: bytes) -> tuple[int, bytes] | None:
        """Decrypt at the next sequence number or the one after; ``(inner type, content)`` or None.

        On success the sequence moves past the number used; on failure it stays.
        """
        for sequence in (self.sequence, self.sequence + 1):
            nonce = (self.iv ^ sequence).to_bytes(_NONCE_LENGTH, "big")
            try:
                inner = self.aead.decrypt(nonce, fragment, header).rstrip(b"\x00")
            except (InvalidTag, ValueError):
                continue
            self.sequence = sequence + 1
            return (inner[-1], inner[:-1]) if inner else (0, b"")
        return None


@dataclass
class _Direction:
    """Where one direction is: which phase, and its handshake keys once derived."""

    phase: str = "handshake"  # then "application" (after its Finished), then "done"
    keys: _Keys | None = None


class Tls13Decryptor:
    """Opens a connection's TLS 1.3 handshake records with its key log (see the module doc).

    Implements :class:`s2npy.trace.wire.RecordDecryptor`; one instance per
    ``WireSession``.  ``key_log_lines`` are NSS key log lines, as a
    :class:`~s2npy.trace.recorder.ConnectionTrace` keeps them.
    """

    def __init__(self, key_log_lines: Iterable[str]) -> None:
        self._secrets = parse_key_log(key_log_lines)
        self._client_random: bytes | None = None
        self._cipher_suite: str | None = None
        self._directions = {direction: _Direction() for direction in SECRET_LABELS}

    def observe(self, message: HandshakeMessage, body: bytes) -> None:
        """Take the client random, the TLS 1.3 cipher a ServerHello chose, and each side's Finished."""
        if message.msg_type == _CLIENT_HELLO and self._client_random is None:
            self._client_random = body[2:34]
        elif message.name == "server_hello" and message.details.get("version") == names.version_name(names.TLS1_3):
            self._cipher_suite = message.details.get("cipher_suite")
        elif message.msg_type == _FINISHED and message.decrypted:
            self._directions[message.direction].phase = "application"

    def decrypt(self, direction: str, header: bytes, fragment: bytes) -> tuple[int, bytes] | str | None:
        """Open a handshake-phase record (or an alert right after it); see the module doc."""
        state = self._directions[direction]
        if self._cipher_suite is None or header[0] != _APPLICATION_DATA or state.phase == "done":
            return None
        if state.phase == "application":
            return self._alert_after_finished(direction, state, header, fragment)
        keys = state.keys or self._derive(direction, handshake=True)
        if isinstance(keys, str):
            return keys
        state.keys = keys
        opened = keys.open(header, fragment)
        if opened is None:
            return f"did not decrypt with the {SECRET_LABELS[direction][0]} (damaged, or other keys)"
        if opened[0] not in (_HANDSHAKE, _ALERT):
            return f"inner content type {names.content_type_name(opened[0])} in the handshake phase"
        return opened

    def _alert_after_finished(self, direction: str, state: _Direction, header: bytes,
                              fragment: bytes) -> tuple[int, bytes] | None:
        """The first record after a direction's Finished, opened only to show an alert (see the module doc)."""
        state.phase = "done"
        if len(fragment) != _ALERT_RECORD_LENGTH:
            return None
        keys = self._derive(direction, handshake=False)
        opened = keys.open(header, fragment) if isinstance(keys, _Keys) else None
        return opened if opened is not None and opened[0] == _ALERT else None

    def _derive(self, direction: str, *, handshake: bool) -> _Keys | str:
        """The handshake or application keys of ``direction``, or a note saying why there are none."""
        if self._cipher_suite not in CIPHER_SUITES:
            return f"cipher {self._cipher_suite} is not supported for decryption"
        label = SECRET_LABELS[direction][not handshake]
        secret = self._secrets.get((label, self._client_random or b""))
        if secret is None:
            return f"no {label} for this ClientHello in the key log"
        aead, key_length, hash_type = CIPHER_SUITES[self._cipher_suite]
        algorithm = hash_type()
        key = expand_label(secret, "key", key_length, algorithm)
        iv = expand_label(secret, "iv", _NONCE_LENGTH, algorithm)
        return _Keys(aead(key), int.from_bytes(iv, "big"))
