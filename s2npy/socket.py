"""A socket wrapper modelled on ``ssl.SSLSocket``: ``wrap_socket(config, sock, ...)``.

Existing code that talks to an ``ssl.SSLSocket`` (``send``/``sendall``/``recv``/
``recv_into``/``makefile``, ``settimeout``, ``getpeercert``, ``version``,
``cipher``, ``selected_alpn_protocol``, ``unwrap``) works with the object
:func:`wrap_socket` (or :meth:`s2npy.Config.wrap_socket`) returns.

How it works: the wrapped socket's file descriptor is always non-blocking and
handed straight to s2n (no Python in the data path). Each call retries on
s2n's blocked status, waiting with ``poll`` on the fd for the direction s2n
is blocked on, until the socket's timeout runs out. So ``settimeout`` is
honoured during the handshake and every read and write.

Differences from ``ssl``:

- It is not a ``socket.socket`` subclass: only the methods below, plus
  ``fileno``, ``getpeername``, ``getsockname``, ``getsockopt``, ``setsockopt``,
  ``family``, ``type`` and ``proto`` of the wrapped socket, are available.
  There is no ``accept()``: wrap each accepted socket with ``server_side=True``.
- Failures raise :class:`s2npy.S2NError` subclasses (also ``OSError``, like
  ``ssl.SSLError``); a non-blocking socket raises :class:`s2npy.WantReadError`
  / :class:`s2npy.WantWriteError` where ``ssl`` raises ``SSLWantReadError`` /
  ``SSLWantWriteError``. Timeouts raise ``TimeoutError`` (``socket.timeout``).
- ``shutdown(SHUT_WR or SHUT_RDWR)`` sends a TLS close_notify before shutting
  the TCP direction down, and ``close()`` sends one (best effort, never
  blocking) if none was sent: ``ssl`` sends close_notify only in ``unwrap()``.
- ``getpeercert()`` builds its dict from the certificate with ``cryptography``;
  it carries ``subject``, ``issuer``, ``version``, ``serialNumber``,
  ``notBefore``, ``notAfter`` and ``subjectAltName`` (no OCSP/CRL URLs). Like
  ``ssl`` it returns ``{}`` when peer verification is off (``binary_form=True``
  still gives the DER).
- As with ``ssl``'s default ``suppress_ragged_eofs=True``, a TCP close without
  close_notify reads as end of stream; pass ``suppress_ragged_eofs=False`` to
  get :class:`s2npy.ClosedError` instead.
- ``recv``/``recv_into`` take no ``flags`` other than 0 (as ``ssl``).
"""

from __future__ import annotations

import ipaddress
import select
import socket
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from .connection import DEFAULT_RECV_SIZE, Connection
from .enums import Blocked, CertAuth, Mode
from .errors import BlockedError, ClosedError
from .facts import NegotiatedFacts

if TYPE_CHECKING:
    from .config import Config
    from .trace.recorder import Tracer

T = TypeVar("T")

#: Attributes read straight from the wrapped socket.
_PASSTHROUGH = frozenset({"fileno", "getpeername", "getsockname", "getsockopt", "setsockopt",
                          "family", "type", "proto"})

#: (token in the cipher name, secret key bits), first match wins.
_CIPHER_BITS = (("CHACHA20", 256), ("AES256", 256), ("AES_256", 256), ("AES128", 128), ("AES_128", 128),
                ("DES-CBC3", 168), ("3DES", 168))

_GENERAL_NAMES: tuple[tuple[type, str], ...] = (
    (x509.DNSName, "DNS"), (x509.IPAddress, "IP Address"), (x509.RFC822Name, "email"),
    (x509.UniformResourceIdentifier, "URI"),
)


# --- what ssl users expect from getpeercert() and cipher() ----------------------------------


def cipher_bits(name: str) -> int:
    """Secret key bits of a cipher suite named like OpenSSL/IANA (0 if unknown)."""
    return next((bits for token, bits in _CIPHER_BITS if token in name), 0)


def cipher_tuple(facts: NegotiatedFacts) -> tuple[str, str, int] | None:
    """``(name, protocol, bits)`` as ``ssl.SSLSocket.cipher()`` gives it."""
    if facts.cipher is None:
        return None
    return facts.cipher, facts.protocol, cipher_bits(facts.cipher)


def _ssl_time(moment) -> str:
    """``'Jan  5 09:34:43 2018 GMT'``: the date format of ``ssl`` certificate dicts."""
    return f"{moment:%b} {moment.day:2d} {moment:%H:%M:%S %Y} GMT"


def _ssl_name(name: x509.Name) -> tuple:
    return tuple(tuple((attribute.oid._name, attribute.value) for attribute in rdn) for rdn in name.rdns)


def _ssl_ip(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    """IPv6 as OpenSSL prints it (eight uncompressed upper-case groups), IPv4 dotted."""
    if address.version == 4:
        return str(address)
    return ":".join(f"{int(group, 16):X}" for group in address.exploded.split(":"))


def _alt_names(cert: x509.Certificate) -> tuple[tuple[str, str], ...]:
    try:
        names = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return ()
    found = []
    for general_name in names:
        label = next((text for kind, text in _GENERAL_NAMES if isinstance(general_name, kind)), None)
        if label is not None:
            value = general_name.value
            found.append((label, _ssl_ip(value) if label == "IP Address" else value))
    return tuple(found)


def certificate_dict(cert: x509.Certificate) -> dict[str, Any]:
    """A certificate as the dict ``ssl.SSLSocket.getpeercert()`` returns."""
    serial = f"{cert.serial_number:X}"
    details: dict[str, Any] = {
        "subject": _ssl_name(cert.subject),
        "issuer": _ssl_name(cert.issuer),
        "version": cert.version.value + 1,
        "serialNumber": serial.zfill(len(serial) + len(serial) % 2),
        "notBefore": _ssl_time(cert.not_valid_before_utc),
        "notAfter": _ssl_time(cert.not_valid_after_utc),
    }
    alt_names = _alt_names(cert)
    if alt_names:
        details["subjectAltName"] = alt_names
    return details


def peer_certificate(connection: Connection, facts: NegotiatedFacts,
                     binary_form: bool = False) -> dict[str, Any] | bytes | None:
    """``getpeercert()`` for a finished handshake: dict, DER bytes, or None without a certificate."""
    if not facts.peer_cert_chain:
        return None
    leaf = facts.peer_cert_chain[0]
    if binary_form:
        return leaf.public_bytes(Encoding.DER)
    return certificate_dict(leaf) if connection.config.verify_peer else {}


# --- the wrapper ---------------------------------------------------------------------------------


class TLSSocket:
    """A TLS connection over a connected socket, with ``ssl.SSLSocket``'s methods.

    Made by :func:`wrap_socket`. ``connection`` is the underlying
    :class:`s2npy.Connection` (for traces, ``facts()``, ``wire_bytes()``).
    """

    def __init__(self, config: "Config", sock: socket.socket, *, server_side: bool = False,
                 server_hostname: str | None = None, do_handshake_on_connect: bool = True,
                 alpn: Sequence[str] | None = None, cert_auth: CertAuth | str | None = None,
                 session: bytes | None = None, trace: "bool | Tracer | None" = None,
                 suppress_ragged_eofs: bool = True) -> None:
        self._sock = sock
        self.suppress_ragged_eofs = suppress_ragged_eofs
        self._timeout = sock.gettimeout()
        self._io_refs = 0
        self._closed = False
        self._close_notify_sent = False
        self._facts: NegotiatedFacts | None = None
        self.server_side = server_side
        self.server_hostname = server_hostname
        self.do_handshake_on_connect = do_handshake_on_connect
        sock.setblocking(False)
        self.connection = Connection(config, Mode.SERVER if server_side else Mode.CLIENT, io=sock,
                                     server_name=server_hostname, alpn=alpn, cert_auth=cert_auth,
                                     session=session, trace=trace)
        if do_handshake_on_connect and _is_connected(sock):
            self._handshake_or_close()

    def __getattr__(self, name: str) -> Any:
        if name in _PASSTHROUGH:
            return getattr(self._sock, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    # --- waiting ---------------------------------------------------------------------------------

    def _deadline(self) -> float | None:
        return None if self._timeout is None else time.monotonic() + self._timeout

    def _wait(self, blocked: Blocked, deadline: float | None, operation: str) -> None:
        """Wait until the fd is ready for what s2n is blocked on, or raise TimeoutError."""
        poller = select.poll()
        poller.register(self._sock.fileno(), select.POLLIN if blocked is Blocked.ON_READ else select.POLLOUT)
        remaining = None if deadline is None else max(0.0, deadline - time.monotonic()) * 1000
        if not poller.poll(remaining):
            raise TimeoutError(f"TLS {operation} timed out after {self._timeout} s")

    def _retry(self, operation: str, call: Callable[[], T], deadline: float | None = None) -> T:
        """Call until s2n is no longer blocked; non-blocking sockets raise WantRead/WantWrite."""
        deadline = deadline if deadline is not None else self._deadline()
        while True:
            try:
                return call()
            except BlockedError as exc:
                if self._timeout == 0.0 or exc.blocked not in (Blocked.ON_READ, Blocked.ON_WRITE):
                    raise
                self._wait(exc.blocked, deadline, operation)

    # --- handshake -------------------------------------------------------------------------------

    def connect(self, address: Any) -> None:
        """Connect the wrapped socket (honouring its timeout), then handshake if asked to."""
        self._sock.settimeout(self._timeout)
        try:
            self._sock.connect(address)
        finally:
            self._sock.setblocking(False)
        if self.do_handshake_on_connect:
            self._handshake_or_close()

    def _handshake_or_close(self) -> None:
        """Handshake for the constructor/connect(); on failure close everything, as ``ssl`` does."""
        try:
            self.do_handshake()
        except BaseException:
            self.connection.close()
            self._sock.close()
            raise

    def do_handshake(self) -> NegotiatedFacts:
        """Run the TLS handshake to completion (within the timeout); returns what was negotiated."""
        self._facts = self._retry("handshake", self.connection.negotiate)
        return self._facts

    # --- data --------------------------------------------------------------------------------------

    def send(self, data: Any, flags: int = 0) -> int:
        """Encrypt and send some of ``data``; returns how many bytes were taken."""
        _no_flags(flags)
        return self._retry("send", lambda: self.connection.send(data))

    def sendall(self, data: Any, flags: int = 0) -> None:
        """Send all of ``data``; the timeout bounds the whole call, as for ``socket.sendall``."""
        _no_flags(flags)
        view = memoryview(data).cast("B")
        deadline = self._deadline()
        sent = 0
        while sent < len(view):
            sent += self._retry("send", lambda: self.connection.send(view[sent:]), deadline)

    def recv(self, bufsize: int = DEFAULT_RECV_SIZE, flags: int = 0) -> bytes:
        """Receive up to ``bufsize`` bytes; ``b""`` once the peer closed (close_notify or TCP)."""
        _no_flags(flags)
        return self._read(lambda: self.connection.recv(bufsize), b"")

    def recv_into(self, buffer: Any, nbytes: int = 0, flags: int = 0) -> int:
        """Receive into ``buffer``; 0 once the peer closed."""
        _no_flags(flags)
        return self._read(lambda: self.connection.recv_into(buffer, nbytes), 0)

    def _read(self, call: Callable[[], T], end_of_stream: T) -> T:
        try:
            return self._retry("recv", call)
        except ClosedError:
            if not self.suppress_ragged_eofs:
                raise
            return end_of_stream

    def pending(self) -> int:
        """Decrypted bytes readable without I/O."""
        return self.connection.pending()

    # socket.socket's own makefile() and its file refcount (close() waits for the files): they only
    # need recv_into/send, _io_refs/_closed and _real_close, so http.client-style readers work as on ssl.
    makefile = socket.socket.makefile
    _decref_socketios = socket.socket._decref_socketios

    # --- timeouts ---------------------------------------------------------------------------------

    def settimeout(self, value: float | None) -> None:
        """Timeout in seconds for the handshake and each call (None blocks, 0 never waits)."""
        if value is not None and value < 0:
            raise ValueError("Timeout value out of range")
        self._timeout = None if value is None else float(value)

    def gettimeout(self) -> float | None:
        return self._timeout

    def setblocking(self, flag: bool) -> None:
        self.settimeout(None if flag else 0.0)

    # --- what was negotiated ------------------------------------------------------------------------

    def _facts_after_handshake(self) -> NegotiatedFacts:
        if self._facts is None:
            raise ValueError("handshake not done yet")
        return self._facts

    def getpeercert(self, binary_form: bool = False) -> dict[str, Any] | bytes | None:
        """The peer's certificate: a dict like ``ssl``'s, or DER with ``binary_form=True``."""
        return peer_certificate(self.connection, self._facts_after_handshake(), binary_form)

    def version(self) -> str | None:
        """"TLSv1.3", "TLSv1.2", ... or None before the handshake."""
        return self._facts.protocol if self._facts is not None else None

    def cipher(self) -> tuple[str, str, int] | None:
        """``(cipher name, protocol, secret bits)`` or None before the handshake."""
        return cipher_tuple(self._facts) if self._facts is not None else None

    def selected_alpn_protocol(self) -> str | None:
        return self._facts.alpn if self._facts is not None else None

    def facts(self) -> NegotiatedFacts:
        """Everything s2n negotiated (see :class:`s2npy.NegotiatedFacts`)."""
        return self.connection.facts()

    # --- closing ----------------------------------------------------------------------------------

    def _send_close_notify(self) -> None:
        if not self._close_notify_sent and self.connection.handshake_complete:
            self._retry("shutdown", self.connection.shutdown_send)
            self._close_notify_sent = True

    def shutdown(self, how: int) -> None:
        """Shut down the socket; SHUT_WR/SHUT_RDWR send close_notify first."""
        if how in (socket.SHUT_WR, socket.SHUT_RDWR):
            self._send_close_notify()
        self._sock.shutdown(how)

    def unwrap(self) -> socket.socket:
        """Full TLS shutdown (close_notify both ways); returns the plain socket, timeout restored."""
        self._retry("shutdown", self.connection.shutdown)
        self.connection.close()
        self._sock.settimeout(self._timeout)
        return self._sock

    def close(self) -> None:
        """Close (once no makefile() object uses it): close_notify if possible, then the socket."""
        self._closed = True
        if self._io_refs <= 0:
            self._real_close()

    def _real_close(self) -> None:
        if self.connection.closed:
            self._sock.close()
            return
        timeout, self._timeout = self._timeout, 0.0
        try:
            self._send_close_notify()
        except OSError:  # S2NError is an OSError too
            pass  # best effort: a peer that is gone or a full buffer must not make close() fail
        finally:
            self._timeout = timeout
            self.connection.close()
            self._sock.close()

    def __enter__(self) -> "TLSSocket":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        side = "server" if self.server_side else "client"
        return f"<TLSSocket {side} fd={self._sock.fileno()} {self.version() or 'handshake pending'}>"


def _no_flags(flags: int) -> None:
    if flags:
        raise ValueError("non-zero flags not allowed in calls on a TLS socket")


def _is_connected(sock: socket.socket) -> bool:
    try:
        sock.getpeername()
    except OSError:
        return False
    return True


def wrap_socket(config: "Config", sock: socket.socket, *, server_side: bool = False,
                server_hostname: str | None = None, do_handshake_on_connect: bool = True,
                alpn: Sequence[str] | None = None, cert_auth: CertAuth | str | None = None,
                session: bytes | None = None, trace: "bool | Tracer | None" = None,
                suppress_ragged_eofs: bool = True) -> TLSSocket:
    """Wrap a socket in TLS using ``config`` (like ``ssl.SSLContext.wrap_socket``).

    ``server_hostname``: SNI and the name verified in the server certificate
    (clients). ``alpn``, ``cert_auth``: per-connection overrides of the config.
    ``session``: resume an earlier client session. ``trace``: record a trace
    (``tls.connection.trace``). With ``do_handshake_on_connect`` a connected
    socket handshakes now (honouring its timeout); an unconnected one after
    ``connect()``. The socket's timeout becomes the wrapper's.
    """
    return TLSSocket(config, sock, server_side=server_side, server_hostname=server_hostname,
                     do_handshake_on_connect=do_handshake_on_connect, alpn=alpn, cert_auth=cert_auth,
                     session=session, trace=trace, suppress_ragged_eofs=suppress_ragged_eofs)
